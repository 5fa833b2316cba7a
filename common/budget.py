"""A weighted first-come-first-served semaphore: work holds an amount of a capacity.

The model server bounds the images in flight with it, the web app the pixels being decoded.
"""
import collections
import contextlib
import threading
import time


class BudgetTimeout(Exception):
    """The amount was not free within the timeout."""


class Budget:
    """Lets concurrent holders hold at most `capacity` in total, admitted in arrival order.

    A request for more than the capacity waits until it can hold all of it alone; a later
    small request never overtakes an earlier large one.

    Attributes:
      dropped: requests that gave up waiting (timeout or deadline) and never ran.
    """

    def __init__(self, capacity, unit='items'):
        """Args:
          capacity: the total, >= 1.
          unit: what is counted, for the timeout message ('pixels').
        """
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.capacity = capacity
        self.unit = unit
        self._available = capacity
        self._queue = collections.deque()
        self._condition = threading.Condition()
        self.dropped = 0

    @property
    def available(self):
        """The amount free now."""
        with self._condition:
            return self._available

    @property
    def waiting(self):
        """How many holders wait for their turn now."""
        with self._condition:
            return len(self._queue)

    @contextlib.contextmanager
    def hold(self, amount, timeout_s=None, deadline=None):
        """Holds min(amount, capacity) (at least 1) for the duration of the block.

        Args:
          amount: what the work needs.
          timeout_s: longest wait in seconds (None: no limit).
          deadline: time.monotonic() after which it stops waiting (None: no limit); the
            earlier of the two counts.

        Raises:
          BudgetTimeout: the amount was not free in time (counted in `dropped`).
        """
        if deadline is not None:
            left = deadline - time.monotonic()
            timeout_s = left if timeout_s is None else min(timeout_s, left)
        amount = max(1, min(int(amount), self.capacity))
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            if not self._condition.wait_for(
                    lambda: self._queue[0] is ticket and self._available >= amount, timeout_s):
                self._queue.remove(ticket)
                self.dropped += 1
                self._condition.notify_all()
                raise BudgetTimeout(f'{amount:,} {self.unit} not free within '
                                    f'{max(timeout_s, 0.0):g} s')
            self._queue.popleft()
            self._available -= amount
            self._condition.notify_all()
        try:
            yield
        finally:
            with self._condition:
                self._available += amount
                self._condition.notify_all()
