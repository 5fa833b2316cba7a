"""SSDClient over several replicas: round-robin, failover on UNAVAILABLE, per-replica status,
version pins. Two in-process model servers on 127.0.0.1 serve the toy export."""
import time

import numpy as np
import pytest

from client.ssd_client import ServingError, ServingUnavailable, SSDClient
from serving import model_server
from serving.model_manager import ModelManager
from tests import helpers

IMAGES = np.zeros([1, 4, 4, 3], np.float32)


class _Replica:
    """An in-process model server counting the model lookups (one per RPC) it answers."""

    def __init__(self, base):
        self.manager = ModelManager('ssd', base, poll_seconds=0.1)
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
