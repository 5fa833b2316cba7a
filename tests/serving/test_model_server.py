"""The in-process model server speaks TF Serving's gRPC API: values, errors, metadata, hot swap."""
import logging
import os
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import tensor_proto
from serving.model_manager import ModelManager
from serving.model_server import GRPC_OPTIONS


@pytest.fixture
def stubs(toy_server):
    channel = grpc.insecure_channel(toy_server[0], options=GRPC_OPTIONS)
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


def _request(inputs, signature='', name='ssd', version=None, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(value if hasattr(value, 'dtype') and not isinstance(value, np.ndarray)
                                       else tensor_proto.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def _images(batch=2):
    return np.random.RandomState(0).uniform(-1, 1, [batch, 4, 4, 3]).astype(np.float32)


def _outputs(response):
    return {k: tensor_proto.make_ndarray(v) for k, v in response.outputs.items()}


def test_predict_default_signature(stubs, toy):
    images = _images()
    response = stubs[0].Predict(_request({'images': images}), timeout=10)
    scores, boxes = toy.outputs(images)
    out = _outputs(response)
    np.testing.assert_allclose(out['scores'], scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out['boxes'], boxes)
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == 'serving_default'


def test_output_filter_and_strings(stubs, toy):
    response = stubs[0].Predict(_request({'encoded_images': [b'abc', b'']}, 'detect',
                                         output_filter=['num_detections', 'class_names']), timeout=10)
    out = _outputs(response)
    assert set(out) == {'num_detections', 'class_names'}
    np.testing.assert_array_equal(out['num_detections'], [3.0, 0.0])
    assert [n.decode() for n in out['class_names'][1]] == toy.classes


def test_large_messages_both_ways(stubs):
    values = np.arange(8 * 512 * 512 * 3, dtype=np.float32)  # 25 MB, over gRPC's 4 MB default
    response = stubs[0].Predict(_request({'x': values}, 'echo'), timeout=60)
    np.testing.assert_array_equal(_outputs(response)['y'], values * 2)


@pytest.mark.parametrize('kwargs,code,words', [
    (dict(name='nope'), grpc.StatusCode.NOT_FOUND, ['nope']),
    (dict(version=7), grpc.StatusCode.NOT_FOUND, ['version 7']),
    (dict(signature='bogus'), grpc.StatusCode.INVALID_ARGUMENT, ['bogus', 'serving_default']),
    (dict(inputs={'pixels': np.zeros([1, 4, 4, 3], np.float32)}), grpc.StatusCode.INVALID_ARGUMENT, ['pixels']),
    (dict(inputs={'images': np.zeros([1, 4, 4, 3], np.int32)}), grpc.StatusCode.INVALID_ARGUMENT,
     ['images', 'DT_INT32', 'DT_FLOAT']),
    (dict(inputs={'images': np.zeros([1, 5, 4, 3], np.float32)}), grpc.StatusCode.INVALID_ARGUMENT,
     ['images', '[1, 5, 4, 3]']),
    (dict(output_filter=['logits']), grpc.StatusCode.INVALID_ARGUMENT, ['logits']),
])
def test_errors_have_codes_and_name_the_problem(stubs, kwargs, code, words):
    inputs = kwargs.pop('inputs', {'images': _images(1)})
    with pytest.raises(grpc.RpcError) as info:
        stubs[0].Predict(_request(inputs, **kwargs), timeout=10)
    assert info.value.code() == code
    for word in words:
        assert word in info.value.details()
    stubs[0].Predict(_request({'images': _images(1)}), timeout=10)  # still serving


def test_metadata_and_status(stubs):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
    request.model_spec.name = 'ssd'
    response = stubs[0].GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata['signature_def'].Unpack(signatures)
    assert {'serving_default', 'detect'} <= set(signatures.signature_def)
    assert signatures.signature_def['serving_default'].method_name == 'tensorflow/serving/predict'
    assert response.model_spec.version.value == 1

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = 'ssd'
    status = stubs[1].GetModelStatus(status_request, timeout=10)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
    status_request.model_spec.name = 'other'
    with pytest.raises(grpc.RpcError) as info:
        stubs[1].GetModelStatus(status_request, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def _wait_for_version(stub, version, images):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = stub.Predict(_request({'images': images}), timeout=10)
        if response.model_spec.version.value == version:
            return response
        time.sleep(0.05)
    raise AssertionError('version %d not served within 30 s' % version)


def test_hot_swap_without_failing_requests(toy_base, toy_server, stubs, toy):
    images = _images(1)
    errors, done = [], threading.Event()

    def hammer():
        while not done.is_set():
            try:
                stubs[0].Predict(_request({'images': images}), timeout=10)
            except grpc.RpcError as e:  # any failure during the swap is a bug
                errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert toy.export(toy_base, box_scale=2.0).endswith(os.sep + '2')
        response = _wait_for_version(stubs[0], 2, images)
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
    np.testing.assert_allclose(_outputs(response)['boxes'], toy.outputs(images, 2.0)[1])
    assert not errors


def test_broken_version_keeps_old_one(toy_base, caplog, toy):
    manager = ModelManager('ssd', toy_base)
    assert manager.poll_once() == 1
    os.makedirs(os.path.join(toy_base, '5'))
    with open(os.path.join(toy_base, '5', 'saved_model.pb'), 'wb') as f:
        f.write(b'not a saved model')
    with caplog.at_level(logging.ERROR):
        assert manager.poll_once() == 1
    assert any('version 5' in r.getMessage() for r in caplog.records)
    loaded = manager.acquire('ssd')
    assert loaded.version == 1
    loaded.release()
    toy.export(toy_base, box_scale=3.0, version=6)
    assert manager.poll_once() == 6
    manager.stop()
