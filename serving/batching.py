"""Server-side batching for the local model server, configured as TF Serving's.

    python -m serving.model_server ... --enable_batching \
        --batching_parameters_file=serving/batching.config

Concurrent requests for the same version, signature, inputs and outputs, whose inputs agree
beyond dimension 0, are queued into one batch: the batch is run when it holds `max_batch_size`
items, or `batch_timeout_micros` after its first request arrived; `num_batch_threads` batches run
at once and at most `max_enqueued_batches` wait per queue (more are refused with UNAVAILABLE, as
TF Serving does); a request whose deadline has passed by the time its batch runs is dropped
(DEADLINE_EXCEEDED), not run. The inputs are concatenated along dimension 0 (padded with copies
of the first item up to the next of `allowed_batch_sizes`, when given), run once, and every
output is split back at the requests' offsets, so each request gets exactly the rows of its own
items. When a batch of several requests fails (say one undecodable JPEG), each request is run
again alone, so only the bad one fails.

The file is TF Serving's text format of `BatchingParameters` (session_bundle_config.proto):

    max_batch_size { value: 8 }
    batch_timeout_micros { value: 2000 }
    max_enqueued_batches { value: 100 }
    num_batch_threads { value: 4 }
    allowed_batch_sizes: 4  allowed_batch_sizes: 8   # optional
    pad_variable_length_inputs: false
"""
import collections
import dataclasses
import threading
import time

import numpy as np
from google.protobuf import text_format

from client import protos
from common.signatures import ServingError

_MICROS = 1e-6


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """The scheduler's settings; the defaults are TF Serving's (BasicBatchScheduler::Options)."""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 4
    allowed_batch_sizes: tuple = ()


def parse_parameters(text, source='batching parameters'):
    """Parses TF Serving's text-format BatchingParameters.

    Raises:
      ValueError: naming `source`, the field and the rule it breaks (unknown fields, values
        below their minimum, allowed_batch_sizes not increasing to max_batch_size, or
        pad_variable_length_inputs: true, which this server does not implement).
    """
    message = protos.BatchingParameters()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ValueError('%s: %s' % (source, e)) from None
    if message.pad_variable_length_inputs:
        raise ValueError('%s: pad_variable_length_inputs: true is not supported by this server '
                         '(requests of other shapes beyond dimension 0 are batched apart)'
                         % source)
    defaults = BatchingParameters()
    values = {}
    for name, minimum in (('max_batch_size', 1), ('batch_timeout_micros', 0),
                          ('max_enqueued_batches', 1), ('num_batch_threads', 1)):
        value = getattr(message, name).value if message.HasField(name) else getattr(defaults,
                                                                                   name)
        if value < minimum:
            raise ValueError('%s: %s is %d, it must be >= %d' % (source, name, value, minimum))
        values[name] = value
    sizes = tuple(message.allowed_batch_sizes)
    if sizes and (any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1 or
                  sizes[-1] != values['max_batch_size']):
        raise ValueError('%s: allowed_batch_sizes %s must increase and end at max_batch_size %d'
                         % (source, list(sizes), values['max_batch_size']))
    return BatchingParameters(allowed_batch_sizes=sizes, **values)


def read_parameters(path):
    """parse_parameters of a file; an unreadable file raises ValueError naming it."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        raise ValueError('cannot read batching parameters file %s: %s' % (path, e)) from None
    return parse_parameters(text, path)


class _Task:
    """One request in a batch: its input arrays, its item count, its deadline (clock time or
    None) and, once run, its outputs."""

    def __init__(self, arrays, items, deadline=None):
        self.arrays = arrays
        self.items = items
        self.deadline = deadline
        self.outputs = self.error = None
        self.done = threading.Event()


class _Batch:
    def __init__(self, queue_key, run, now):
        self.queue_key = queue_key
        self.run = run
        self.tasks = []
        self.items = 0
        self.opened = now


class Batcher:
    """Queues requests into batches and runs them on `num_batch_threads` threads.

    Attributes:
      batch_sizes: collections.Counter of the item counts of the batches run (before padding).
      dropped: requests whose deadline passed before their batch ran (never run).
    """

    def __init__(self, parameters, clock=time.monotonic):
        self.parameters = parameters
        self.batch_sizes = collections.Counter()
        self.dropped = 0
        self._clock = clock
        self._timeout = parameters.batch_timeout_micros * _MICROS
        self._queues = collections.OrderedDict()  # queue key -> deque of waiting _Batch
        self._changed = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name='batch-%d' % i, daemon=True)
                         for i in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, queue_key, run, arrays, items, deadline=None):
        """Runs one request as part of a batch; blocks until its batch has run.

        Args:
          queue_key: hashable; only requests of equal keys share a batch (the caller puts the
            version, signature, aliases and the input dtypes and shapes beyond dimension 0).
          run: callable(list of input arrays) -> list of output arrays, each with the batch in
            dimension 0; called with the concatenated inputs of the batch.
          arrays: this request's input arrays, `items` rows each.
          items: this request's batch size.
          deadline: clock() time after which the request is dropped if its batch has not run.
        Returns:
          this request's rows of run()'s outputs.
        Raises:
          ServingError: INVALID_ARGUMENT over max_batch_size, UNAVAILABLE when the queue is
            full or the batcher stopped, DEADLINE_EXCEEDED when dropped, or what run() raised
            for this request.
        """
        limit = self.parameters.max_batch_size
        if items > limit:
            raise ServingError('a request of %d items is over the batching max_batch_size of %d'
                               % (items, limit), 'INVALID_ARGUMENT')
        task = _Task(arrays, items, deadline)
        with self._changed:
            if self._stopped:
                raise ServingError('the batch scheduler is stopping', 'UNAVAILABLE')
            waiting = self._queues.setdefault(queue_key, collections.deque())
            if not waiting or waiting[-1].items + items > limit:
                if len(waiting) >= self.parameters.max_enqueued_batches:
                    raise ServingError('the batch queue is full (max_enqueued_batches %d); retry '
                                       'later' % self.parameters.max_enqueued_batches,
                                       'UNAVAILABLE')
                waiting.append(_Batch(queue_key, run, self._clock()))
            waiting[-1].tasks.append(task)
            waiting[-1].items += items
            self._changed.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self):
        """Runs the batches already queued, then ends the threads."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def _next_batch(self):
        """The oldest batch that is full or timed out (None when stopped and all are done)."""
        with self._changed:
            while True:
                now = self._clock()
                wake = None
                for key, waiting in self._queues.items():
                    batch = waiting[0]
                    due = batch.opened + self._timeout
                    if (batch.items >= self.parameters.max_batch_size or now >= due or
                            self._stopped or len(waiting) > 1):
                        waiting.popleft()
                        if not waiting:
                            del self._queues[key]
                        return batch
                    wake = due if wake is None else min(wake, due)
                if self._stopped:
                    return None
                self._changed.wait(None if wake is None else wake - now)

    def _work(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            tasks = self._drop_expired(batch.tasks)
            if tasks:
                self.batch_sizes[sum(task.items for task in tasks)] += 1
                if not self._run_batch(batch.run, tasks) and len(tasks) > 1:
                    for task in tasks:  # only the requests that fail alone fail
                        self._run_batch(batch.run, [task])
            for task in batch.tasks:
                task.done.set()

    def _drop_expired(self, tasks):
        """The tasks whose deadline has not passed; the others get DEADLINE_EXCEEDED."""
        now = self._clock()
        live = []
        for task in tasks:
            if task.deadline is not None and now >= task.deadline:
                task.error = ServingError('dropped: the request\'s deadline passed while it '
                                          'waited for its batch', 'DEADLINE_EXCEEDED')
                with self._changed:
                    self.dropped += 1
            else:
                live.append(task)
        return live

    def _run_batch(self, run, tasks):
        """Runs tasks as one batch and hands each its rows; returns False when run() failed."""
        items = sum(task.items for task in tasks)
        padded = next((size for size in self.parameters.allowed_batch_sizes if size >= items),
                      items)
        try:
            inputs = [_concatenate([task.arrays[i] for task in tasks], padded - items)
                      for i in range(len(tasks[0].arrays))]
            outputs = run(inputs)
            for index, output in enumerate(outputs):
                if np.ndim(output) == 0 or len(output) != padded:
                    raise ServingError('output %d of a batch of %d items has shape %s: batched '
                                       'signatures need the batch in dimension 0 of every '
                                       'output' % (index, padded, np.shape(output)), 'INTERNAL')
        except Exception as e:  # handed to the requests, one by one when several
            for task in tasks:
                task.error = e if isinstance(e, ServingError) else ServingError(
                    'running a batch failed: %s: %s' % (type(e).__name__, e), 'INTERNAL')
            return False
        offset = 0
        for task in tasks:
            task.outputs = [output[offset:offset + task.items] for output in outputs]
            task.error = None
            offset += task.items
        return True


def _concatenate(arrays, padding):
    """Joins arrays along dimension 0, then repeats the first row `padding` times."""
    if padding:
        arrays = arrays + [np.repeat(arrays[0][:1], padding, axis=0)]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
