"""Property test of the upload path: any bytes give 200, 400, 413 or 415, never a 500."""
import io

import numpy as np
import PIL.Image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.ssd_client import Detection, DetectionResult
from web import create_app


class _ToyClient:
    """A serving backend that accepts any decoded image and returns one box."""

    model_name, signature, network = 'toy', 'serving_default', 'ssd_300_mobilenet_v2'

    def detect(self, image, score_threshold=None):
        height, width = image.shape[:2]
        box = [0.0, 0.0, width / 2, height / 2]
        return DetectionResult(width, height, [Detection(1, 'circle', 0.9, box)],
                               {'name': 'toy', 'version': 1, 'signature': self.signature},
                               {'preprocess': 0.2, 'predict': 0.6, 'postprocess': 0.2,
                                'total': 1.0})

    def model_info(self):
        class Info:
            version, input_hw, class_names = 1, (300, 300), {0: 'background', 1: 'circle'}
        return Info


def _encoded(fmt, **kwargs):
    yy, xx = np.mgrid[:96, :128]
    picture = np.stack([yy * 2, xx * 2, (yy + xx) % 256], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(picture).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


REAL_FILES = [_encoded('JPEG'), _encoded('JPEG', progressive=True), _encoded('PNG'),
              _encoded('GIF'), _encoded('BMP'), _encoded('WEBP')]
APP = create_app({'CLIENT': _ToyClient(), 'TESTING': True, 'MAX_UPLOAD_MB': 0.05,
                  'MAX_IMAGE_PIXELS': 200_000})

real_file = st.sampled_from(REAL_FILES)
truncated = st.tuples(real_file, st.floats(0, 1)).map(lambda t: t[0][:int(len(t[0]) * t[1])])
appended = st.tuples(real_file, st.binary(max_size=3000)).map(lambda t: t[0] + t[1])
flipped = st.tuples(real_file, st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                        min_size=1, max_size=8)).map(
    lambda t: bytes(_flip(t[0], t[1])))
uploads = st.one_of(st.binary(max_size=4096), truncated, appended, flipped,
                    st.tuples(st.binary(max_size=64), real_file).map(lambda t: t[0] + t[1]))


def _flip(data, changes):
    out = bytearray(data)
    for position, value in changes:
        out[min(int(position * len(out)), len(out) - 1)] = value
    return out


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=uploads, raw=st.booleans(), page=st.booleans())
def test_any_upload_gets_a_client_status_never_500(data, raw, page):
    client = APP.test_client()
    path = '/' if page else '/api/v1/detect'
    if raw:
        response = client.post(path, data=data, content_type='image/jpeg')
    else:
        response = client.post(path, data={'image': (io.BytesIO(data), 'f.jpg')})
    assert response.status_code in (200, 400, 413, 415), response.get_data()[:300]
    if response.status_code != 200 and not page:
        assert response.json['error']['code'] != 'internal_error'
