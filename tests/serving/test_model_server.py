"""The in-process model server speaks TF Serving's gRPC API: values, errors, limits, metadata,
hot swap, retried and odd versions.

The requests here are built with TensorFlow's and TF Serving's own classes (tf.make_tensor_proto,
tensorflow_serving.apis), so they also check that the server understands official clients.
"""
import logging
import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from client import waiting
from common.budget import Budget
from serving import model_manager, model_server
from serving.model_manager import ModelManager, RequestLimits
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
        is_proto = hasattr(value, 'tensor_shape')
        request.inputs[alias].CopyFrom(value if is_proto else tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def _images(batch=2):
    return np.random.RandomState(0).uniform(-1, 1, [batch, 4, 4, 3]).astype(np.float32)


def _outputs(response):
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


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
    request = _request({'encoded_images': [b'abc', b'']}, 'detect',
                       output_filter=['num_detections', 'class_names'])
    response = stubs[0].Predict(request, timeout=10)
    out = _outputs(response)
    assert set(out) == {'num_detections', 'class_names'}
    np.testing.assert_array_equal(out['num_detections'], [3.0, 0.0])
    assert [n.decode() for n in out['class_names'][1]] == toy.classes


def test_large_messages_both_ways(stubs):
    values = np.arange(8 * 512 * 512 * 3, dtype=np.float32).reshape(8, -1)  # 25 MB > gRPC's 4 MB
    response = stubs[0].Predict(_request({'x': values}, 'echo'), timeout=60)
    np.testing.assert_array_equal(_outputs(response)['y'], values * 2)


@pytest.mark.parametrize('kwargs,code,words', [
    (dict(name='nope'), grpc.StatusCode.NOT_FOUND, ['nope']),
    (dict(version=7), grpc.StatusCode.NOT_FOUND, ['version 7']),
    (dict(signature='bogus'), grpc.StatusCode.INVALID_ARGUMENT, ['bogus', 'serving_default']),
    (dict(inputs={'pixels': np.zeros([1, 4, 4, 3], np.float32)}), grpc.StatusCode.INVALID_ARGUMENT,
     ['pixels']),
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


def test_a_version_is_warmed_up_before_it_serves(toy_base, caplog, monkeypatch):
    runs = []
    real = model_manager.LoadedVersion._run

    def recording(self, signature_name, runner, arrays, items):
        runs.append((signature_name, [a.shape for a in arrays]))
        return real(self, signature_name, runner, arrays, items)

    monkeypatch.setattr(model_manager.LoadedVersion, '_run', recording)
    with caplog.at_level(logging.INFO):
        manager = ModelManager('ssd', toy_base)
        assert manager.poll_once() == 1
    manager.stop()
    # Numbers of known shape only: `detect` takes strings, `echo` a [None, None] input.
    assert runs == [('serving_default', [(1, 4, 4, 3)]), ('slow', [()])]
    assert any('warmed up serving_default, slow' in r.getMessage() for r in caplog.records)


def _proto(dtype, shape, **fields):
    """An official TensorProto with the given shape and value fields (nothing checked)."""
    proto = tf.make_tensor_proto([], dtype=dtype, shape=[0])
    proto.tensor_shape.Clear()
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    for name, values in fields.items():
        if name == 'unknown_rank':
            proto.tensor_shape.unknown_rank = values
        else:
            getattr(proto, name).extend(values)
    return proto


def _refused(stub, request, code=grpc.StatusCode.INVALID_ARGUMENT):
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == code, info.value.details()
    return info.value.details()


@pytest.mark.parametrize('signature,alias,proto,words', [
    # 64 bytes asking for 10^14 floats: refused before numpy tries to allocate them.
    ('echo', 'x', _proto(tf.float32, [2, 5 * 10 ** 13], float_val=[1.0]),
     ['"x"', '--max_request_elements']),
    ('serving_default', 'images', _proto(tf.float32, [9, 4, 4, 3], float_val=[0.5]),
     ['"images"', 'batch of 9', '--max_batch_size']),
    # One empty string broadcast to a million images (each answering all class names).
    ('detect', 'encoded_images', _proto(tf.string, [10 ** 6], string_val=[b'']),
     ['"encoded_images"', '--max_batch_size']),
    ('serving_default', 'images', _proto(tf.float32, [0, 4, 4, 3]), ['"images"', 'empty batch']),
    ('serving_default', 'images', _proto(tf.float32, [], unknown_rank=True),
     ['"images"', 'unknown rank']),
    ('echo', 'x', _proto(tf.float32, [1, -3], float_val=[1.0]), ['"x"', 'negative']),
    ('echo', 'x', _proto(tf.float32, [2, 2], float_val=[1.0, 2.0]), ['"x"', 'needs 4']),
])
def test_requests_that_would_expand_are_refused_naming_input_and_limit(stubs, signature, alias,
                                                                       proto, words):
    details = _refused(stubs[0], _request({alias: proto}, signature))
    for word in words:
        assert word in details
    stubs[0].Predict(_request({'images': _images(1)}), timeout=10)  # still serving


def test_unknown_dtype_number_is_invalid_argument(stubs):
    proto = _proto(tf.float32, [1, 4, 4, 3], float_val=[1.0])
    proto.dtype = 99  # no such DataType
    assert 'DT_<99>' in _refused(stubs[0], _request({'images': proto}))


def test_request_bytes_limit_counts_broadcast_strings(toy_base):
    manager = ModelManager('ssd', toy_base, limits=RequestLimits(max_bytes=100_000))
    manager.start()
    server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=2)
    server.start()
    try:
        with grpc.insecure_channel('127.0.0.1:%d' % port) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            one = _proto(tf.string, [8], string_val=[b'x' * 20_000])  # 20 kB sent, 160 kB decoded
            details = _refused(stub, _request({'encoded_images': one}, 'detect'))
            assert '160000 bytes' in details and '--max_request_bytes' in details
            fits = _proto(tf.string, [4], string_val=[b'x' * 20_000])
            response = stub.Predict(_request({'encoded_images': fits}, 'detect'), timeout=10)
            assert list(_outputs(response)['num_detections']) == [20_000.0] * 4
    finally:
        server.stop(0).wait()
        manager.stop()


def test_out_of_memory_is_resource_exhausted(stubs, monkeypatch):
    def runner(self, *args):
        del self, args

        def run(*arrays, **options):
            raise tf.errors.ResourceExhaustedError(None, None, 'OOM when allocating tensor')
        return run

    monkeypatch.setattr(model_manager.LoadedVersion, '_runner', runner)
    details = _refused(stubs[0], _request({'images': _images(1)}),
                       grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert 'OOM' in details and 'serving_default' in details


def _copy_version(source_version_dir, base, version, parts):
    """Copies parts ('saved_model.pb', 'variables', 'assets') of a version, as a slow copy does."""
    target = os.path.join(base, str(version))
    os.makedirs(target, exist_ok=True)
    for part in parts:
        source = os.path.join(source_version_dir, part)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, part))
        else:
            shutil.copy(source, os.path.join(target, part))


def test_version_copied_in_pieces_is_loaded_once_complete(toy_base, tmp_path, toy):
    other = toy.export(str(tmp_path / 'other' / 'ssd'), box_scale=2.0)
    manager = ModelManager('ssd', toy_base)
    assert manager.poll_once() == 1
    _copy_version(other, toy_base, 2, ['saved_model.pb'])
    assert manager.poll_once() == 1  # no variables yet: fails, version 1 stays
    _copy_version(other, toy_base, 2, ['variables', 'assets'])
    assert manager.poll_once() == 1  # the files changed: wait one poll for them to settle
    assert manager.poll_once() == 2
    manager.stop()


def test_failed_version_is_retried_after_backoff(toy_base, toy, monkeypatch):
    now = [0.0]
    manager = ModelManager('ssd', toy_base, retry_seconds=30, clock=lambda: now[0])
    assert manager.poll_once() == 1
    toy.export(toy_base, box_scale=2.0)
    real = model_manager.LoadedVersion
    failures = []

    def flaky(path, version, *args):
        if not failures:  # one transient failure (say, a network file system hiccup)
            failures.append(version)
            raise OSError('transient read error')
        return real(path, version, *args)

    monkeypatch.setattr(model_manager, 'LoadedVersion', flaky)
    assert manager.poll_once() == 1
    now[0] = 29.0
    assert manager.poll_once() == 1  # same files, back-off running
    now[0] = 30.0
    assert manager.poll_once() == 2
    assert failures == [2]
    manager.stop()


def test_every_version_above_the_served_one_is_considered(toy_base, toy):
    manager = ModelManager('ssd', toy_base)
    assert manager.poll_once() == 1
    toy.export(toy_base, version=2)
    os.makedirs(os.path.join(toy_base, '3'))
    with open(os.path.join(toy_base, '3', 'saved_model.pb'), 'wb') as f:
        f.write(b'not a saved model')
    assert manager.poll_once() == 2  # 3 is broken; 2 is newer than 1
    manager.stop()


def test_odd_version_folders_are_skipped_and_logged_once(toy_base, toy, caplog):
    for name in ['\u00b2', '99999999999999999999', '007', 'notes', '.tmp-2-x']:
        os.makedirs(os.path.join(toy_base, name))
        with open(os.path.join(toy_base, name, 'saved_model.pb'), 'wb') as f:
            f.write(b'')
    manager = ModelManager('ssd', toy_base, poll_seconds=0.05)
    with caplog.at_level(logging.WARNING):
        manager.start()  # '\u00b2'.isdigit() is True and int() fails: this used to crash
        assert manager.poll_once() == 1
    warned = [r.getMessage() for r in caplog.records if 'no version number' in r.getMessage()]
    assert len(warned) == 4 and not any('.tmp-2-x' in m for m in warned)
    toy.export(toy_base, box_scale=3.0, version=4)
    deadline = time.monotonic() + 30
    while manager.status() != [(4, 'AVAILABLE')]:  # the polling thread goes on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    manager.stop()


def test_at_most_max_batch_size_items_run_at_once(stubs, monkeypatch):
    """TensorFlow's CPU allocator keeps the largest working set it needed: concurrent full
    batches used to leave the server at several GB."""
    real = model_manager.LoadedVersion._runner
    lock, running, most = threading.Lock(), [0], [0]

    def counting_runner(self, *args):
        run = real(self, *args)

        def counted(*arrays, **options):
            with lock:
                running[0] += len(arrays[0])
                most[0] = max(most[0], running[0])
            time.sleep(0.2)
            try:
                return run(*arrays, **options)
            finally:
                with lock:
                    running[0] -= len(arrays[0])
        return counted

    monkeypatch.setattr(model_manager.LoadedVersion, '_runner', counting_runner)
    request = _request({'images': _images(8)})
    threads = [threading.Thread(target=stubs[0].Predict, args=(request,), kwargs={'timeout': 60})
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most[0] == RequestLimits().max_batch_size == 8


def test_item_budget_admits_in_arrival_order():
    budget = Budget(8)
    order, events = [], {name: threading.Event() for name in 'abc'}

    def worker(name, items):
        with budget.hold(items):
            order.append(name)
            events[name].wait(30)

    first = threading.Thread(target=worker, args=('a', 6))
    first.start()
    assert waiting.poll(lambda: order == ['a'], 30, interval_s=0.01)
    second = threading.Thread(target=worker, args=('b', 4))  # waits for room
    second.start()
    assert waiting.poll(lambda: budget.waiting == 1, 30, interval_s=0.01)
    third = threading.Thread(target=worker, args=('c', 1))  # would fit, but b came first
    third.start()
    assert waiting.poll(lambda: budget.waiting == 2, 30, interval_s=0.01)
    assert order == ['a']
    events['a'].set()
    for name, thread in [('b', second), ('c', third)]:
        events[name].set()
        thread.join(30)
    first.join(30)
    assert order == ['a', 'b', 'c']
