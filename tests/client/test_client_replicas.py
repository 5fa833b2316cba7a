"""SSDClient over several replicas: round-robin, failover on UNAVAILABLE, a hung replica and
one without a loaded version, per-replica status, version pins. In-process model servers on
127.0.0.1 serve the toy export; a hung replica accepts calls and never answers."""
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from client import protos
from client.ssd_client import ServingError, ServingUnavailable, SSDClient
from serving import model_server
from serving.model_manager import ModelManager
from tests import helpers

IMAGES = np.zeros([1, 4, 4, 3], np.float32)


class _Replica:
    """An in-process model server counting the model lookups (one per RPC) it answers."""

    def __init__(self, base):
        self.manager = ModelManager('ssd', base, poll_seconds=0.1)  # an empty base: no version
        self.manager.start()
        self.calls = 0
        acquire = self.manager.acquire

        def counting_acquire(*args, **kwargs):
            self.calls += 1
            return acquire(*args, **kwargs)

        self.manager.acquire = counting_acquire
        self.server, port = model_server.create_server(self.manager, 0, host='127.0.0.1',
                                                       max_workers=4)
        self.server.start()
        self.address = '127.0.0.1:%d' % port
        self.stopped = False

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.server.stop(0).wait()
            self.manager.stop()


class _HungReplica:
    """A server that accepts every call and answers none until released (a stopped process
    whose kernel still takes connections, with pings answered: only deadlines find it)."""

    def __init__(self):
        self.calls = 0
        self.release = threading.Event()

        def hang(request, context):
            self.calls += 1
            self.release.wait(60)
            context.abort(grpc.StatusCode.UNAVAILABLE, 'released')

        self.server = grpc.server(futures.ThreadPoolExecutor(16))
        self.server.add_generic_rpc_handlers([
            protos.generic_handler(protos.PREDICTION_SERVICE,
                                   {'Predict': hang, 'GetModelMetadata': hang}),
            protos.generic_handler(protos.MODEL_SERVICE, {'GetModelStatus': hang})])
        self.address = '127.0.0.1:%d' % self.server.add_insecure_port('127.0.0.1:0')
        self.server.start()

    def stop(self):
        self.release.set()
        self.server.stop(0).wait()


@pytest.fixture
def hung():
    server = _HungReplica()
    yield server
    server.stop()


@pytest.fixture
def replicas(toy_base):
    servers = [_Replica(toy_base), _Replica(toy_base)]
    yield servers
    for server in servers:
        server.stop()


def _client(replicas, **kwargs):
    return SSDClient(','.join(r.address for r in replicas), retries=3, timeout=20.0, **kwargs)


def test_predict_is_balanced_round_robin(replicas):
    with _client(replicas) as client:
        for _ in range(20):
            _, version = client.predict({'images': IMAGES})
            assert version == 1
    # round_robin spreads the calls once both subchannels are READY.
    assert all(r.calls >= 5 for r in replicas), [r.calls for r in replicas]


def test_unavailable_replica_is_skipped_without_failures(replicas):
    with _client(replicas) as client:
        client.predict({'images': IMAGES})
        replicas[0].stop()
        before = replicas[1].calls
        for _ in range(10):
            assert client.predict({'images': IMAGES})[1] == 1
        assert replicas[1].calls - before == 10
        status = {r['address']: r for r in client.replica_status()}
        assert status[replicas[1].address]['versions'] == [{'version': 1, 'state': 'AVAILABLE'}]
        assert 'UNAVAILABLE' in status[replicas[0].address]['error']


def test_other_errors_are_not_retried(replicas):
    with _client(replicas) as client:
        client.predict({'images': IMAGES})
        calls = sum(r.calls for r in replicas)
        with pytest.raises(ServingError) as info:
            client.predict({'images': IMAGES}, signature_name='no_such_signature')
        assert info.value.code == 'INVALID_ARGUMENT'
        assert sum(r.calls for r in replicas) == calls + 1


def test_version_pins_reach_the_server(replicas):
    with _client(replicas, version=1) as client:
        assert client.predict({'images': IMAGES})[1] == 1
        assert client.model_info().version == 1
    with _client(replicas, version=7) as client:
        with pytest.raises(ServingUnavailable, match='version 7') as info:
            client.predict({'images': IMAGES})
        assert info.value.code == 'NOT_FOUND'
    # The local server has no labels (TF Serving has): it names the label it was sent.
    with _client(replicas, version_label='canary') as client:
        with pytest.raises(ServingError, match='canary') as info:
            client.predict({'images': IMAGES})
        assert info.value.code == 'INVALID_ARGUMENT'
    with pytest.raises(ValueError, match='not both'):
        _client(replicas, version=1, version_label='stable')


def test_dns_target_and_its_replicas(replicas):
    port = replicas[0].address.rsplit(':', 1)[1]
    with SSDClient('dns:///localhost:%s' % port, retries=3, timeout=20.0) as client:
        assert client.predict({'images': IMAGES})[1] == 1
        status = {r['address']: r for r in client.replica_status()}
    # localhost may also resolve to ::1, where nothing listens: that replica reports an error.
    assert status[replicas[0].address]['versions'] == [{'version': 1, 'state': 'AVAILABLE'}]


def test_bad_address_is_refused():
    with pytest.raises(ValueError, match="'h2' is not host:port"):
        SSDClient('h1:8500,h2')


def test_retries_stay_within_one_deadline(unused_port_pair):
    """All replicas down: many retries allowed, but the call ends at its one overall deadline."""
    with SSDClient(','.join(unused_port_pair), retries=100, timeout=1.0) as client:
        start = time.monotonic()
        with pytest.raises(ServingUnavailable, match='UNAVAILABLE|DEADLINE_EXCEEDED'):
            client.predict({'images': IMAGES})
        assert time.monotonic() - start < 5.0


@pytest.fixture
def unused_port_pair():
    return ['127.0.0.1:%d' % helpers.free_port() for _ in range(2)]


def test_hung_replica_is_ejected_and_calls_end_within_two_attempts(replicas, hung):
    """A replica that takes calls and answers none costs one attempt's deadline, once: it is
    ejected and the call goes on at another replica."""
    address = '%s,%s' % (hung.address, replicas[0].address)
    with SSDClient(address, timeout=6.0, attempt_timeout=1.0, retries=3) as client:
        seconds = []
        for _ in range(10):
            start = time.monotonic()
            assert client.predict({'images': IMAGES})[1] == 1
            seconds.append(time.monotonic() - start)
        status = {r['address']: r for r in client.replica_status()}
    assert max(seconds) <= 2 * 1.0, seconds
    # Ejected after its first timeout (for 1 s, then 2 s, ...): at most one more attempt.
    assert 1 <= hung.calls <= 2
    assert 'DEADLINE_EXCEEDED' in status[hung.address]['error']
    assert status[hung.address]['ejected_s'] > 0
    assert status[replicas[0].address]['versions'] == [{'version': 1, 'state': 'AVAILABLE'}]


def test_replica_status_asks_replicas_at_once_with_a_short_deadline(replicas, hung):
    """All replicas are asked at once: one hung replica costs the short status deadline, not
    a deadline per replica."""
    with SSDClient('%s,%s,%s' % (hung.address, replicas[0].address, replicas[1].address),
                   timeout=20.0) as client:
        client.replica_status()  # connects
        start = time.monotonic()
        status = client.replica_status()
        seconds = time.monotonic() - start
    assert seconds < 1.0, seconds  # Kubernetes' default probe timeout
    assert [r['address'] for r in status] == [hung.address] + [r.address for r in replicas]
    assert 'DEADLINE_EXCEEDED' in status[0]['error']
    assert all(r['versions'] == [{'version': 1, 'state': 'AVAILABLE'}] for r in status[1:])


def test_replica_without_a_loaded_version_gets_no_traffic(replicas, tmp_path):
    """A replica answering NOT_FOUND "has no loaded version" is ejected like an unreachable
    one: the calls go to the replica that serves."""
    empty = _Replica(str(tmp_path / 'empty'))
    try:
        with SSDClient('%s,%s' % (empty.address, replicas[0].address), timeout=20.0) as client:
            for _ in range(10):
                assert client.predict({'images': IMAGES})[1] == 1
            assert client.model_info().version == 1
    finally:
        empty.stop()
    assert 1 <= empty.calls <= 2 and replicas[0].calls >= 10


def test_detect_makes_one_call_per_attempt(replicas):
    """detect() asks for fresh model info only after INVALID_ARGUMENT (a new input size): a
    timed-out call ends at its deadline, after one RPC."""
    server, gate, calls = replicas[0], threading.Event(), []
    with SSDClient(server.address, timeout=1.0, retries=3) as client:
        client.model_info()
        acquire = server.manager.acquire

        def hanging_acquire(*args):
            calls.append(args)
            gate.wait(30)
            return acquire(*args)

        server.manager.acquire = hanging_acquire
        start = time.monotonic()
        try:
            with pytest.raises(ServingUnavailable, match='DEADLINE_EXCEEDED'):
                client.detect(np.zeros([8, 8, 3], np.uint8))
            assert time.monotonic() - start < 1.9
        finally:
            gate.set()
    assert len(calls) == 1
