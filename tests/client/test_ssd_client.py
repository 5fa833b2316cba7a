"""SSDClient against the in-process server with the toy model: pixels, class names, errors."""
import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from client import ssd_client as client_lib
from common import np_post_processing, np_preprocessing


@pytest.fixture
def client(toy_server):
    with client_lib.SSDClient(toy_server[0], score_threshold=0.0, timeout=10) as ssd_client:
        yield ssd_client


def _png(rgb):
    return cv2.imencode('.png', np.ascontiguousarray(rgb[:, :, ::-1]))[1].tobytes()


def _picture(height=20, width=40):
    rng = np.random.RandomState(5)
    return rng.randint(0, 256, [height, width, 3], dtype=np.uint8)


def test_detect_matches_numpy_pipeline_in_pixels(client, toy):
    picture = _picture()
    result = client.detect(_png(picture))
    batch = np_preprocessing.preprocess_image(picture, toy.hw, 'minus_one_to_one')[None]
    scores, boxes = toy.outputs(batch)
    want_boxes, want_scores, want_classes = np_post_processing.postprocess(scores[0], boxes[0])
    assert (result.width, result.height) == (40, 20)
    assert [d.class_id for d in result.detections] == list(want_classes)
    assert [d.class_name for d in result.detections] == [toy.classes[c] for c in want_classes]
    np.testing.assert_allclose([d.score for d in result.detections], want_scores, rtol=1e-5)
    # toy anchor 0 is [ymin 0.1, xmin 0.2, ymax 0.5, xmax 0.6] -> [8, 2, 24, 10] px in a 40x20
    # image.
    by_box = {tuple(np.round(d.box_px, 4)) for d in result.detections}
    assert by_box <= {(8.0, 2.0, 24.0, 10.0), (0.0, 0.0, 40.0, 20.0)}
    assert result.model == {'name': 'ssd', 'version': 1, 'signature': 'serving_default',
                            'network': 'toy'}
    assert set(result.timing_ms) == {'decode', 'preprocess', 'predict', 'postprocess', 'total'}


def test_arrays_and_threshold(client):
    picture = _picture()
    from_bytes = client.detect(_png(picture))
    from_array = client.detect(picture)
    assert [(d.class_id, d.score) for d in from_array.detections] == \
        [(d.class_id, d.score) for d in from_bytes.detections]
    gray = client.detect(picture[:, :, 0])
    assert (gray.width, gray.height) == (40, 20)
    threshold = from_bytes.detections[0].score
    above = client.detect(picture, score_threshold=threshold).detections
    assert all(d.score >= threshold for d in above)


def test_exif_orientation_is_honoured(client):
    exif = Image.Exif()
    exif[client_lib.EXIF_ORIENTATION] = 6  # rotate 90 degrees clockwise for display
    buffer = io.BytesIO()
    Image.fromarray(_picture(20, 40)).save(buffer, 'JPEG', exif=exif.tobytes())
    result = client.detect(buffer.getvalue())
    assert (result.width, result.height) == (20, 40)


def test_invalid_images(client, monkeypatch):
    with pytest.raises(client_lib.InvalidImage, match='cannot identify'):
        client.detect(b'GIF89a but not really')
    with pytest.raises(client_lib.InvalidImage, match='empty'):
        client.detect(b'')
    with pytest.raises(client_lib.InvalidImage, match='shape'):
        client.detect(np.zeros([4, 4, 5], np.uint8))
    big = _png(np.zeros([300, 400, 3], np.uint8))
    monkeypatch.setattr(cv2, 'imdecode',
                        lambda *a: pytest.fail('decoded an oversized image'))
    client.max_pixels = 300 * 400 - 1
    with pytest.raises(client_lib.InvalidImage, match='120000 pixels, the limit is 119999'):
        client.detect(big)


def test_metadata_and_status(client, toy):
    meta = client.metadata()
    assert meta['name'] == 'ssd' and meta['version'] == 1
    assert meta['signatures']['serving_default']['inputs']['images'] == {'dtype': 'DT_FLOAT',
                                                                         'shape': [-1, 4, 4, 3]}
    assert client.status() == {'name': 'ssd', 'versions': [{'version': 1, 'state': 'AVAILABLE'}]}
    assert client.model_info().class_names == dict(enumerate(toy.classes))


def test_labels_file_overrides_export(toy_server, tmp_path):
    path = tmp_path / 'labels.txt'
    path.write_text('0:background\n1:cat\n2:dog\n')
    with client_lib.SSDClient(toy_server[0], score_threshold=0.0,
                              labels_path=str(path)) as ssd_client:
        names = {d.class_name for d in ssd_client.detect(_picture()).detections}
    assert names <= {'cat', 'dog'} and names


def test_server_errors(toy_server):
    with client_lib.SSDClient(toy_server[0], model_name='other') as ssd_client:
        with pytest.raises(client_lib.ServingUnavailable, match='NOT_FOUND'):
            ssd_client.detect(_picture())


def test_unreachable_server_after_retries():
    with client_lib.SSDClient('127.0.0.1:1', timeout=2, retries=2) as ssd_client:
        with pytest.raises(client_lib.ServingUnavailable, match='UNAVAILABLE'):
            ssd_client.status()


def test_new_version_brings_its_class_names(client, toy_base, toy):
    assert client.detect(_picture()).model['version'] == 1
    toy.export(toy_base, classes=['background', 'cat', 'dog'])
    for _ in range(300):  # the server polls every 0.1 s
        result = client.detect(_picture())
        if result.model['version'] == 2:
            break
        time.sleep(0.05)
    assert result.model['version'] == 2
    assert {d.class_name for d in result.detections} <= {'cat', 'dog'} and result.detections
