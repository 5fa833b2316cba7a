"""The app under gunicorn (web/gunicorn.conf.py): over-long query strings get the app's JSON;
the access log escapes control bytes."""
import datetime
import http.client
import os
import socket
import subprocess
import sys
import time
import types

import pytest
from gunicorn import config

from web import access_log

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _get(port, path):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        return response.status, response.getheader('Content-Type', ''), response.read()
    finally:
        connection.close()


@pytest.fixture
def gunicorn_port(unused_address, tmp_path):
    """gunicorn with one worker on a free port (the model server address is unused)."""
    port = int(unused_address.rsplit(':', 1)[1])
    env = dict(os.environ, SERVING_ADDRESS='127.0.0.1:1', SERVING_RETRIES='0', SERVING_TIMEOUT='1',
               WEB_BIND=f'127.0.0.1:{port}', WEB_WORKERS='1', WEB_LOG_LEVEL='warning')
    with open(tmp_path / 'gunicorn.log', 'wb') as log:
        process = subprocess.Popen([sys.executable, '-m', 'gunicorn', '-c', 'web/gunicorn.conf.py',
                                    'web:create_app()'], cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / 'gunicorn.log').read_text()
            try:
                if _get(port, '/static/favicon.svg')[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, 'gunicorn did not answer within 120 s'
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow
def test_long_query_string_is_answered_by_the_app_in_json(gunicorn_port):
    """5000 bytes passed gunicorn's default request line limit (4094): it answered in HTML."""
    status, content_type, body = _get(gunicorn_port, '/api/v1/model?x=' + 'a' * 5000)
    assert status == 414 and content_type == 'application/json', body[:200]
    assert b'query_too_long' in body
    # Beyond gunicorn's maximum request line (8190 bytes) gunicorn itself answers (documented).
    status, _, _ = _get(gunicorn_port, '/api/v1/model?x=' + 'a' * 9000)
    assert status == 400


def test_access_log_escapes_control_bytes():
    """User-Agent, Referer and the request line reach the access log escaped: no terminal
    escapes, no forged lines."""
    atoms = access_log.EscapingLogger(config.Config()).atoms(
        types.SimpleNamespace(status='200 OK', sent=2, headers=[]), [],
        {'REQUEST_METHOD': 'GET', 'RAW_URI': '/a\x1b', 'SERVER_PROTOCOL': 'HTTP/1.1',
         'HTTP_USER_AGENT': 'evil\x1b[31m\x00"\\\xff\u2028', 'HTTP_REFERER': 'x\ny'},
        datetime.timedelta(seconds=1))
    assert atoms['a'] == 'evil\\x1b[31m\\x00\\x22\\x5c\\xff\\u2028'
    assert atoms['f'] == 'x\\x0ay' and atoms['r'] == 'GET /a\\x1b HTTP/1.1'
    assert atoms['s'] == '200' and atoms['B'] == 2


@pytest.mark.slow
def test_gunicorn_writes_escaped_access_log_lines(gunicorn_port, tmp_path):
    with socket.create_connection(('127.0.0.1', gunicorn_port), timeout=10) as sock:
        sock.sendall(b'GET /static/favicon.svg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
                     b'User-Agent: evil\x1b[2J\r\nReferer: r\x1b]0;owned\x07\r\n\r\n')
        while sock.recv(65536):
            pass
    log = tmp_path / 'gunicorn.log'
    deadline = time.monotonic() + 30
    while b'evil' not in log.read_bytes():
        assert time.monotonic() < deadline, log.read_bytes()[-500:]
        time.sleep(0.1)
    line = next(line for line in log.read_bytes().splitlines() if b'evil' in line)
    assert b'\x1b' not in line and b'\x07' not in line
    assert b'evil\\x1b[2J' in line and b'r\\x1b]0;owned\\x07' in line
