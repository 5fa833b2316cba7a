"""Model rollouts under load on the local model server.

While 8 clients send requests, a new version is exported atomically into the base path: no request
fails, every answer is computed by exactly the one version it names, each client switches once,
and the old version is closed once its last request has ended. A broken new version never
replaces the served one and the server logs why.
"""
import logging
import os
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from client import tensor_proto
from serving.model_manager import ModelManager
from serving.model_server import GRPC_OPTIONS

CLIENTS = 8
SCALES = {1: 1.0, 2: 2.0}  # box_scale of each exported version


def _request(images):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = 'ssd'
    request.inputs['images'].CopyFrom(tf.make_tensor_proto(images))
    return request


def _images():
    return np.random.RandomState(1).uniform(-1, 1, [1, 4, 4, 3]).astype(np.float32)


class _Load:
    """CLIENTS threads sending Predict in a loop; records (version, boxes) per client."""

    def __init__(self, address):
        self._channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._done = threading.Event()
        self.answers = [[] for _ in range(CLIENTS)]
        self.errors = []
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def _client(self, index):
        request = _request(_images())
        while not self._done.is_set():
            try:
                response = self._stub.Predict(request, timeout=30)
            except grpc.RpcError as e:  # any failure during a rollout is a bug
                self.errors.append(e)
                continue
            self.answers[index].append((response.model_spec.version.value,
                                        tf.make_ndarray(response.outputs['boxes'])))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def wait_for(self, predicate, what, deadline_s=60.0):
        """Waits (bounded) until predicate(answers) holds."""
        deadline = time.monotonic() + deadline_s
        while not predicate(self.answers):
            assert time.monotonic() < deadline, 'no %s within %.0f s' % (what, deadline_s)
            assert not self.errors, self.errors[0]
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._done.set()
        for thread in self._threads:
            thread.join(60)
        self._channel.close()


def _versions(answers):
    return {version for client in answers for version, _ in client}


def _every_client_answered(version):
    return lambda answers: all(version in {v for v, _ in client} for client in answers)


def test_rollout_under_8_clients(toy_base, toy_server, toy):
    manager = toy_server[1]
    old = manager.acquire('ssd')  # a handle on version 1, to see it closed at the end
    old.release()
    with _Load(toy_server[0]) as load:
        load.wait_for(_every_client_answered(1), 'answer from version 1')
        assert toy.export(toy_base, box_scale=SCALES[2]).endswith(os.sep + '2')
        load.wait_for(_every_client_answered(2), 'answer from version 2 on every client')
    assert not load.errors, load.errors[0]
    assert _versions(load.answers) == {1, 2}
    expected = {v: toy.outputs(_images(), scale)[1] for v, scale in SCALES.items()}
    for client in load.answers:
        versions = [version for version, _ in client]
        # One switch per client: once it saw version 2 it never sees version 1 again.
        assert versions == sorted(versions)
        for version, boxes in client:
            np.testing.assert_allclose(boxes, expected[version], rtol=1e-6)
    assert manager.status() == [(2, 'AVAILABLE')]
    # Every request on version 1 has ended, so its session is closed (unloaded).
    assert old._session._closed  # pylint: disable=protected-access


def test_old_version_is_closed_when_its_last_request_ends(toy_base, toy):
    manager = ModelManager('ssd', toy_base)
    try:
        assert manager.poll_once() == 1
        in_flight = manager.acquire('ssd')  # a request still running on version 1
        toy.export(toy_base, box_scale=SCALES[2], version=2)
        assert manager.poll_once() == 2
        assert manager.acquire('ssd').version == 2
        # Version 2 answers new requests, the one in flight still finishes on version 1.
        inputs = {'images': tensor_proto.make_tensor_proto(_images())}
        outputs = in_flight.run('serving_default', inputs)
        np.testing.assert_allclose(outputs['boxes'], toy.outputs(_images(), SCALES[1])[1])
        assert not in_flight._session._closed  # pylint: disable=protected-access
        in_flight.release()
        assert in_flight._session._closed  # pylint: disable=protected-access
    finally:
        manager.stop()


def test_unloadable_version_never_replaces_the_served_one(toy_base, toy_server, caplog):
    broken = os.path.join(toy_base, '2')
    with caplog.at_level(logging.ERROR), _Load(toy_server[0]) as load:
        load.wait_for(_every_client_answered(1), 'answer from version 1')
        os.makedirs(broken)
        with open(os.path.join(broken, 'saved_model.pb'), 'wb') as f:
            f.write(b'not a saved model')
        load.wait_for(lambda _: any('version 2' in r.getMessage() for r in caplog.records),
                      'log line about version 2')
        served = sum(len(client) for client in load.answers)
        load.wait_for(lambda answers: sum(map(len, answers)) > served + CLIENTS,
                      'answers after the failed load')
    assert not load.errors, load.errors[0]
    assert _versions(load.answers) == {1}
    message = next(r.getMessage() for r in caplog.records if 'version 2' in r.getMessage())
    assert 'still serving version 1' in message and broken in message
    assert toy_server[1].status() == [(1, 'AVAILABLE')]
