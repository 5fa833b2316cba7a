"""A per-process bound on the pixels being decoded at once (threads wait for their turn)."""
import collections
import contextlib
import threading


class BudgetTimeout(Exception):
    """The pixels were not available within the timeout."""


class PixelBudget:
    """Lets concurrent decodes hold at most `capacity` pixels in total, first come first served.

    A request for more than the capacity waits until it can hold all of it alone.
    """

    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.capacity = capacity
        self._available = capacity
        self._queue = collections.deque()
        self._condition = threading.Condition()

    @property
    def available(self):
        with self._condition:
            return self._available

    @contextlib.contextmanager
    def reserve(self, pixels, timeout_s):
        """Holds min(pixels, capacity) pixels for the duration of the block.

        Raises:
          BudgetTimeout: when they were not free within timeout_s seconds.
        """
        amount = max(1, min(int(pixels), self.capacity))
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            if not self._condition.wait_for(
                    lambda: self._queue[0] is ticket and self._available >= amount, timeout_s):
                self._queue.remove(ticket)
                self._condition.notify_all()
                raise BudgetTimeout(f'{amount:,} pixels not free within {timeout_s:g} s')
            self._queue.popleft()
            self._available -= amount
            self._condition.notify_all()
        try:
            yield
        finally:
            with self._condition:
                self._available += amount
                self._condition.notify_all()
