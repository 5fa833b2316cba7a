"""Loads the versions of a SavedModel base path and swaps to the newest one while serving.

Layout: `<base_path>/<version>/saved_model.pb` (common.signatures.scan_versions: hidden folders
such as an export's temporary one are skipped; other names that are no version, and entries that
cannot be read, such as a symbolic link loop, are logged once and skipped).
Like TF Serving's default version policy, the highest version that loads is served; it is
warmed up first (each signature with numeric inputs of known shape run once on zeros). A version
that fails to load (often a copy still in progress) is retried once its files have changed and
settled, and otherwise after a back-off; meanwhile the served version stays.

Requests are checked against `RequestLimits` before anything is decoded: a tensor with a single
value expands to its whole shape, so a small request could otherwise allocate gigabytes. At most
`max_batch_size` items (images) run at once, summed over concurrent requests (common.budget):
TensorFlow's CPU allocator with oneDNN (BFC, "mklcpu") keeps the largest working set it ever
needed, so this bounds the memory the process keeps after large requests. With a
`serving.batching.Batcher`, concurrent requests of a signature whose inputs all have the batch
in dimension 0 are run as one batch (the others run alone).
"""
import dataclasses
import logging
import os
import threading
import time

import numpy as np
import tensorflow as tf

from client import protos, tensor_proto
from common.budget import Budget, BudgetTimeout
from common.signatures import MAX_MESSAGE_BYTES, SERVE_TAG, ServingError, scan_versions

# TensorFlow's error codes are the gRPC status codes.
_STATUS_NAMES = {getattr(tf.errors, name): name for name in dir(tf.errors) if name.isupper()}


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """What one request may expand to, checked before decoding.

    Attributes:
      max_batch_size: largest dimension 0 of an input whose signature shape starts with -1 (8,
        as the max_batch_size of serving/batching.config), and the most items run at once.
      max_elements: elements of all inputs of a request, once decoded.
      max_bytes: bytes of all inputs of a request, once decoded (strings: their lengths).
    """
    max_batch_size: int = 8
    max_elements: int = MAX_MESSAGE_BYTES // 4
    max_bytes: int = MAX_MESSAGE_BYTES


class LoadedVersion:
    """One SavedModel version in its own graph and session, closed when retired and idle."""

    def __init__(self, export_dir, version, session_config=None, limits=RequestLimits(),
                 budget=None, batcher=None):
        self.version = version
        self.export_dir = export_dir
        self.limits = limits
        self._budget = budget or Budget(limits.max_batch_size)
        self._batcher = batcher
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [SERVE_TAG],
                                                               export_dir)
        except Exception:
            self._session.close()
            raise
        # The serving API's own message class (client.protos), not TensorFlow's.
        self.signature_defs = {key: protos.SignatureDef.FromString(value.SerializeToString())
                               for key, value in meta_graph.signature_def.items()}
        self._runners = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False
        self._warm_up()

    def _warm_up(self):
        """Runs once, on zeros of one item, every signature whose inputs are numbers of known
        shape beyond dimension 0, before the version serves: the first run of a graph builds
        its kernels (oneDNN primitives), which would otherwise delay the first requests.

        A signature that fails on zeros is logged and left cold; the version still serves.
        """
        start = time.monotonic()
        warmed = []
        for name, signature in sorted(self.signature_defs.items()):
            arrays = _zeros(signature)
            if arrays is None:
                continue
            aliases = sorted(signature.inputs)
            try:
                self._run(name, self._runner(name, aliases, sorted(signature.outputs)),
                          [arrays[alias] for alias in aliases], 1)
                warmed.append(name)
            except ServingError as e:
                logging.warning('Version %d: warming up signature "%s" on zeros failed: %s',
                                self.version, name, e)
        if warmed:
            logging.info('Version %d: warmed up %s in %.2f s', self.version, ', '.join(warmed),
                         time.monotonic() - start)

    def acquire(self):
        with self._lock:
            self._in_flight += 1

    def release(self):
        with self._lock:
            self._in_flight -= 1
            close = self._retired and self._in_flight == 0
        if close:
            self._session.close()

    def retire(self):
        """Closes the session once the requests in flight have finished."""
        with self._lock:
            self._retired = True
            close = self._in_flight == 0
        if close:
            self._session.close()

    def run(self, signature_name, inputs, output_filter=(), deadline=None):
        """Runs a signature.

        Args:
          signature_name: key of signature_defs.
          inputs: dict input alias -> TensorProto.
          output_filter: output aliases to return (all when empty).
          deadline: time.monotonic() after which the request is dropped if it has not started
            (DEADLINE_EXCEEDED): its client has given up.
        Returns:
          dict output alias -> numpy array.
        Raises:
          ServingError: INVALID_ARGUMENT for an unknown signature, missing/unknown inputs, a
            wrong dtype or shape, a request over the limits, or a bad filter;
            RESOURCE_EXHAUSTED when out of memory; TensorFlow's code for other run errors.
        """
        signature = self.signature_defs.get(signature_name)
        if signature is None:
            raise ServingError('Serving signature key "%s" not found; available: %s'
                               % (signature_name, ', '.join(sorted(self.signature_defs))),
                               'INVALID_ARGUMENT')
        missing = sorted(set(signature.inputs) - set(inputs))
        unknown = sorted(set(inputs) - set(signature.inputs))
        if missing or unknown:
            raise ServingError('signature "%s" expects inputs %s; missing %s, unknown %s'
                               % (signature_name, sorted(signature.inputs), missing, unknown),
                               'INVALID_ARGUMENT')
        aliases = sorted(set(output_filter) or set(signature.outputs))
        bad = sorted(set(aliases) - set(signature.outputs))
        if bad:
            raise ServingError('output_filter names unknown outputs %s of signature "%s"; '
                               'available: %s' % (bad, signature_name, sorted(signature.outputs)),
                               'INVALID_ARGUMENT')
        input_aliases = sorted(inputs)
        arrays, items = _decode_inputs(input_aliases, inputs, signature, self.limits)
        runner = self._runner(signature_name, input_aliases, aliases)
        if self._batcher is not None and _batched_in_dimension_0(signature):
            key = (self, signature_name, tuple(input_aliases), tuple(aliases),
                   tuple((a.dtype.str, a.shape[1:]) for a in arrays))
            values = self._batcher.run(
                key, lambda batch: self._run(signature_name, runner, batch, len(batch[0])),
                arrays, items, deadline)
        else:
            values = self._run(signature_name, runner, arrays, items, deadline)
        return dict(zip(aliases, values))

    def _run(self, signature_name, runner, arrays, items, deadline=None):
        """Runs a session callable on input arrays of `items` items within the item budget.

        With a deadline the run is also bounded by TensorFlow's own session timeout
        (RunOptions.timeout_in_ms), so work for a client that has given up stops.

        Raises:
          ServingError: TensorFlow's code of a run error, RESOURCE_EXHAUSTED out of memory,
            DEADLINE_EXCEEDED when `deadline` passed before its turn or during the run.
        """
        try:
            with self._budget.hold(items, deadline=deadline):
                if deadline is None:
                    return runner(*arrays)
                left_ms = max(int((deadline - time.monotonic()) * 1000), 1)
                return runner(*arrays, options=tf.compat.v1.RunOptions(timeout_in_ms=left_ms))
        except tf.errors.OpError as e:
            code = _STATUS_NAMES.get(e.error_code, 'INTERNAL')
            raise ServingError('running signature "%s" failed: %s' % (signature_name, e.message),
                               code) from e
        except MemoryError as e:
            raise ServingError('out of memory running signature "%s"' % signature_name,
                               'RESOURCE_EXHAUSTED') from e
        except BudgetTimeout as e:
            raise ServingError('dropped: the request\'s deadline passed while it waited for its '
                               'turn (%s)' % e, 'DEADLINE_EXCEEDED') from e

    def _runner(self, signature_name, input_aliases, output_aliases):
        """A session callable for these inputs and outputs, made once (cheaper than session.run).

        At most one per signature and set of outputs, so the cache is bounded by the model.
        """
        key = (signature_name, tuple(input_aliases), tuple(output_aliases))
        runner = self._runners.get(key)
        if runner is None:
            signature = self.signature_defs[signature_name]
            runner = self._session.make_callable(
                [signature.outputs[alias].name for alias in output_aliases],
                feed_list=[signature.inputs[alias].name for alias in input_aliases],
                accept_options=True)
            self._runners[key] = runner
        return runner


def _zeros(signature):
    """Zero inputs of one item for a signature (dict alias -> array), or None when an input is
    not a number or has an unknown dimension besides dimension 0."""
    arrays = {}
    for alias, info in signature.inputs.items():
        shape = tensor_proto.shape_of(info.tensor_shape)
        dtype = tensor_proto.DTYPE_TO_NUMPY.get(info.dtype)
        if shape is None or dtype is None or any(size < 0 for size in shape[1:]):
            return None
        arrays[alias] = np.zeros([1 if size < 0 else size for size in shape], dtype)
    return arrays


def _batched_in_dimension_0(signature):
    """Whether every input of a signature has a known rank and a free dimension 0 (a batch)."""
    shapes = [tensor_proto.shape_of(info.tensor_shape) for info in signature.inputs.values()]
    return all(shape and shape[0] == -1 for shape in shapes)


def _decode_inputs(aliases, inputs, signature, limits):
    """Checks the request's tensors against the signature and the limits, then decodes them.

    Returns:
      (list of numpy arrays in the order of aliases, the request's batch size or 1).
    Raises:
      ServingError: INVALID_ARGUMENT naming the input (and the limit), RESOURCE_EXHAUSTED when
        decoding runs out of memory.
    """
    elements = size = 0
    items = 1
    for alias in aliases:
        count, nbytes, batch = _checked_size(alias, inputs[alias], signature.inputs[alias], limits)
        items = max(items, batch)
        elements += count
        size += nbytes
        for total, limit, flag, unit in [(elements, limits.max_elements, 'max_request_elements',
                                          'elements'),
                                         (size, limits.max_bytes, 'max_request_bytes', 'bytes')]:
            if total > limit:
                raise ServingError(
                    'input "%s" brings the request to %d %s once decoded, over the limit of %d '
                    '(--%s)' % (alias, total, unit, limit, flag), 'INVALID_ARGUMENT')
    try:
        return [tensor_proto.make_ndarray(inputs[alias]) for alias in aliases], items
    except MemoryError as e:
        raise ServingError('out of memory decoding the request (%d bytes)' % size,
                           'RESOURCE_EXHAUSTED') from e


def _checked_size(alias, proto, tensor_info, limits):
    """Checks dtype, shape and batch size of one input.

    Returns:
      (elements, bytes) once decoded, and its batch size (1 for an input without a batch).
    """
    def refuse(message, *args):
        return ServingError('input "%s" ' % alias + message % args, 'INVALID_ARGUMENT')

    if proto.dtype != tensor_info.dtype:
        raise refuse('has dtype %s, the signature expects %s', tensor_proto.dtype_name(proto.dtype),
                     tensor_proto.dtype_name(tensor_info.dtype))
    got = tensor_proto.shape_of(proto)
    if got is None:
        raise refuse('has an unknown rank (unknown_rank is set); send its shape')
    expected = tensor_proto.shape_of(tensor_info.tensor_shape)
    batch = 1
    if expected is not None:
        if len(got) != len(expected) or any(e not in (-1, g) for e, g in zip(expected, got)):
            raise refuse('has shape %s, the signature expects %s (-1 = any)', got, expected)
        if expected and expected[0] == -1 and got[0] == 0:
            raise refuse('has an empty batch (shape %s); send at least one item', got)
        if expected and expected[0] == -1 and got[0] > limits.max_batch_size:
            raise refuse('has a batch of %d, over the limit of %d (--max_batch_size)', got[0],
                         limits.max_batch_size)
        batch = got[0] if expected and expected[0] == -1 else 1
    try:
        return tensor_proto.decoded_size(proto) + (batch,)
    except ValueError as e:
        raise refuse('%s', e) from e


def _fingerprint(path):
    """(relative path, size, mtime) of every file under path: changes when a copy progresses."""
    files = []
    for root, _, names in os.walk(path):
        for name in names:
            try:
                stat = os.stat(os.path.join(root, name))
            except OSError:  # removed while we look
                continue
            files.append((os.path.relpath(os.path.join(root, name), path), stat.st_size,
                          stat.st_mtime_ns))
    return tuple(sorted(files))


@dataclasses.dataclass
class _Failure:
    """A version that failed to load with the files `fingerprint`.

    It is retried once its files have changed and then stayed the same for one poll (a copy in
    progress is not loaded again at every poll), or at retry_at.
    """
    fingerprint: tuple
    last_seen: tuple
    retry_at: float
    backoff: float

    def due(self, fingerprint, now):
        settled = fingerprint != self.fingerprint and fingerprint == self.last_seen
        self.last_seen = fingerprint
        return settled or now >= self.retry_at


class ModelManager:
    """Serves the highest version of one model and polls its base path for new versions."""

    def __init__(self, model_name, base_path, poll_seconds=1.0, session_config=None,
                 limits=RequestLimits(), retry_seconds=30.0, max_retry_seconds=600.0,
                 clock=time.monotonic, batcher=None):
        """Args:
          model_name: the served model's name.
          base_path: folder of version folders.
          poll_seconds: interval of the polling thread.
          session_config: tf.compat.v1.ConfigProto of the sessions, or None.
          limits: RequestLimits of every request; at most limits.max_batch_size items run at
            once over all requests.
          retry_seconds: first back-off before a failed version whose files did not change is
            retried; it doubles up to max_retry_seconds.
          max_retry_seconds: the longest back-off.
          clock: monotonic time source (tests replace it).
          batcher: a serving.batching.Batcher shared by the versions, or None (no batching).
        """
        self.model_name = model_name
        self.base_path = base_path
        self.limits = limits
        self.budget = Budget(limits.max_batch_size)  # shared by all versions
        self._poll_seconds = poll_seconds
        self._session_config = session_config
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._clock = clock
        self._batcher = batcher
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._current = None
        self._failures = {}
        self._ignored = set()
        self._warned_empty = False
        self._stop = threading.Event()
        self._thread = None

    def poll_once(self):
        """Loads the highest loadable version above the served one; keeps the served one else.

        Returns:
          the version served afterwards (None when none is loaded).
        """
        with self._poll_lock:
            return self._poll_locked()

    def _poll_locked(self):
        versions, ignored = scan_versions(self.base_path)
        for name in sorted(set(ignored) - self._ignored):
            logging.warning('Ignoring %s: %s', os.path.join(self.base_path, name), ignored[name])
        self._ignored = set(ignored)
        self._failures = {v: f for v, f in self._failures.items() if v in versions}
        current = self._current
        if current is None or current.version not in versions:
            candidates = sorted(versions, reverse=True)  # also a rollback when a folder is removed
        else:
            candidates = sorted((v for v in versions if v > current.version), reverse=True)
        for version in candidates:
            if self._try_load(version, versions[version]):
                break
        if not versions and current is None and not self._warned_empty:
            self._warned_empty = True
            logging.warning('No versions of model %s found under %s (waiting for one)',
                            self.model_name, self.base_path)
        return self._current.version if self._current else None

    def _try_load(self, version, path):
        """Loads a version unless it failed before with the same files and its back-off runs.

        Returns:
          True when the version is served now.
        """
        fingerprint = _fingerprint(path)
        failure = self._failures.get(version)
        now = self._clock()
        if failure is not None and not failure.due(fingerprint, now):
            return False
        logging.info('Loading model %s version %d from %s', self.model_name, version, path)
        try:
            loaded = LoadedVersion(path, version, self._session_config, self.limits,
                                   self.budget, self._batcher)
        except Exception as e:  # any load failure must keep the served version
            backoff = (self._retry_seconds if failure is None or failure.fingerprint != fingerprint
                       else min(2 * failure.backoff, self._max_retry_seconds))
            self._failures[version] = _Failure(fingerprint, fingerprint, now + backoff, backoff)
            logging.error('Failed to load model %s version %d from %s: %s; still serving version '
                          '%s; retrying when its files change or in %.0f s', self.model_name,
                          version, path, e, self._current.version if self._current else None,
                          backoff)
            return False
        self._failures.pop(version, None)
        with self._lock:
            old, self._current = self._current, loaded
        logging.info('Serving model %s version %d', self.model_name, version)
        if old is not None:
            old.retire()
        return True

    def start(self):
        """Loads the current version and starts the polling thread."""
        self.poll_once()
        self._thread = threading.Thread(target=self._poll_loop, name='version-poll', daemon=True)
        self._thread.start()

    def _poll_loop(self):
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll_once()
            except Exception:  # the poller must outlive any odd file system state
                logging.exception('Polling %s failed', self.base_path)

    def stop(self):
        """Stops polling and closes the served version."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            old, self._current = self._current, None
        if old is not None:
            old.retire()

    def acquire(self, model_name, version=None):
        """Returns the LoadedVersion for a request (call .release() on it when done).

        Raises:
          ServingError: NOT_FOUND for an unknown model, an unavailable version or nothing loaded.
        """
        if model_name != self.model_name:
            raise ServingError('Servable not found for request: model "%s" (this server serves '
                               '"%s")' % (model_name, self.model_name), 'NOT_FOUND')
        with self._lock:
            current = self._current
            if current is None:
                raise ServingError('model "%s" has no loaded version (base path %s)'
                                   % (model_name, self.base_path), 'NOT_FOUND')
            if version is not None and version != current.version:
                raise ServingError('model "%s" version %d is not available; serving version %d'
                                   % (model_name, version, current.version), 'NOT_FOUND')
            current.acquire()
        return current

    def status(self, version=None):
        """Returns (version, state) pairs, state 'AVAILABLE' or 'END' (unloaded) or 'NOT_FOUND'."""
        current = self._current
        if version is None:
            return [(current.version, 'AVAILABLE')] if current else []
        if current is not None and version == current.version:
            return [(version, 'AVAILABLE')]
        if version in scan_versions(self.base_path)[0]:
            return [(version, 'END')]
        return []
