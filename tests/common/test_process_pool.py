import concurrent.futures
import os

import pytest

from common import process_pool


@pytest.mark.parametrize('num_workers', [1, 2])
def test_results_come_in_the_order_of_the_items(num_workers):
    items = [-k for k in range(50)]
    with process_pool.ordered_map(abs, items, num_workers, chunksize=4) as results:
        assert list(results) == list(range(50))


def test_a_worker_that_dies_raises_instead_of_waiting():
    with pytest.raises(concurrent.futures.process.BrokenProcessPool):
        with process_pool.ordered_map(os._exit, [3, 4], 2) as results:
            list(results)
