"""python -m web.wait_ready: exit 0 once the URL answers 200 or the model is served, 1 after
the timeout; light to import."""
import os
import subprocess
import sys

from common import ports
from tests import helpers
from web import wait_ready

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_url_exit_codes():
    with helpers.healthz_server() as base:
        assert wait_ready.main(['--url', base + '/healthz', '--timeout', '10']) == 0
        assert wait_ready.main(['--url', base + '/other', '--timeout', '0.2']) == 1


def test_is_light():
    """Polling a URL needs neither TensorFlow nor Flask (web/__init__ imported the whole app)."""
    code = ('import sys, web.wait_ready; '
            'heavy = [m for m in ("tensorflow", "flask", "grpc", "cv2") if m in sys.modules]; '
            'assert not heavy, heavy')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO, timeout=120)


def test_waits_for_a_served_model(toy_server):
    assert wait_ready.main(['--serving_address', toy_server[0], '--timeout', '30']) == 0


def test_no_model_server(capsys):
    address = '127.0.0.1:%d' % ports.free_port()
    assert wait_ready.main(['--serving_address', address, '--timeout', '0.5']) == 1
    assert "serves no AVAILABLE version of model 'ssd'" in capsys.readouterr().err
