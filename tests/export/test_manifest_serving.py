"""Self-describing exports: an export of each input size and normalisation, asked with default
settings (no network or normalisation named anywhere) through SSDClient and the web JSON API,
gives the detections of its in-graph `detect` signature; the manifest reaches a client through
the stock tensorflow-serving-api stubs, as TF Serving serves it; exports without or with a
malformed manifest get clear errors."""
import io
import json
import os

import grpc
import numpy as np
import PIL.Image
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from client import ssd_client
from common import (
    images,
    manifest,
    normalization,
    np_box_ops,
    np_post_processing,
    np_preprocessing,
    signatures,
)
from export import random_model
from nets import nets_factory
from serving import model_server
from serving.model_manager import ModelManager
from tests import helpers
from web import create_app

CLASSES = ['background', 'circle', 'square', 'triangle']
# One network per input size and normalisation (ssd_300_vgg_bn has ssd_300_vgg's).
NETWORKS = ('ssd_300_vgg', 'ssd_512_vgg', 'ssd_300_mobilenet_v2')
TOP = 5
# A VGG network on two busy cores: generous deadlines.
TIMEOUT_S = 300


def _picture():
    """A 150x200 JPEG: a red disc and a blue square on grey."""
    image = np.full((150, 200, 3), 200, np.uint8)
    yy, xx = np.mgrid[:150, :200]
    image[(yy - 50) ** 2 + (xx - 60) ** 2 < 30 ** 2] = (220, 30, 30)
    image[80:140, 110:185] = (30, 60, 220)
    out = io.BytesIO()
    PIL.Image.fromarray(image).save(out, 'JPEG', quality=95)
    return out.getvalue()


@pytest.fixture(scope='module')
def servers(tmp_path_factory):
    """One in-process model server per network, each serving a random export of it."""
    running = {}
    try:
        for name in NETWORKS:
            root = str(tmp_path_factory.mktemp(name))
            base = random_model.export_random(name, root, CLASSES,
                                              calibrate=True)
            manager = ModelManager('ssd', base)
            manager.start()
            server, port = model_server.create_server(manager, 0, host='127.0.0.1',
                                                      max_workers=4)
            server.start()
            running[name] = (manager, server, '127.0.0.1:%d' % port, base)
        yield {name: address for name, (_, _, address, _) in running.items()}
    finally:
        for manager, server, _, _ in running.values():
            server.stop(0).wait()
            manager.stop()


def _iou(box_a, box_b):
    """IoU of two boxes in pixels [xmin, ymin, xmax, ymax]."""
    return np_box_ops.iou(np.array([box_a]), np.array([box_b]))[0, 0]


def _matches(reference, candidates):
    """Whether each reference detection is found among the candidates: one of its class with a
    score within 0.01 and IoU >= 0.9, or, where NMS chose between near-equal scores the other
    way, one of its class with a score within 0.01 that suppresses it (IoU > 0.45)."""
    for want in reference:
        close = [got for got in candidates if got['class_id'] == want['class_id']
                 and abs(got['score'] - want['score']) <= 0.01]
        if not any(_iou(want['box'], got['box']) >= 0.9 for got in close) and not any(
                _iou(want['box'], got['box']) > 0.45 and got['score'] >= want['score'] - 0.01
                for got in close):
            return False
    return True


def _client_side(address, data, kind):
    """Detections of the serving_default signature on `data` normalised as `kind`."""
    with ssd_client.SSDClient(address, timeout=TIMEOUT_S) as client:
        info = client.model_info()
        rgb = images.decode_image(data)
        batch = np_preprocessing.preprocess_image(rgb, info.input_hw, kind)[None]
        outputs, _ = client.predict({signatures.IMAGES: batch})
    boxes, scores, classes = np_post_processing.postprocess(
        outputs[signatures.SCORES][0], outputs[signatures.BOXES][0])
    return ssd_client.pixel_detections(boxes, scores, classes, info.class_names, rgb.shape[0],
                                       rgb.shape[1], 0.0)


def _as_dicts(detections):
    return [{'class_id': d.class_id, 'score': d.score, 'box': d.box_px} for d in detections]


@pytest.mark.slow
@pytest.mark.parametrize('name', NETWORKS)
def test_defaults_give_the_in_graph_detections(servers, name):
    address = servers[name]
    data = _picture()
    with ssd_client.SSDClient(address, signature='detect', score_threshold=0.0,
                              timeout=TIMEOUT_S) as in_graph:
        reference = _as_dicts(in_graph.detect(data).detections[:TOP])
    assert len(reference) == TOP
    with ssd_client.SSDClient(address, score_threshold=0.0, timeout=TIMEOUT_S) as default:
        result = default.detect(data)
        assert default.model_info().network == name
        assert default.model_info().normalization == nets_factory.get_network(
            name).params.normalization
    assert result.model['network'] == name
    assert _matches(reference, _as_dicts(result.detections))
    if nets_factory.get_network(name).params.normalization == normalization.VGG_MEAN:
        # The test tells the normalisations apart: a VGG network fed MobileNet's [-1, 1]
        # inputs misses the in-graph detections. (A random MobileNetV2 with calibrated batch
        # norm answers both alike, so it cannot show this.)
        wrong = _client_side(address, data, normalization.MINUS_ONE_TO_ONE)
        assert not _matches(reference, _as_dicts(wrong))
    app = create_app({'TESTING': True, 'SERVING_ADDRESS': address, 'SCORE_THRESHOLD': 0.0,
                      'SERVING_TIMEOUT': TIMEOUT_S})
    response = app.test_client().post(
        '/api/v1/detect', data={'image': (io.BytesIO(data), 'picture.jpg')})
    assert response.status_code == 200, response.data
    body = response.json
    assert body['model']['network'] == name
    assert _matches(reference, [{'class_id': d['class_id'], 'score': d['score'],
                                 'box': d['box_px']} for d in body['detections']])


@pytest.mark.slow
def test_the_manifest_reaches_the_stock_stubs_and_the_version_folder(servers, tmp_path):
    address = servers['ssd_300_vgg']
    request = predict_pb2.PredictRequest()
    request.model_spec.name = 'ssd'
    request.model_spec.signature_name = signatures.DETECT_SIGNATURE
    request.inputs[signatures.ENCODED_IMAGES].CopyFrom(_string_tensor([b'']))
    request.output_filter.append(signatures.MANIFEST)
    with grpc.insecure_channel(address) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=TIMEOUT_S)
    text = response.outputs[signatures.MANIFEST].string_val[0]
    served = manifest.parse(text)
    assert served.network == 'ssd_300_vgg' and served.input_size == (300, 300)
    assert served.normalization == normalization.VGG_MEAN
    assert served.num_anchors == 8732 and served.class_names == tuple(CLASSES)
    assert served.checkpoint['path'].endswith('model.ckpt')
    assert served.precision == 'float32'


def _string_tensor(values):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.make_tensor_proto(values, dtype=tf.string)


def test_the_manifest_file_is_in_the_version_folder(tmp_path):
    base = random_model.export_random('ssd_300_mobilenet_v2', str(tmp_path), CLASSES)
    with open(os.path.join(base, '1', manifest.FILENAME), encoding='utf-8') as f:
        written = manifest.parse(f.read())
    assert written.network == 'ssd_300_mobilenet_v2'
    assert written.normalization == normalization.MINUS_ONE_TO_ONE
    assert written.class_names == tuple(CLASSES)
    assert sorted(os.listdir(base)) == ['1']  # no temporary folder left beside the version


@pytest.fixture
def toy_address(tmp_path):
    """start(**export_toy_model kwargs) serves a toy export in-process; returns its address."""
    started = []

    def start(**export_kwargs):
        base = str(tmp_path / ('ssd%d' % len(started)))
        helpers.export_toy_model(base, version=1, **export_kwargs)
        manager = ModelManager('ssd', base)
        manager.start()
        server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=2)
        server.start()
        started.append((manager, server))
        return '127.0.0.1:%d' % port

    yield start
    for manager, server in started:
        server.stop(0).wait()
        manager.stop()


def test_malformed_manifest_is_refused(toy_address):
    address = toy_address(manifest_json='{"format": 1, "network": "toy"}')
    with ssd_client.SSDClient(address) as client:
        with pytest.raises(ssd_client.ServingError, match="manifest: missing field 'input_size'"):
            client.detect(np.zeros([8, 8, 3], np.uint8))


def test_export_without_manifest_needs_a_named_normalization(toy_address, caplog):
    address = toy_address(manifest_json='')
    picture = np.zeros([8, 8, 3], np.uint8)
    with ssd_client.SSDClient(address) as client:
        with pytest.raises(ssd_client.ServingError, match='has no export manifest.*normalization'):
            client.detect(picture)
    with ssd_client.SSDClient(address, signature='detect') as in_graph:
        assert in_graph.detect(picture).model['network'] == ''
    with ssd_client.SSDClient(address, normalization='minus_one_to_one',
                              score_threshold=0.0) as told:
        assert told.detect(picture).detections
    assert 'has no export manifest; normalising its input as' in caplog.text


def test_a_normalization_override_is_checked_against_the_manifest(toy_address):
    address = toy_address()
    with ssd_client.SSDClient(address, normalization='vgg_mean') as client:
        with pytest.raises(ssd_client.ServingError, match="normalization is 'minus_one_to_one', "
                                                          "not 'vgg_mean'"):
            client.detect(np.zeros([8, 8, 3], np.uint8))


def test_the_web_app_reports_the_manifest_error(toy_address):
    address = toy_address(manifest_json='{"format": 1, "network": "toy"}')
    app = create_app({'TESTING': True, 'SERVING_ADDRESS': address})
    response = app.test_client().post(
        '/api/v1/detect', data={'image': (io.BytesIO(_picture()), 'picture.jpg')})
    assert response.status_code >= 400
    assert 'manifest' in json.dumps(response.json)
