"""web.wait_ready: True once the URL answers 200, False after the timeout."""
import http.server
import os
import socket
import subprocess
import sys
import threading

from web import wait_ready

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        self.send_response(200 if self.path == '/healthz' else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_ready_url_and_unready_url():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = 'http://127.0.0.1:%d' % server.server_address[1]
        assert wait_ready.wait_ready(base + '/healthz', 10)
        assert not wait_ready.wait_ready(base + '/other', 0.5, interval_s=0.1)
        assert wait_ready.main(['--url', base + '/other', '--timeout', '0.2']) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_nothing_listening():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    assert not wait_ready.wait_ready('http://127.0.0.1:%d/healthz' % port, 0.3, interval_s=0.1)


def test_is_light():
    """Polling a URL needs neither TensorFlow nor Flask (web/__init__ imported the whole app)."""
    code = ('import sys, web.wait_ready; '
            'heavy = [m for m in ("tensorflow", "flask", "grpc", "cv2") if m in sys.modules]; '
            'assert not heavy, heavy')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO, timeout=120)


def test_waits_for_a_served_model(toy_server):
    address, _ = toy_server
    assert wait_ready.wait_serving(address, 'ssd', 30, interval_s=0.1)
    assert not wait_ready.wait_serving(address, 'other_model', 0.5, interval_s=0.1)
    assert wait_ready.main(['--serving_address', address, '--timeout', '30']) == 0


def test_no_model_server(capsys):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    address = '127.0.0.1:%d' % port
    assert wait_ready.main(['--serving_address', address, '--timeout', '0.5']) == 1
    assert "serves no AVAILABLE version of model 'ssd'" in capsys.readouterr().err
