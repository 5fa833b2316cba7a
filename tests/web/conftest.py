"""Fixtures: a fake client, synthetic images, and a real model server serving a random SSD."""
import io
import types

import numpy as np
import PIL.Image
import pytest

from client.ssd_client import Detection, DetectionResult
from common import ports
from serving import launch
from web import config as web_config
from web import create_app

CLASSES = ['background', 'circle', 'square', 'triangle', 'star', 'cross']
NETWORK = 'ssd_300_mobilenet_v2'


class FakeClient:
    """Stands in for SSDClient: fixed detections, or raises `error` when set.

    The app sends decoded RGB arrays; `calls` records (array, score_threshold).
    """

    model_name = 'fake-ssd'
    signature = 'serving_default'

    def __init__(self):
        self.error = None
        self.calls = []
        # Boxes in pixels of the array the app sends.
        self.detections = [Detection(1, 'circle', 0.9, [2.0, 3.0, 20.0, 18.0]),
                           Detection(3, 'triangle', 0.3, [10.0, 10.0, 30.0, 28.0])]

    def detect(self, image, score_threshold=None):
        self.calls.append((image, score_threshold))
        if self.error:
            raise self.error
        height, width = image.shape[:2]
        kept = [d for d in self.detections if d.score >= score_threshold]
        return DetectionResult(width, height, kept, {'name': self.model_name, 'version': 7,
                                                     'signature': self.signature},
                               {'decode': 1.0, 'preprocess': 2.0, 'predict': 5.0,
                                'postprocess': 1.0, 'total': 10.0})

    def model_info(self):
        if self.error:
            raise self.error
        return types.SimpleNamespace(version=7, network=NETWORK, input_hw=(300, 300),
                                     class_names=dict(enumerate(CLASSES)))

    def status(self):
        if self.error:
            raise self.error
        return {'name': self.model_name, 'versions': [{'version': 7, 'state': 'AVAILABLE'}]}

    def replica_status(self):
        if self.error:
            return [{'address': 'fake:8500', 'error': str(self.error)}]
        return [{'address': 'fake:8500', 'versions': self.status()['versions']}]


def encode(array, fmt='PNG', **kwargs):
    """Encodes a uint8 array with PIL; returns bytes."""
    out = io.BytesIO()
    PIL.Image.fromarray(array).save(out, fmt, **kwargs)
    return out.getvalue()


def shapes_image(height=120, width=160):
    """A synthetic RGB uint8 [H, W, 3] picture: a red disc and a blue square on grey."""
    image = np.full((height, width, 3), 200, np.uint8)
    yy, xx = np.mgrid[:height, :width]
    image[(yy - height // 3) ** 2 + (xx - width // 3) ** 2 < (height // 5) ** 2] = (220, 30, 30)
    image[height // 2:height - 10, width // 2:width - 15] = (30, 60, 220)
    return image


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """The app reads settings from the environment; tests start from none."""
    for name in web_config.DEFAULTS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def unused_address():
    """host:port where nothing listens."""
    return f'127.0.0.1:{ports.free_port()}'


@pytest.fixture
def fake_client():
    return FakeClient()


@pytest.fixture
def fake_app(fake_client):
    return create_app({'CLIENT': fake_client, 'TESTING': True, 'MAX_UPLOAD_MB': 1,
                       'MAX_IMAGE_PIXELS': 1_000_000})


@pytest.fixture
def images():
    """Helpers to make test images (test modules cannot import conftest under importlib mode)."""
    return types.SimpleNamespace(encode=encode, shapes=shapes_image)


@pytest.fixture(scope='session')
def model_server(tmp_path_factory):
    """`python -m serving.model_server` serving a random SSD on a free port.

    Yields a namespace with `address`.
    """
    root = tmp_path_factory.mktemp('web_model')
    from export import random_model  # pylint: disable=import-outside-toplevel
    base = random_model.export_random(NETWORK, str(root), CLASSES)
    with open(root / 'model_server.log', 'wb') as log:
        process, address = launch.start_model_server(base, flags=['--max_workers=8'], log=log)
        try:
            launch.wait_until_serving(address, process, deadline_s=120)
            yield types.SimpleNamespace(address=address)
        finally:
            launch.stop_process(process)


@pytest.fixture
def real_app(model_server):
    return create_app({'TESTING': True, 'SERVING_ADDRESS': model_server.address,
                       'SERVING_RETRIES': 1,
                       'SERVING_TIMEOUT': 30, 'SCORE_THRESHOLD': 0.05})
