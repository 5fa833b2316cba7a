"""common/budget.py: holders never exceed the capacity, first come first served, timeouts."""
import threading
import time

import pytest

from client import waiting
from common.budget import Budget, BudgetTimeout


def test_holders_never_exceed_the_capacity():
    budget = Budget(100)
    held, peak, lock = [0], [0], threading.Lock()

    def work(pixels):
        with budget.hold(pixels, timeout_s=30):
            with lock:
                held[0] += min(pixels, 100)
                peak[0] = max(peak[0], held[0])
            time.sleep(0.02)
            with lock:
                held[0] -= min(pixels, 100)

    threads = [threading.Thread(target=work, args=(p,)) for p in [60, 30, 50, 200, 10, 90] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert peak[0] <= 100 and budget.available == 100


def test_over_capacity_waits_for_everything_and_timeout_raises():
    budget = Budget(100, 'pixels')
    with budget.hold(1000, timeout_s=1):   # clamped to the capacity
        assert budget.available == 0
        with pytest.raises(BudgetTimeout, match='1 pixels not free within 0.1 s'):
            with budget.hold(1, timeout_s=0.1):
                pass
    assert budget.available == 100


def test_first_come_first_served():
    """A large request queued first is not overtaken by later small ones."""
    budget = Budget(100)
    order = []
    blocker = budget.hold(60, timeout_s=1)
    blocker.__enter__()

    def take(name, pixels):
        with budget.hold(pixels, timeout_s=10):
            order.append(name)

    large = threading.Thread(target=take, args=('large', 80))
    large.start()
    assert waiting.poll(lambda: budget.waiting == 1, 10, interval_s=0.01)
    small = threading.Thread(target=take, args=('small', 10))
    small.start()
    assert waiting.poll(lambda: budget.waiting == 2, 10, interval_s=0.01)
    assert order == []  # 40 free would fit the small one, but the large one is first
    blocker.__exit__(None, None, None)
    large.join(10)
    small.join(10)
    assert order == ['large', 'small']


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match='capacity'):
        Budget(0)
