"""client.waiting: True once the URL answers 200 or a version is AVAILABLE, False at the
deadline or when the awaited process is gone."""
import time

from client import waiting
from common import ports
from tests import helpers


def test_ready_url_and_unready_url():
    with helpers.healthz_server() as base:
        assert waiting.wait_for_url(base + '/healthz', 10)
        assert not waiting.wait_for_url(base + '/other', 0.5, interval_s=0.1)


def test_nothing_listening():
    url = 'http://127.0.0.1:%d/healthz' % ports.free_port()
    assert not waiting.wait_for_url(url, 0.3, interval_s=0.1)


def test_stops_at_once_when_the_awaited_process_is_gone():
    start = time.monotonic()
    assert not waiting.poll(lambda: False, 30, interval_s=0.1, alive=lambda: False)
    assert time.monotonic() - start < 5


def test_waits_for_a_served_model(toy_server):
    address, _ = toy_server
    assert waiting.wait_until_available(address, 'ssd', 30, interval_s=0.1)
    assert not waiting.wait_until_available(address, 'other_model', 0.5, interval_s=0.1)
