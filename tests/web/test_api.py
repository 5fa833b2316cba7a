"""POST /api/v1/detect, GET /api/v1/model, GET /healthz: with a fake client and a real server."""
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from client.ssd_client import Detection, InvalidImage, ServingError, ServingUnavailable
from tests import helpers
from web import create_app


def _post_file(client, data, filename='shapes.png', **fields):
    return client.post('/api/v1/detect', data={'image': (io.BytesIO(data), filename), **fields})


def _png_header_only(width, height):
    """A PNG whose header claims width x height but which holds almost no data (a 'bomb')."""
    def chunk(kind, payload):
        return (struct.pack('>I', len(payload)) + kind + payload +
                struct.pack('>I', zlib.crc32(kind + payload) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
            chunk(b'IDAT', zlib.compress(b'\0' * 64)) +
            chunk(b'IEND', b''))


def _assert_error(response, status, code):
    assert response.status_code == status, response.data
    assert response.is_json
    assert response.json['error']['code'] == code
    assert response.json['error']['status'] == status
    assert b'Traceback' not in response.data


def test_detect_multipart(fake_app, fake_client, images):
    data = images.encode(images.shapes(), 'PNG')
    response = _post_file(fake_app.test_client(), data, score_threshold='0.25')
    assert response.status_code == 200
    body = response.json
    assert body['image'] == {'width': 160, 'height': 120}
    assert body['model'] == {'name': 'fake-ssd', 'version': 7, 'signature': 'serving_default'}
    assert body['score_threshold'] == 0.25
    assert [d['class_name'] for d in body['detections']] == ['circle', 'triangle']
    assert body['detections'][0] == {'class_id': 1, 'class_name': 'circle', 'score': 0.9,
                                     'box_px': [2.0, 3.0, 20.0, 18.0]}
    assert body['below_threshold'] == []
    timing = body['timing_ms']
    assert set(timing) == {'read', 'decode', 'preprocess', 'predict', 'postprocess', 'total'}
    assert (timing['preprocess'], timing['predict'], timing['postprocess']) == (2.0, 5.0, 1.0)
    [(array, threshold)] = fake_client.calls  # decoded once by the app, sent as pixels
    assert threshold == 0.0  # every detection: the app names the best ones under 0.25
    np.testing.assert_array_equal(array, images.shapes())


def test_detect_names_the_best_detections_under_the_threshold(fake_app, fake_client, images):
    fake_client.detections = [Detection(1, 'circle', 0.12, [2.0, 3.0, 20.0, 18.0])] + [
        Detection(2, 'square', score, [1.0, 1.0, 9.0, 9.0]) for score in (0.05, 0.3, 0.2, 0.02)]
    body = _post_file(fake_app.test_client(), images.encode(images.shapes())).json
    assert body['score_threshold'] == 0.5 and body['detections'] == []
    assert [(d['class_name'], d['score']) for d in body['below_threshold']] == [
        ('square', 0.3), ('square', 0.2), ('circle', 0.12)]
    assert body['below_threshold'][2]['box_px'] == [2.0, 3.0, 20.0, 18.0]


def test_detect_raw_body_uses_default_threshold(fake_app, fake_client, images):
    data = images.encode(images.shapes(), 'JPEG')
    response = fake_app.test_client().post('/api/v1/detect', data=data, content_type='image/jpeg')
    assert response.status_code == 200
    assert [d['class_name'] for d in response.json['detections']] == ['circle']
    assert [d['class_name'] for d in response.json['below_threshold']] == ['triangle']
    [(array, _)] = fake_client.calls
    assert array.shape == (120, 160, 3) and response.json['score_threshold'] == 0.5


def test_detect_raw_body_threshold_in_query(fake_app, fake_client, images):
    data = images.encode(images.shapes(), 'PNG')
    response = fake_app.test_client().post('/api/v1/detect?score_threshold=0.1', data=data,
                                           content_type='image/png')
    assert response.status_code == 200
    assert response.json['score_threshold'] == 0.1
    assert len(response.json['detections']) == 2


@pytest.mark.parametrize('value', ['abc', '-0.1', '1.5', 'nan'])
def test_bad_threshold(fake_app, images, value):
    response = _post_file(fake_app.test_client(), images.encode(images.shapes()),
                          score_threshold=value)
    _assert_error(response, 400, 'invalid_score_threshold')
    assert 'score_threshold' in response.json['error']['message']


def test_no_file(fake_app):
    client = fake_app.test_client()
    _assert_error(client.post('/api/v1/detect', data={'other': 'x'}), 400, 'no_file')
    _assert_error(client.post('/api/v1/detect'), 400, 'no_file')
    _assert_error(client.post('/api/v1/detect', data={'image': (io.BytesIO(b''), '')}), 400,
                  'no_file')


def test_empty_file(fake_app):
    response = _post_file(fake_app.test_client(), b'', 'empty.jpg')
    _assert_error(response, 400, 'empty_file')
    assert 'empty.jpg' in response.json['error']['message']
    response = fake_app.test_client().post('/api/v1/detect', data=b'', content_type='image/png')
    _assert_error(response, 400, 'empty_file')


def test_not_an_image(fake_app, fake_client):
    response = _post_file(fake_app.test_client(), b'%PDF-1.4 hello', 'doc.png')
    _assert_error(response, 400, 'not_an_image')
    assert fake_client.calls == []


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
def test_truncated_image(fake_app, fake_client, images, fmt):
    data = images.encode(images.shapes(), fmt)
    response = _post_file(fake_app.test_client(), data[:len(data) * 2 // 3], 'cut.' + fmt.lower())
    _assert_error(response, 400, 'truncated_image')
    assert fake_client.calls == []


def test_jpeg_with_thumbnail_end_marker_before_scan_is_truncated(fake_app, images):
    """An end-of-image marker before the last scan (e.g. in an EXIF thumbnail) does not count."""
    data = images.encode(images.shapes(), 'JPEG')
    sos = data.rfind(b'\xff\xda')
    cut = data[:sos] + data[sos:sos + (len(data) - sos) // 2]
    cut = cut[:20] + b'\xff\xd9' + cut[20:]
    _assert_error(_post_file(fake_app.test_client(), cut, 'x.jpg'), 400, 'truncated_image')


def test_upload_too_large(fake_app, fake_client):
    big = np.random.default_rng(0).integers(0, 256, 2 * 2**20, dtype=np.uint8).tobytes()
    response = _post_file(fake_app.test_client(), big, 'big.png')
    _assert_error(response, 413, 'file_too_large')
    assert '1 MB' in response.json['error']['message']
    response = fake_app.test_client().post('/api/v1/detect', data=big, content_type='image/png')
    _assert_error(response, 413, 'file_too_large')
    assert fake_client.calls == []


def test_file_just_over_limit_inside_multipart_slack(fake_app, images):
    data = images.encode(images.shapes(), 'PNG')
    data += b'\0' * (2**20 + 10 - len(data))
    _assert_error(_post_file(fake_app.test_client(), data, 'padded.png'), 413, 'file_too_large')


def test_decompression_bomb_refused_from_header(fake_app, fake_client):
    response = _post_file(fake_app.test_client(), _png_header_only(5000, 5000), 'bomb.png')
    _assert_error(response, 413, 'too_many_pixels')
    assert '5000x5000' in response.json['error']['message']
    assert '1,000,000' in response.json['error']['message']
    assert fake_client.calls == []


def test_huge_bomb_beyond_pil_limit(fake_app):
    response = _post_file(fake_app.test_client(), _png_header_only(100000, 100000), 'bomb.png')
    _assert_error(response, 413, 'too_many_pixels')


@pytest.mark.parametrize('content_type', ['text/plain', 'application/json', 'application/pdf'])
def test_unsupported_content_type(fake_app, content_type):
    response = fake_app.test_client().post('/api/v1/detect', data=b'{"a": 1}',
                                           content_type=content_type)
    _assert_error(response, 415, 'unsupported_content_type')


def test_unsupported_image_format(fake_app, fake_client, images):
    """TIFF: OpenCV reads it but the export's tf.io.decode_image does not."""
    data = images.encode(images.shapes(), 'TIFF')
    response = _post_file(fake_app.test_client(), data, 'a.tif')
    _assert_error(response, 415, 'unsupported_image_format')
    assert 'TIFF' in response.json['error']['message']
    assert 'JPEG, PNG, GIF, BMP and WebP' in response.json['error']['message']
    assert fake_client.calls == []


@pytest.mark.parametrize('fmt', ['GIF', 'BMP', 'WEBP'])
def test_formats_both_decoders_read_are_accepted(fake_app, images, fmt):
    """GIF was refused although the detect signature's decoder reads it."""
    response = _post_file(fake_app.test_client(), images.encode(images.shapes(), fmt), 'a.img')
    assert response.status_code == 200, response.data
    assert response.json['image'] == {'width': 160, 'height': 120}


def test_serving_unavailable_is_503_with_retry_after(fake_app, fake_client, images):
    fake_client.error = ServingUnavailable('DEADLINE_EXCEEDED from x: slow')
    response = _post_file(fake_app.test_client(), images.encode(images.shapes()))
    _assert_error(response, 503, 'serving_unavailable')
    assert response.headers['Retry-After'] == '5'
    _assert_error(fake_app.test_client().get('/api/v1/model'), 503, 'serving_unavailable')
    health = fake_app.test_client().get('/healthz')
    assert health.status_code == 503 and health.json['status'] == 'unavailable'


def test_client_errors_are_mapped(fake_app, fake_client, images):
    fake_client.error = InvalidImage('cannot decode image (10x10)')
    _assert_error(_post_file(fake_app.test_client(), images.encode(images.shapes())), 400,
                  'invalid_image')
    fake_client.error = ServingError('INVALID_ARGUMENT from x: bad')
    _assert_error(_post_file(fake_app.test_client(), images.encode(images.shapes())), 502,
                  'serving_error')


def test_unexpected_error_is_json_500_without_traceback(fake_app, fake_client, images):
    fake_client.error = RuntimeError('boom')
    response = _post_file(fake_app.test_client(), images.encode(images.shapes()))
    _assert_error(response, 500, 'internal_error')
    assert b'boom' not in response.data


def test_app_keeps_serving_after_errors(fake_app, images):
    client = fake_app.test_client()
    for bad in [b'', b'junk', images.encode(images.shapes(), 'JPEG')[:100]]:
        assert _post_file(client, bad, 'bad.jpg').status_code in (400, 413)
    assert _post_file(client, images.encode(images.shapes())).status_code == 200


def test_model_and_health_with_fake(fake_app):
    client = fake_app.test_client()
    model = client.get('/api/v1/model').json
    assert model == {'name': 'fake-ssd', 'version': 7, 'signature': 'serving_default',
                     'network': 'ssd_300_mobilenet_v2', 'input_size': [300, 300],
                     'classes': {'0': 'background', '1': 'circle', '2': 'square', '3': 'triangle',
                                 '4': 'star', '5': 'cross'}}
    health = client.get('/healthz')
    assert health.status_code == 200
    assert health.json == {'status': 'ok', 'model': 'fake-ssd', 'versions': [7], 'replicas': [
        {'address': 'fake:8500', 'versions': [{'version': 7, 'state': 'AVAILABLE'}]}]}


def test_unknown_route_and_method_are_json(fake_app):
    client = fake_app.test_client()
    _assert_error(client.get('/api/v1/nothing'), 404, 'not_found')
    _assert_error(client.get('/api/v1/detect'), 405, 'method_not_allowed')


# --- against the real model server (random ssd_300_mobilenet_v2) --------------------------------

def test_real_detect_model_health(real_app, images):
    client = real_app.test_client()
    data = images.encode(images.shapes(90, 140), 'JPEG')
    response = _post_file(client, data, 'shapes.jpg', score_threshold='0.05')
    assert response.status_code == 200, response.data
    body = response.json
    assert body['image'] == {'width': 140, 'height': 90}
    assert body['model'] == {'name': 'ssd', 'version': 1, 'signature': 'serving_default',
                             'network': 'ssd_300_mobilenet_v2'}
    assert body['detections'], 'a random model gives scores near 1/6 > 0.05'
    for det in body['detections']:
        assert det['score'] >= 0.05
        assert det['class_name'] == ['background', 'circle', 'square', 'triangle', 'star',
                                     'cross'][det['class_id']]
        xmin, ymin, xmax, ymax = det['box_px']
        assert 0 <= xmin <= xmax <= 140 and 0 <= ymin <= ymax <= 90
    scores = [d['score'] for d in body['detections']]
    assert scores == sorted(scores, reverse=True)
    timing = body['timing_ms']
    assert timing['predict'] > 0
    # The phases run one after the other inside the request: their sum is within the total.
    phases = ('read', 'decode', 'preprocess', 'predict', 'postprocess')
    assert sum(timing[name] for name in phases) <= timing['total'] + 0.5
    model = client.get('/api/v1/model').json
    assert model['name'] == 'ssd' and model['version'] == 1 and model['input_size'] == [300, 300]
    assert model['classes']['1'] == 'circle'
    assert client.get('/healthz').status_code == 200


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'I;16'])
def test_real_detect_other_pixel_formats(real_app, images, mode):
    grey = images.shapes(64, 64)[..., 0]
    array = {'L': grey,
             'RGBA': np.dstack([images.shapes(64, 64), np.full((64, 64), 255, np.uint8)]),
             'I;16': grey.astype(np.uint16) * 257}[mode]
    response = _post_file(real_app.test_client(), images.encode(array, 'PNG'), 'x.png')
    assert response.status_code == 200, response.data
    assert response.json['image'] == {'width': 64, 'height': 64}


def test_server_down_is_503_with_retry_after(unused_address, images):
    app = create_app({'TESTING': True, 'SERVING_ADDRESS': unused_address, 'SERVING_RETRIES': 1,
                      'SERVING_TIMEOUT': 2})
    client = app.test_client()
    response = _post_file(client, images.encode(images.shapes()))
    _assert_error(response, 503, 'serving_unavailable')
    assert int(response.headers['Retry-After']) > 0
    assert 'UNAVAILABLE' in response.json['error']['message']
    _assert_error(client.get('/api/v1/model'), 503, 'serving_unavailable')
    health = client.get('/healthz')
    assert health.status_code == 503 and 'Retry-After' in health.headers


def test_server_too_slow_is_503_within_deadline(images):
    """A listener that never answers: the client's deadline (1 s) ends the request with a 503."""
    with socket.socket() as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen(8)
        address = '127.0.0.1:%d' % silent.getsockname()[1]
        app = create_app({'TESTING': True, 'SERVING_ADDRESS': address, 'SERVING_TIMEOUT': 1,
                          'SERVING_RETRIES': 0})
        response = _post_file(app.test_client(), images.encode(images.shapes()))
    _assert_error(response, 503, 'serving_unavailable')
    assert 'Retry-After' in response.headers


# Runs in a fresh interpreter where importing tensorflow (or tensorflow_serving) raises.
_WEB_WITHOUT_TENSORFLOW = helpers.BLOCK_TENSORFLOW + r'''
import io, json, sys
import numpy as np, PIL.Image
import web
app = web.create_app({'SERVING_ADDRESS': sys.argv[1], 'SCORE_THRESHOLD': 0.0})
picture = np.random.RandomState(0).randint(0, 256, [30, 40, 3], dtype=np.uint8)
buffer = io.BytesIO()
PIL.Image.fromarray(picture).save(buffer, 'PNG')
client = app.test_client()
answer = client.post('/api/v1/detect', data=buffer.getvalue(), content_type='image/png')
health = client.get('/healthz')
print(json.dumps({'status': answer.status_code, 'body': answer.json, 'health': health.json,
                  'tf': sorted(m for m in sys.modules if m.startswith('tensorflow'))}))
'''


def test_web_detects_where_tensorflow_cannot_be_imported(toy_server):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, '-c', _WEB_WITHOUT_TENSORFLOW, toy_server[0]],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=root))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer['tf'] == []
    assert answer['status'] == 200 and answer['body']['detections'], answer
    assert answer['body']['model'] == {'name': 'ssd', 'version': 1, 'signature': 'serving_default',
                                       'network': 'toy'}
    assert answer['health']['status'] == 'ok' and answer['health']['versions'] == [1]
    assert answer['health']['replicas'] == [
        {'address': toy_server[0], 'versions': [{'version': 1, 'state': 'AVAILABLE'}]}]
