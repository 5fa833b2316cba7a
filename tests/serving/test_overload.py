"""The model server under more requests than it can run: Predict requests beyond its threads
are refused at once with UNAVAILABLE (GetModelStatus still answers), requests whose deadline
passes while they wait are dropped, not run, and an odd base path (a symbolic link loop)
neither stops rollouts nor breaks GetModelStatus."""
import logging
import os
import threading
import time

import grpc
import numpy as np
import pytest

from client import protos, tensor_proto
from common.budget import Budget, BudgetTimeout
from serving import model_manager, model_server
from serving.model_manager import ModelManager
from serving.model_server import GRPC_OPTIONS

MAX_WORKERS, MAX_PREDICTS = 4, 2


@pytest.fixture
def gated(toy_base, monkeypatch):
    """An in-process server whose signature runs wait for `gate`; counts the runs started.

    Yields a namespace-like dict: address, gate (threading.Event), runs (list), services.
    """
    gate, runs = threading.Event(), []
    real = model_manager.LoadedVersion._runner

    def gated_runner(self, *args):
        run = real(self, *args)

        def wait_then_run(*arrays, **options):
            runs.append(len(arrays[0]))
            gate.wait(60)
            return run(*arrays, **options)
        return wait_then_run

    manager = ModelManager('ssd', toy_base, poll_seconds=0.1)
    manager.start()  # warms up before the gate is in place
    monkeypatch.setattr(model_manager.LoadedVersion, '_runner', gated_runner)
    manager.acquire('ssd')._runners.clear()
    services = model_server.Services(manager, MAX_PREDICTS)
    server, port = model_server.create_server(manager, 0, '127.0.0.1', MAX_WORKERS, services)
    server.start()
    channel = grpc.insecure_channel('127.0.0.1:%d' % port, options=GRPC_OPTIONS)
    yield {'channel': channel, 'gate': gate, 'runs': runs, 'services': services,
           'manager': manager}
    gate.set()
    channel.close()
    server.stop(0).wait()
    manager.stop()


def _predict_request(items=1):
    request = protos.PredictRequest()
    request.model_spec.name = 'ssd'
    tensor_proto.make_tensor_proto(np.zeros([items, 4, 4, 3], np.float32),
                                   request.inputs['images'])
    return request


def _wait_until(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.01)


def test_predicts_beyond_the_threads_are_refused_at_once(gated):
    """Predict requests beyond the in-flight limit are refused at once with UNAVAILABLE (the
    client tries another replica) instead of queueing without bound; status calls still find
    a thread."""
    predict = protos.unary_stub(gated['channel'], protos.PREDICTION_SERVICE, 'Predict')
    status = protos.unary_stub(gated['channel'], protos.MODEL_SERVICE, 'GetModelStatus')
    held = [predict.future(_predict_request(), timeout=60) for _ in range(2)]
    _wait_until(lambda: len(gated['runs']) == 2)
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        predict(_predict_request(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert 'busy: 2 Predict requests in flight' in error.value.details()
    assert time.monotonic() - start < 5  # at once, not after the held ones
    request = protos.GetModelStatusRequest()
    request.model_spec.name = 'ssd'
    assert status(request, timeout=5).model_version_status[0].version == 1
    gated['gate'].set()
    assert all(call.result(timeout=60).model_spec.version.value == 1 for call in held)
    services = gated['services']
    assert (services.answered, services.refused, services.late, services.expired) == (2, 1, 0, 0)


def test_requests_whose_deadline_passed_while_waiting_are_dropped(gated):
    predict = protos.unary_stub(gated['channel'], protos.PREDICTION_SERVICE, 'Predict')
    held = predict.future(_predict_request(8), timeout=60)  # fills the 8-item budget
    _wait_until(lambda: len(gated['runs']) == 1)
    with pytest.raises(grpc.RpcError) as error:
        predict(_predict_request(), timeout=0.5)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    _wait_until(lambda: gated['manager'].budget.dropped == 1)  # the server dropped it too
    assert gated['services'].expired == 1
    gated['gate'].set()
    held.result(timeout=60)
    assert gated['runs'] == [8]  # the dropped request never ran


def test_item_budget_drops_a_waiter_whose_deadline_passes():
    budget = Budget(2)
    with budget.hold(2):
        with pytest.raises(BudgetTimeout, match='not free within'):
            with budget.hold(1, deadline=time.monotonic() + 0.05):
                pass
    with budget.hold(2, deadline=time.monotonic() + 5):  # the queue moved on
        pass
    assert budget.dropped == 1


def test_symlink_loop_in_base_path_is_skipped_and_rollouts_go_on(toy_base, toy, caplog):
    """`ln -s BASE/5 BASE/5` is skipped with one log line: polls go on, new versions load, and
    GetModelStatus of that version answers NOT_FOUND."""
    os.symlink(os.path.join(toy_base, '5'), os.path.join(toy_base, '5'))
    manager = ModelManager('ssd', toy_base, poll_seconds=0.05)
    with caplog.at_level(logging.WARNING):
        manager.start()
        assert manager.poll_once() == 1
    warned = [r.getMessage() for r in caplog.records if 'Ignoring' in r.getMessage()]
    assert warned == ['Ignoring %s: cannot be read (Too many levels of symbolic links)'
                      % os.path.join(toy_base, '5')]
    assert manager.status(5) == [] and manager.status(1) == [(1, 'AVAILABLE')]
    toy.export(toy_base, box_scale=2.0, version=2)
    try:
        _wait_until(lambda: manager.status() == [(2, 'AVAILABLE')])
    finally:
        manager.stop()
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def test_a_run_past_the_deadline_is_cut_by_the_session_timeout(toy_server):
    """A run still going at the request's deadline is cut by TensorFlow's session timeout: no
    work for a client that has given up."""
    channel = grpc.insecure_channel(toy_server[0], options=GRPC_OPTIONS)
    predict = protos.unary_stub(channel, protos.PREDICTION_SERVICE, 'Predict')
    request = protos.PredictRequest()
    request.model_spec.name = 'ssd'
    request.model_spec.signature_name = 'slow'
    tensor_proto.make_tensor_proto(np.array(10 ** 9, np.int32), request.inputs['iterations'])
    with pytest.raises(grpc.RpcError) as error:
        predict(request, timeout=1.0)  # minutes of busy loop
    channel.close()
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server's run ended at the deadline too: it gave its item back, and the whole budget
    # is free again (an uncut run would hold its item for minutes).
    with toy_server[1].budget.hold(8, deadline=time.monotonic() + 20):
        pass
