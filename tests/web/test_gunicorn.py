"""The app under gunicorn (web/gunicorn.conf.py): over-long query strings get the app's JSON."""
import http.client
import os
import subprocess
import sys
import time

import pytest

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
