"""web/service.py: one header read and one decode per upload, large JPEGs decoded small."""
import io

import cv2
import numpy as np
import PIL.Image

from common import images as images_lib
from web import create_app


def _jpeg(height, width, exif_orientation=None):
    picture = cv2.resize(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8),
                         (width, height))
    exif = PIL.Image.Exif()
    if exif_orientation:
        exif[images_lib.EXIF_ORIENTATION] = exif_orientation
    buffer = io.BytesIO()
    PIL.Image.fromarray(picture).save(buffer, 'JPEG', quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _post(app, data, path='/api/v1/detect', filename='big.jpg'):
    return app.test_client().post(path, data={'image': (io.BytesIO(data), filename),
                                              'score_threshold': '0.1'})


def _app(fake_client, **config):
    return create_app({'CLIENT': fake_client, 'TESTING': True, **config})


def test_large_jpeg_is_decoded_reduced_and_boxes_are_in_full_pixels(fake_client):
    """2400x1800 with a 300x300 network: decoded at 1/2 (1200x900 >= 2 x 300)."""
    response = _post(_app(fake_client), _jpeg(1800, 2400))
    assert response.status_code == 200, response.json
    [(array, _)] = fake_client.calls
    assert array.shape == (900, 1200, 3)
    body = response.json
    assert body['image'] == {'width': 2400, 'height': 1800}
    assert body['detections'][0]['box_px'] == [4.0, 6.0, 40.0, 36.0]   # fake's [2, 3, 20, 18] x 2


def test_rotated_jpeg_is_reduced_upright(fake_client):
    response = _post(_app(fake_client), _jpeg(1800, 2400, exif_orientation=6))
    [(array, _)] = fake_client.calls
    assert array.shape == (1200, 900, 3)
    assert response.json['image'] == {'width': 1800, 'height': 2400}


def test_large_png_is_averaged_down_and_small_jpeg_kept(fake_client, images):
    app = _app(fake_client)
    assert _post(app, images.encode(images.shapes(1800, 2400), 'PNG'), filename='a.png').json[
        'image'] == {'width': 2400, 'height': 1800}
    assert _post(app, _jpeg(900, 1100)).status_code == 200
    assert [call[0].shape for call in fake_client.calls] == [(900, 1200, 3), (900, 1100, 3)]


def test_page_reads_the_header_once_and_decodes_once(fake_client, monkeypatch):
    counts = {'header': 0, 'decode': 0}
    read_header, imdecode = images_lib.read_header, cv2.imdecode

    def counted_header(*args, **kwargs):
        counts['header'] += 1
        return read_header(*args, **kwargs)

    def counted_decode(*args, **kwargs):
        counts['decode'] += 1
        return imdecode(*args, **kwargs)

    monkeypatch.setattr(images_lib, 'read_header', counted_header)
    monkeypatch.setattr(images_lib.cv2, 'imdecode', counted_decode)
    response = _post(_app(fake_client), _jpeg(1800, 2400), path='/')
    assert response.status_code == 200
    assert counts == {'header': 1, 'decode': 1}
    html = response.get_data(as_text=True)
    assert '2400&times;1800 px' in html and '<td class="box">4, 6, 40, 36</td>' in html


def test_saturated_worker_answers_503(fake_client, images):
    app = _app(fake_client, DECODE_PIXEL_BUDGET=1000, SERVING_TIMEOUT=0.2)
    budget = app.extensions['pixel_budget']
    with budget.hold(1000, timeout_s=1):
        response = _post(app, images.encode(images.shapes(), 'PNG'), filename='a.png')
    assert response.status_code == 503 and response.json['error']['code'] == 'busy'
    assert response.headers['Retry-After'] == '5'
    assert _post(app, images.encode(images.shapes(), 'PNG'), filename='a.png').status_code == 200
