"""Tests for deployment/watchdog.py: a task that is gone, one that hangs, one that answers;
bounded phases."""
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from deployment import cluster, watchdog
from tests import helpers


@pytest.fixture
def answering():
    """A gRPC server answering TensorFlow's GetStatus, as a task's server does."""
    handler = grpc.method_handlers_generic_handler('tensorflow.WorkerService', {
        'GetStatus': grpc.unary_unary_rpc_method_handler(lambda request, context: b'')})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    yield '127.0.0.1:%d' % port
    server.stop(0).wait()


@pytest.fixture
def hung():
    """A listening socket that never accepts: the kernel completes the handshake, nothing
    answers, as with a stopped (SIGSTOP) task."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen(8)
        yield '127.0.0.1:%d' % sock.getsockname()[1]


def test_task_problem_tells_gone_from_hung_from_answering(answering, hung):
    gone = '127.0.0.1:%d' % helpers.free_port()
    assert watchdog.task_problem(answering, 5) is None
    assert watchdog.task_problem(gone, 5) == 'is gone (nothing answers there)'
    started = time.monotonic()
    assert watchdog.task_problem(hung, 0.5) == ('accepts connections but does not answer '
                                                'within 0.5 s (hung?)')
    assert time.monotonic() - started < 5
    tasks = [cluster.Task('ps', 0, answering), cluster.Task('ps', 1, hung),
             cluster.Task('worker', 1, gone)]
    assert watchdog.describe_unresponsive(tasks, 0.5) == (
        'ps 1 at %s accepts connections but does not answer within 0.5 s (hung?); worker 1 at '
        '%s is gone (nothing answers there)' % (hung, gone))
    assert watchdog.describe_unresponsive(tasks[:1], 5) is None


def _watchdog(tasks):
    """A watchdog recording its message instead of ending the process; (watchdog, messages,
    event set on expiry)."""
    expired, done = [], threading.Event()

    def record(message):
        expired.append(message)
        done.set()

    return watchdog.Watchdog(tasks, on_expiry=record, poll_secs=0.02, probe_secs=0.5,
                             grace_secs=0.0), expired, done


def test_an_overrun_phase_is_reported_once_with_the_tasks_that_do_not_answer(answering, hung):
    dog, expired, done = _watchdog([cluster.Task('ps', 0, hung),
                                    cluster.Task('worker', 1, answering)])
    with dog, dog.guard('A training step', 0.1):
        assert done.wait(30)
    assert expired == ['A training step did not finish within 0.1 s (--operation_timeout_secs): '
                       'ps 0 at %s accepts connections but does not answer within 0.5 s (hung?)'
                       % hung]


def test_phases_in_time_are_not_reported_and_nest(answering):
    dog, expired, done = _watchdog([cluster.Task('ps', 0, answering)])
    with dog, dog.guard('Outer', 1.5):
        for _ in range(3):   # 3 x 0.6 s: longer than the outer bound, each inner one in time
            with dog.guard('Inner', 10):
                time.sleep(0.6)
        assert not expired
        # The outer phase's time started again when the inner one ended: it expires now.
        assert done.wait(30)
    assert expired == ['Outer did not finish within 1.5 s (--operation_timeout_secs): every '
                       'other task answers (a slow operation? raise --operation_timeout_secs)']
