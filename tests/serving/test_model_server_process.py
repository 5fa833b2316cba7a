"""`python -m serving.model_server` as a process: SIGTERM drains the request in flight, any
mix of SIGINT and SIGTERM stops it within the grace period, its log is free of expected noise;
and a client reconnects at its first call after a server starts listening."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from client import ssd_client as client_lib
from client import waiting
from tests import helpers

GRACE_SECONDS = 10


@pytest.fixture
def server_process(toy_base, tmp_path):
    log = open(tmp_path / 'model_server.log', 'wb+')
    process, address = helpers.start_model_server(
        toy_base, flags=['--grace_seconds=%d' % GRACE_SECONDS], log=log)
    yield process, address, log
    helpers.stop_process(process)
    log.close()


def _log_text(log):
    log.flush()
    log.seek(0)
    return log.read().decode('utf-8', 'replace')


def test_sigterm_drains_in_flight_request(server_process):
    process, address, log = server_process
    helpers.wait_until_serving(address, process)
    results = []
    with client_lib.SSDClient(address, timeout=60) as client:
        iterations = np.array(600000, np.int32)  # about a second of busy loop
        worker = threading.Thread(
            target=lambda: results.append(client.predict({'iterations': iterations}, 'slow')))
        worker.start()
        # The request runs once the server uses CPU (idle, it uses none).
        assert waiting.poll(lambda: _busy(process), 60, interval_s=0.0), 'no request ran'
        process.send_signal(signal.SIGTERM)
        worker.join(60)
    assert process.wait(60) == 0
    assert results[0][0]['count'] == 600000
    assert 'Stopping: draining' in _log_text(log)


def test_second_signal_cancels_the_drain(server_process):
    process, address, log = server_process
    helpers.wait_until_serving(address, process)
    errors = []

    def slow_request():
        with client_lib.SSDClient(address, timeout=120, retries=0) as client:
            try:  # about 30 s of busy loop, far beyond the grace period
                client.predict({'iterations': np.array(18_000_000, np.int32)}, 'slow')
            except client_lib.ServingError as e:
                errors.append(e)

    worker = threading.Thread(target=slow_request)
    worker.start()
    assert waiting.poll(lambda: _busy(process), 60, interval_s=0.0), \
        'the slow request did not start'
    process.send_signal(signal.SIGTERM)
    assert waiting.poll(lambda: 'Stopping: draining' in _log_text(log), 60, interval_s=0.05), \
        'no drain after SIGTERM'
    start = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(GRACE_SECONDS) == 0
    assert time.monotonic() - start < 5
    worker.join(60)
    assert errors and errors[0].code in ('CANCELLED', 'UNAVAILABLE')


def _busy(process):
    """True while the process uses CPU (its busy-loop request runs; idle, it uses none)."""
    def ticks():
        with open('/proc/%d/stat' % process.pid) as f:
            return sum(int(v) for v in f.read().split()[13:15])  # utime + stime
    before = ticks()
    time.sleep(0.3)
    return ticks() - before >= 3


def test_log_has_no_expected_noise(toy_base, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    with open(tmp_path / 'model_server.log', 'wb+') as log:
        process, address = helpers.start_model_server(toy_base, log=log, env=env)
        try:
            helpers.wait_until_serving(address, process)
        finally:
            assert helpers.stop_process(process) == 0
        text = _log_text(log)
    assert 'Serving model ssd version 1' in text
    for noise in ('failed call to cuInit', 'is deprecated and will be removed',
                  'cpu_feature_guard'):
        assert noise not in text, noise


@pytest.mark.slow
def test_back_to_back_signals_always_stop_the_server(toy_base, tmp_path):
    """The handler used to call threading.Event.set(); a second signal arriving inside it
    deadlocked on the Event's lock (1 run in 6 hung with SIGINT + SIGTERM)."""
    orders = [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT),
              (signal.SIGINT,) * 3 + (signal.SIGTERM,) * 3]
    for round_number in range(2 * len(orders)):
        with open(tmp_path / ('round%d.log' % round_number), 'wb') as log:
            process, address = helpers.start_model_server(
                toy_base, flags=['--grace_seconds=%d' % GRACE_SECONDS], log=log)
            try:
                helpers.wait_until_serving(address, process)
                for sig in orders[round_number % len(orders)]:
                    process.send_signal(sig)
                start = time.monotonic()
                code = process.wait(GRACE_SECONDS)
                assert code == 0, 'round %d exited with %d' % (round_number, code)
                assert time.monotonic() - start < GRACE_SECONDS
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()


# A minimal ModelService on 127.0.0.1:<argv[1]> (no TensorFlow: it starts in a moment).
_STATUS_SERVER = r'''
import sys
from concurrent import futures
import grpc
from client import protos

def status(request, context):
    response = protos.GetModelStatusResponse()
    response.model_version_status.add(version=1, state=30)
    return response

server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_generic_rpc_handlers([protos.generic_handler(protos.MODEL_SERVICE,
                                                        {'GetModelStatus': status})])
server.add_insecure_port('127.0.0.1:' + sys.argv[1])
server.start()
server.wait_for_termination()
'''


def _wait_listening(port, process, deadline_s):
    deadline = time.monotonic() + deadline_s
    while True:
        assert process.poll() is None, 'server exited'
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, 'server does not listen'
            time.sleep(0.02)


def _wait_unavailable(client, deadline_s):
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            client.status()
        except client_lib.ServingUnavailable:
            return
        assert time.monotonic() < deadline, 'server still answers after it was stopped'
        time.sleep(0.05)


def test_client_reconnects_at_its_first_call_after_its_server_listens():
    """A channel that failed to connect used to stay in its reconnect back-off, noticing a
    listening server only at gRPC Python's 5 s backup poll (/healthz turned 200 only 3.7-4.4 s
    after a restarted model server listened)."""
    port = helpers.free_port()
    with client_lib.SSDClient('127.0.0.1:%d' % port, retries=0, timeout=2.0) as client:
        for _ in range(4):  # each restart finds the client after failed calls
            _wait_unavailable(client, 30)
            process = subprocess.Popen([sys.executable, '-c', _STATUS_SERVER, str(port)],
                                       cwd=helpers.REPO)
            try:
                _wait_listening(port, process, 60)
                assert client.status()['versions'] == [{'version': 1, 'state': 'AVAILABLE'}]
            finally:
                helpers.stop_process(process)
