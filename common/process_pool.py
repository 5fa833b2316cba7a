"""An ordered parallel map over worker processes, safe to start from a process with threads.

The workers are forked by a fork server (multiprocessing's `forkserver`): a fresh,
single-threaded Python process that imports the given modules once, so that each worker starts
without importing them again. Forking the calling process itself is not safe once it runs
threads (gRPC's, TensorFlow's, a test runner's): a child can inherit a held lock or crash in a
fork handler. A worker that dies raises `concurrent.futures.process.BrokenProcessPool` in the
caller instead of leaving the map waiting forever.
"""
import concurrent.futures
import contextlib
import multiprocessing


@contextlib.contextmanager
def ordered_map(function, items, num_workers, chunksize=1, preload=()):
    """Yields an iterator over `function(item)` for each item, in the order of `items`.

    Args:
        function: a module-level function (or a functools.partial of one); it is pickled.
        items: the arguments, one per call.
        num_workers: worker processes; 1 or fewer maps in this process.
        chunksize: items sent to a worker at a time.
        preload: names of the modules the fork server imports when this process starts it,
            e.g. the module of `function`.

    On leaving the block the calls not started yet are cancelled and the workers end.
    """
    if num_workers <= 1:
        yield map(function, items)
        return
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(list(preload))
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context) as executor:
        try:
            yield executor.map(function, items, chunksize=chunksize)
        finally:
            executor.shutdown(cancel_futures=True)
