"""client.replicas.ReplicaSet with a fake clock, resolver and connections: round-robin, ejection
back-off, the order of preference, DNS re-resolution."""
import grpc
import pytest

from client import replicas as replicas_lib
from common import serving_address


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _Connection:
    """Stands in for a channel: reports the states the test gives it."""

    def __init__(self, target, on_state, connect):
        self.target, self.report, self.closed = target, on_state, False

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def _fake_connections(monkeypatch):
    monkeypatch.setattr(replicas_lib, '_Connection', _Connection)


@pytest.fixture
def clock():
    return _Clock()


def _set(text, clock, resolve=serving_address.replica_addresses):
    return replicas_lib.ReplicaSet(serving_address.parse(text), clock=clock, resolve=resolve)


def _picks(replica_set, count, tried=()):
    picked = []
    for _ in range(count):
        replica = replica_set.pick(tried)
        replica_set.release(replica)
        picked.append(replica.address)
    return picked


def test_round_robin_and_ejection_back_off(clock):
    replica_set = _set('127.0.0.1:1,127.0.0.1:2', clock)
    try:
        assert sorted(_picks(replica_set, 4)) == ['127.0.0.1:1'] * 2 + ['127.0.0.1:2'] * 2
        first = replica_set.pick()
        assert first.in_flight == 1
        replica_set.release(first, 'DEADLINE_EXCEEDED: slow')
        assert first.in_flight == 0 and replica_set.ejected_seconds(first) == 1.0
        assert set(_picks(replica_set, 4)) == {'127.0.0.1:2' if first.address.endswith(':1')
                                               else '127.0.0.1:1'}
        # Consecutive ejections double (1, 2, 4 s ... up to 30 s); an answer resets them.
        for seconds in (2.0, 4.0, 8.0, 16.0, 30.0, 30.0):
            replica_set.release(replica_set.pick(tried={a for a in ('127.0.0.1:1', '127.0.0.1:2')
                                                        if a != first.address}), 'UNAVAILABLE')
            assert replica_set.ejected_seconds(first) == seconds
        clock.now += 31
        assert replica_set.ejected_seconds(first) == 0
        replica_set.release(replica_set.pick(tried={r for r in ('127.0.0.1:1', '127.0.0.1:2')
                                                    if r != first.address}))
        assert first.ejections == 0
    finally:
        replica_set.close()


def test_all_ejected_still_serves_and_a_lone_server_is_never_ejected(clock):
    replica_set = _set('127.0.0.1:1,127.0.0.1:2', clock)
    try:
        for replica in replica_set.replicas():
            replica_set.release(replica_set.pick({r.address for r in replica_set.replicas()
                                                  if r is not replica}), 'UNAVAILABLE')
        assert len(set(_picks(replica_set, 4))) == 2  # none better: all are used
    finally:
        replica_set.close()
    lone = _set('127.0.0.1:1', clock)
    try:
        replica = lone.pick()
        lone.release(replica, 'UNAVAILABLE')
        assert lone.ejected_seconds(replica) == 0 and not lone.balanced
    finally:
        lone.close()


def test_dns_names_are_resolved_again_and_gone_replicas_closed(clock):
    answers = [['10.0.0.1:8500', '10.0.0.2:8500'], ['10.0.0.2:8500', '10.0.0.3:8500']]
    calls = []

    def resolve(address):
        calls.append(address.text)
        return answers[min(len(calls), len(answers)) - 1]

    replica_set = _set('dns:///svc:8500', clock, resolve)
    try:
        kept = [r for r in replica_set.replicas() if r.address == '10.0.0.2:8500'][0]
        busy = replica_set.pick(tried={'10.0.0.2:8500'})  # a call in flight on 10.0.0.1
        assert busy.address == '10.0.0.1:8500' and len(calls) == 1
        clock.now += replicas_lib.RESOLVE_INTERVAL_S
        assert [r.address for r in replica_set.replicas()] == ['10.0.0.2:8500', '10.0.0.3:8500']
        assert kept in replica_set.replicas()  # same channel
        assert not busy.listed and not busy.connection.closed  # closed once its call ends
        replica_set.release(busy)
        assert busy.connection.closed and len(calls) == 2
    finally:
        replica_set.close()


def test_unresolvable_name_raises_until_it_resolves(clock):
    def resolve(address):
        raise OSError('no such host')

    replica_set = _set('dns:///nowhere:8500', clock, resolve)
    with pytest.raises(OSError, match='cannot resolve dns:///nowhere:8500: no such host'):
        replica_set.pick()
    replica_set.close()


def test_connected_replicas_first_and_a_new_connection_ends_an_ejection(clock):
    replica_set = _set('127.0.0.1:1,127.0.0.1:2', clock)
    try:
        down, up = replica_set.replicas()
        down.connection.report(grpc.ChannelConnectivity.TRANSIENT_FAILURE)
        assert set(_picks(replica_set, 4)) == {up.address}
        replica_set.release(replica_set.pick({up.address}), 'UNAVAILABLE', unreachable=True)
        assert down.connection.target == down.address and replica_set.ejected_seconds(down) == 1
        down.connection.report(grpc.ChannelConnectivity.READY)  # the server is back
        assert replica_set.ejected_seconds(down) == 0
        assert set(_picks(replica_set, 4)) == {up.address, down.address}
    finally:
        replica_set.close()
