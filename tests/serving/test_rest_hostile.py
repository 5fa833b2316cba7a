"""The REST API under malformed, oversized and half-sent requests: every one gets TF Serving's
answer (400 {"error": ...} naming the problem, 411, 413 or 404) on a connection that stays
usable, limits are checked before parsing, and slow clients cannot hold the threads."""
import json
import socket
import threading
import time

import numpy as np
import pytest

from serving import model_server, rest_api


@pytest.fixture
def rest(toy_server):
    """The REST API of the toy server with 2 threads and 1 s to receive a request."""
    server = rest_api.start(toy_server[1], '127.0.0.1', 0, threads=2, timeout_s=1.0)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _exchange(port, raw, timeout=20.0):
    """Sends raw bytes; returns (status, JSON body, the rest of what the server sent)."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b''
        while True:
            part = sock.recv(1 << 16)
            if not part:
                break
            data += part
    head, _, rest = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 '), data[:200]
    length = int([line.split(b':')[1] for line in head.split(b'\r\n')
                  if line.lower().startswith(b'content-length:')][0])
    return int(head.split()[1]), json.loads(rest[:length]), rest[length:]


def _post(path, body, headers=()):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = ['POST %s HTTP/1.1' % path, 'Host: x', 'Content-Length: %d' % len(data),
             'Connection: close', *headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode() + data


def _get(path):
    return ('GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % path).encode()


IMAGE = np.zeros([4, 4, 3]).tolist()
PREDICT = '/v1/models/ssd:predict'
CASES = [
    # (raw request, status, words of the error)
    (_post(PREDICT, b'{"instances": ' + b'[' * 100_000 + b']' * 100_000 + b'}'), 400, 'deep'),
    (_post(PREDICT, {'instances': None}), 400, '"instances" must be a list, got null'),
    (_post(PREDICT, {'instances': 5}), 400, '"instances" must be a list, got 5'),
    (_post(PREDICT, {'inputs': None}), 400, '"inputs" must not be null'),
    (_post(PREDICT, {'signature_name': 'detect', 'instances': [{'b64': '!!'}]}), 400,
     'not base64'),
    (_post(PREDICT, {'signature_name': 'detect', 'instances': [{'b64': 5}]}), 400,
     '"b64" must hold a string'),
    (_post('/v1/models/ssd/versions/' + '9' * 5000 + ':predict', {'instances': [IMAGE]}), 400,
     'Failed to convert version'),
    (_get('/v1/models/ssd/versions/99999999999999999999'), 400, 'Failed to convert version'),
    (_post(PREDICT, b'{"signature_name": "detect", "instances": ["\\ud800"]}'), 400,
     'not valid Unicode'),
    (_post(PREDICT, b'\xff\xfe'), 400, 'not UTF-8'),
    (_post(PREDICT, b'[1, 2]'), 400, 'must be a JSON object'),
    (_post(PREDICT, b'{"instances": [1]} extra'), 400, 'extra data'),
    (_post(PREDICT, {'instances': [IMAGE], 'inputs': [IMAGE]}), 400,
     'exactly one of "instances"'),
    (_post(PREDICT, {'instances': [IMAGE] * 50}), 400, 'more than 8 items'),
    (_post(PREDICT, {'inputs': {'images': [IMAGE] * 9}}), 400, '"inputs.images" has more'),
    # Refused at the 9th item: what follows is never parsed.
    (_post(PREDICT, b'{"instances": [' + b'1, ' * 9 + b'x' * 100_000), 400, 'more than 8'),
    (_post('/v1/models/ssd/labels/canary:predict', {'instances': [IMAGE]}), 400,
     'labels are not supported by this server ("canary")'),
    (_get('/v1/models/ssd/labels/stable'), 400, '("stable")'),
    (_post('/v1/models/ssd:classify', {'instances': [IMAGE]}), 400, ':predict only'),
    (_get('/v1/models'), 400, 'Missing model name'),
    (_get('/v1/models/ssd/nothing'), 400, 'Malformed request: GET /v1/models/ssd/nothing'),
    (_post('/v1/models/ssd', {}), 400, 'Malformed request: POST'),
    (_get('/elsewhere'), 404, 'no route'),
    (_get('/v1/models/nope'), 404, 'nope'),
    (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400,
     "Content-Length 'abc'"),
    (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400,
     "Content-Length '-1'"),
    (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\n\r\n', 411, 'Content-Length'),
    (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n',
     413, 'over the limit'),
    (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 400,
     'not supported'),
    (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
     b'zz\r\n', 400, 'chunk size'),
    (b'GARBAGE\r\n\r\n', 400, 'request'),
]


@pytest.mark.parametrize('raw, status, words', CASES, ids=[str(i) for i in range(len(CASES))])
def test_malformed_requests_get_tf_servings_answers(rest, raw, status, words):
    """Each gets an HTTP answer with a JSON error naming the problem, never a dropped
    connection."""
    got, body, _ = _exchange(rest, raw)
    assert (got, set(body)) == (status, {'error'}), body
    assert words in body['error'], body


def test_query_string_and_percent_encoding_are_not_part_of_the_name(rest):
    assert _exchange(rest, _get('/v1/models/ssd?x=1'))[:2] == (200, {'model_version_status': [
        {'version': '1', 'state': 'AVAILABLE',
         'status': {'error_code': 'OK', 'error_message': ''}}]})
    assert _exchange(rest, _get('/v1/models/%73sd/versions/1'))[0] == 200


def test_chunked_body_is_one_request(rest):
    """A chunked body is decoded as the body of its request, not read as a second request."""
    data = json.dumps({'instances': [IMAGE, IMAGE]}).encode()
    chunks = b''.join(b'%x\r\n%s\r\n' % (len(data[i:i + 100]), data[i:i + 100])
                      for i in range(0, len(data), 100))
    raw = (b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
           b'Connection: close\r\n\r\n' + chunks + b'0\r\n\r\n')
    status, body, after = _exchange(rest, raw)
    assert status == 200 and len(body['predictions']) == 2 and after == b''


def test_errors_keep_the_connection_usable(rest):
    bad = _post(PREDICT, {'instances': None}).replace(b'Connection: close', b'X: y')
    status, body, after = _exchange(rest, bad + _get('/v1/models/ssd'))
    assert status == 400
    assert after.startswith(b'HTTP/1.1 200 ')


def test_half_sent_requests_are_cut_off_and_threads_stay_bounded(rest):
    """Half-sent requests are cut off after the request timeout, on a fixed number of
    threads."""
    threads = threading.active_count()
    stalled = []
    for _ in range(12):  # 2 threads, the rest waiting in the backlog or refused
        sock = socket.create_connection(('127.0.0.1', rest), timeout=30)
        sock.sendall(b'POST /v1/models/ssd:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100'
                     b'\r\n\r\n{"inst')
        stalled.append(sock)
    try:
        assert threading.active_count() <= threads + 2
        start = time.monotonic()
        status, _, _ = _exchange(rest, _get('/v1/models/ssd'), timeout=30)
        # Each stalled request is cut off after 1 s, two at a time.
        assert status == 200 and time.monotonic() - start < 15
        for sock in stalled:  # every one was closed (after an answer, if any): none is held
            sock.settimeout(15)
            while sock.recv(1 << 16):
                pass
    finally:
        for sock in stalled:
            sock.close()


def test_rest_api_listens_on_this_machine_unless_asked():
    args = model_server._parse_args(['--model_base_path=x', '--rest_api_port=8501'])
    assert (args.rest_api_host, args.host) == ('127.0.0.1', '0.0.0.0')
    assert (args.rest_api_num_threads, args.rest_api_timeout_in_ms) == (8, 30000)
    assert (args.max_workers, args.max_inflight_predicts) == (64, 16)
    assert model_server._parse_args(['--model_base_path=x', '--max_workers=8']
                                    ).max_inflight_predicts == 4
