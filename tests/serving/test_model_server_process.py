"""`python -m serving.model_server` as a process: serves, and SIGTERM drains the request in flight."""
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import client as client_lib
from serving import tensor_proto


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _start_server(base, port):
    return subprocess.Popen(
        [sys.executable, '-m', 'serving.model_server', '--host=127.0.0.1', '--port=%d' % port,
         '--model_base_path=%s' % base, '--grace_seconds=30'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(process):
    if process.poll() is None:
        process.kill()
    process.wait(30)
    process.stderr.close()


@pytest.fixture
def server_process(toy_base):
    port = _free_port()
    process = _start_server(toy_base, port)
    yield process, '127.0.0.1:%d' % port
    _stop(process)


def _predict(stub, signature, inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = 'ssd'
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tensor_proto.make_tensor_proto(value))
    return stub.Predict(request, timeout=60)


def test_sigterm_drains_in_flight_request(server_process):
    process, address = server_process
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=120)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    deadline = time.monotonic() + 60
    while True:  # the server starts before its first version is necessarily loaded
        try:
            _predict(stub, 'serving_default', {'images': np.zeros([1, 4, 4, 3], np.float32)})
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline, 'server did not load the model'
            time.sleep(0.1)
    results = []
    iterations = np.array(600000, np.int32)  # about a second of busy loop
    worker = threading.Thread(target=lambda: results.append(_predict(stub, 'slow', {'iterations': iterations})))
    worker.start()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    worker.join(60)
    assert process.wait(60) == 0
    assert tensor_proto.make_ndarray(results[0].outputs['count']) == 600000
    assert b'Stopping: draining' in process.stderr.read()
    channel.close()


def _wait_listening(port, process, deadline_s):
    deadline = time.monotonic() + deadline_s
    while True:
        assert process.poll() is None, 'model server exited'
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, 'model server does not listen'
            time.sleep(0.1)


def test_client_created_before_its_server_connects_once_it_listens(toy_base):
    """gRPC's default reconnect backoff would keep failing for many seconds; ours is short."""
    port = _free_port()
    with client_lib.SSDClient('127.0.0.1:%d' % port, retries=0, timeout=2.0) as client:
        with pytest.raises(client_lib.ServingUnavailable):
            client.status()
        time.sleep(3)  # the channel backs off while nothing listens
        process = _start_server(toy_base, port)
        try:
            _wait_listening(port, process, 120)
            deadline = time.monotonic() + 5
            while True:
                try:
                    client.status()
                    break
                except client_lib.ServingUnavailable:
                    assert time.monotonic() < deadline, 'client still backing off 5 s after the server listens'
                    time.sleep(0.05)
        finally:
            _stop(process)
