"""The replicas behind a SERVING_ADDRESS: a gRPC channel to each, picked round-robin among the
healthy ones, with ejection of a replica that failed (outlier detection, as Envoy's and gRPC's).

Each replica has a channel of its own (keepalive pings: client.protos.CLIENT_KEEPALIVE_OPTIONS)
whose connectivity is watched. A call goes to the next replica, in turn, among the best ranked:
not ejected and connected (READY, or IDLE: not tried yet) first, then not ejected and
connecting, then ejected ones (when every replica is ejected, all are used again rather than
none). The caller reports each answer: a replica that was unreachable, too slow or had no model
to serve is ejected for 1 s, doubled at each consecutive ejection up to 30 s, and rejoins at
once when its channel connects anew (a restarted or resumed server). A `dns:///name:port`
address is resolved every 30 s (sooner, at most every 5 s, after a replica failed); channels of
replicas the name no longer lists are closed once their calls are done.
"""
import dataclasses
import logging
import threading
import time

import grpc

from client import protos
from common import serving_address

# Subchannels of their own per channel (not shared through gRPC's global pool); a lost connection
# is tried again every second (the minimum is also the connect timeout: shorter ones fail on a
# busy machine); keepalive pings find a hung server.
CHANNEL_OPTIONS = (protos.MESSAGE_OPTIONS + protos.CLIENT_KEEPALIVE_OPTIONS +
                   [('grpc.use_local_subchannel_pool', 1),
                    ('grpc.min_reconnect_backoff_ms', 1000),
                    ('grpc.max_reconnect_backoff_ms', 1000)])
EJECTION_BASE_S = 1.0
EJECTION_MAX_S = 30.0
RESOLVE_INTERVAL_S = 30.0
RESOLVE_AFTER_FAILURE_S = 5.0
_CONNECTED = (None, grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.IDLE)


# gRPC Python watches a subscribed channel from a thread that wakes every 0.2 s; closing the
# channel under it makes that thread fail, so a channel is closed this long after unsubscribing.
_CLOSE_DELAY_S = 1.0


class _Connection:
    """A gRPC channel to one replica, the stubs of the three calls the client makes, and the
    callback that receives the channel's connectivity."""

    def __init__(self, target, on_state, connect):
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.predict = protos.unary_stub(self.channel, protos.PREDICTION_SERVICE, 'Predict')
        self.get_model_metadata = protos.unary_stub(self.channel, protos.PREDICTION_SERVICE,
                                                    'GetModelMetadata')
        self.get_model_status = protos.unary_stub(self.channel, protos.MODEL_SERVICE,
                                                  'GetModelStatus')
        self._on_state = on_state
        self.channel.subscribe(on_state, try_to_connect=connect)

    def close(self):
        """Closes the channel (calls still running on it are cancelled) once its watcher ends."""
        self.channel.unsubscribe(self._on_state)
        timer = threading.Timer(_CLOSE_DELAY_S, self.channel.close)
        timer.daemon = True
        timer.start()


@dataclasses.dataclass(eq=False)
class Replica:
    """One replica: its address, connection and health.

    Attributes:
      address: 'host:port'.
      connection: the _Connection (channel and stubs).
      state: the channel's last grpc.ChannelConnectivity (None before the first report).
      ejected_until: monotonic time until which it is ejected (0: not ejected).
      ejections: consecutive ejections (reset by a successful call).
      in_flight: calls running on it.
      listed: False once a DNS name no longer lists it (closed when in_flight drops to 0).
    """
    address: str
    connection: object
    state: object = None
    ejected_until: float = 0.0
    ejections: int = 0
    in_flight: int = 0
    listed: bool = True


class ReplicaSet:
    """The replicas of one address; thread-safe."""

    def __init__(self, address, clock=time.monotonic,
                 resolve=serving_address.replica_addresses):
        """Args:
          address: a common.serving_address.ServingAddress.
          clock: monotonic time source (tests replace it).
          resolve: fn(address) -> ['host:port'] (a DNS name resolved now); raises OSError.
        """
        self.address = address
        self._clock = clock
        self._resolve = resolve
        self._lock = threading.Lock()
        self._replicas = []
        self._next = 0
        self._next_resolve = 0.0
        self._resolving = False
        self._resolve_error = None
        self._closed = False
        self._refresh()

    @property
    def balanced(self):
        """True when another replica may take a retry (a list or a DNS name)."""
        return self.address.balanced

    def replicas(self):
        """The current replicas (a DNS name re-resolved when due).

        Raises:
          OSError: a DNS name that does not resolve and has never resolved.
        """
        self._refresh()
        with self._lock:
            if not self._replicas and self._resolve_error is not None:
                raise self._resolve_error
            return list(self._replicas)

    def pick(self, tried=()):
        """The replica for the next attempt of a call (its in_flight counted: release() it).

        Args:
          tried: addresses this call already tried; others are preferred while there are any.
        Raises:
          OSError: a DNS name that does not resolve and has never resolved.
        """
        self.replicas()  # resolves when due; raises when there are none
        now = self._clock()
        with self._lock:
            replicas = self._replicas
            if not replicas:
                raise OSError('%s names no replica' % self.address.text)
            candidates = [r for r in replicas if r.address not in tried] or replicas

            def rank(replica):
                return (replica.ejected_until > now, replica.state not in _CONNECTED)

            best = min(rank(r) for r in candidates)
            pool = [r for r in candidates if rank(r) == best]
            replica = pool[self._next % len(pool)]
            self._next += 1
            replica.in_flight += 1
            return replica

    def release(self, replica, failure=None, unreachable=False):
        """Ends a call on a replica.

        Args:
          failure: None when it answered; else why it failed, and it is ejected (several
            replicas only: a lone server has no other to take its calls).
          unreachable: the call found no connection (UNAVAILABLE) or ran out of time
            (DEADLINE_EXCEEDED, as while a server stops): a channel that is not READY is replaced
            by one that connects at its first call. (A channel that failed to connect waits out
            its reconnect back-off before it tries again, so a server restarted meanwhile would
            stay unreachable for that long.)
        """
        with self._lock:
            replica.in_flight -= 1
            stale = None
            if (unreachable and replica.listed and not self._closed and
                    replica.state != grpc.ChannelConnectivity.READY):
                stale, replica.connection = replica.connection, self._watched(replica, False)
            close = not replica.listed and replica.in_flight == 0
            if failure is None:
                replica.ejections = 0
            elif self.balanced:
                replica.ejections += 1
                seconds = min(EJECTION_BASE_S * 2 ** (replica.ejections - 1), EJECTION_MAX_S)
                replica.ejected_until = self._clock() + seconds
                self._next_resolve = min(self._next_resolve,
                                         self._clock() + RESOLVE_AFTER_FAILURE_S)
        if failure is not None and self.balanced:
            logging.warning('Ejecting replica %s for %.0f s: %s', replica.address, seconds,
                            failure)
        if close:
            replica.connection.close()
        if stale is not None:
            stale.close()

    def ejected_seconds(self, replica):
        """Seconds the replica stays ejected (0 when it is not)."""
        return max(replica.ejected_until - self._clock(), 0.0)

    def close(self):
        with self._lock:
            self._closed = True
            replicas, self._replicas = self._replicas, []
        for replica in replicas:
            replica.connection.close()

    def _refresh(self):
        """Resolves the address when due, in the calling thread (one thread at a time)."""
        with self._lock:
            now = self._clock()
            if self._closed or self._resolving or now < self._next_resolve:
                return
            self._resolving = True
        try:
            addresses = self._resolve(self.address)
            error = None
        except OSError as e:
            addresses, error = None, e
        with self._lock:
            self._resolving = False
            if self._closed:
                return
            if error is not None:
                self._resolve_error = OSError('cannot resolve %s: %s' % (self.address.text, error))
                self._next_resolve = now + RESOLVE_AFTER_FAILURE_S
                logging.warning('%s', self._resolve_error)
                return
            self._resolve_error = None
            self._next_resolve = (now + RESOLVE_INTERVAL_S if self.address.dns_name is not None
                                  else float('inf'))
            known = {r.address: r for r in self._replicas}
            gone = [r for a, r in known.items() if a not in addresses]
            self._replicas = [known.get(a) or self._connect(a) for a in addresses]
            closing = []
            for replica in gone:
                replica.listed = False
                if replica.in_flight == 0:
                    closing.append(replica)
        for replica in closing:
            replica.connection.close()

    def _connect(self, address):
        """A replica with a new channel whose connectivity is watched (it connects at once)."""
        replica = Replica(address, None)
        replica.connection = self._watched(replica, True)
        return replica

    def _watched(self, replica, connect):
        """A new connection to a replica, whose channel reports its state into the replica;
        `connect`: it connects now, else at its first call."""
        def on_state(state):
            with self._lock:
                if replica.connection is not connection:
                    return
                if state == grpc.ChannelConnectivity.READY and replica.state != state:
                    replica.ejected_until = 0.0  # a new connection: a restarted server
                replica.state = state

        replica.state = None
        connection = _Connection(replica.address, on_state, connect)
        return connection
