"""Loads the versions of a SavedModel base path and swaps to the newest one while serving.

Layout: `<base_path>/<int version>/saved_model.pb` (folders whose name is not an integer, such
as an export's temporary folder, are ignored). Like TF Serving's default version policy, the
highest version is served; a version that fails to load is logged and the old one kept.
"""
import logging
import os
import threading

import tensorflow as tf

from serving import tensor_proto

SERVE_TAG = 'serve'


class ServingError(Exception):
    """A request error with the gRPC status code name it maps to ('NOT_FOUND', 'INVALID_ARGUMENT')."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def list_versions(base_path):
    """Returns the sorted integer versions under base_path that contain a saved_model.pb."""
    if not os.path.isdir(base_path):
        return []
    versions = []
    for name in os.listdir(base_path):
        if name.isdigit() and os.path.isfile(os.path.join(base_path, name, 'saved_model.pb')):
            versions.append(int(name))
    return sorted(versions)


class LoadedVersion:
    """One SavedModel version in its own graph and session, closed when retired and idle."""

    def __init__(self, export_dir, version, session_config=None):
        self.version = version
        self.export_dir = export_dir
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [SERVE_TAG], export_dir)
        except Exception:
            self._session.close()
            raise
        self.signature_defs = dict(meta_graph.signature_def)
        self._runners = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False

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

    def run(self, signature_name, inputs, output_filter=()):
        """Runs a signature.

        Args:
          signature_name: key of signature_defs.
          inputs: dict input alias -> TensorProto.
          output_filter: output aliases to return (all when empty).
        Returns:
          dict output alias -> numpy array.
        Raises:
          ServingError: unknown signature, missing/unknown input, wrong dtype or shape, bad filter.
        """
        signature = self.signature_defs.get(signature_name)
        if signature is None:
            raise ServingError('INVALID_ARGUMENT', 'Serving signature key "%s" not found; available: %s'
                               % (signature_name, ', '.join(sorted(self.signature_defs))))
        missing = sorted(set(signature.inputs) - set(inputs))
        unknown = sorted(set(inputs) - set(signature.inputs))
        if missing or unknown:
            raise ServingError('INVALID_ARGUMENT', 'signature "%s" expects inputs %s; missing %s, unknown %s'
                               % (signature_name, sorted(signature.inputs), missing, unknown))
        input_aliases = sorted(inputs)
        arrays = [_checked_array(alias, inputs[alias], signature.inputs[alias]) for alias in input_aliases]
        aliases = list(output_filter) or sorted(signature.outputs)
        bad = sorted(set(aliases) - set(signature.outputs))
        if bad:
            raise ServingError('INVALID_ARGUMENT', 'output_filter names unknown outputs %s of signature "%s"; '
                               'available: %s' % (bad, signature_name, sorted(signature.outputs)))
        try:
            values = self._runner(signature_name, input_aliases, aliases)(*arrays)
        except tf.errors.InvalidArgumentError as e:
            raise ServingError('INVALID_ARGUMENT', 'running signature "%s" failed: %s'
                               % (signature_name, e.message)) from e
        return dict(zip(aliases, values))

    def _runner(self, signature_name, input_aliases, output_aliases):
        """A session callable for these inputs and outputs, made once (cheaper than session.run)."""
        key = (signature_name, tuple(input_aliases), tuple(output_aliases))
        runner = self._runners.get(key)
        if runner is None:
            signature = self.signature_defs[signature_name]
            runner = self._session.make_callable(
                [signature.outputs[alias].name for alias in output_aliases],
                feed_list=[signature.inputs[alias].name for alias in input_aliases])
            self._runners[key] = runner
        return runner


def _checked_array(alias, proto, tensor_info):
    """Converts a request TensorProto after checking dtype and shape against the signature."""
    if proto.dtype != tensor_info.dtype:
        raise ServingError('INVALID_ARGUMENT', 'input "%s" has dtype %s, the signature expects %s'
                           % (alias, tensor_proto.dtype_name(proto.dtype), tensor_proto.dtype_name(tensor_info.dtype)))
    expected = tensor_proto.shape_of(tensor_info.tensor_shape)
    got = tensor_proto.shape_of(proto)
    if expected is not None and (len(got) != len(expected) or
                                 any(e not in (-1, g) for e, g in zip(expected, got))):
        raise ServingError('INVALID_ARGUMENT', 'input "%s" has shape %s, the signature expects %s (-1 = any)'
                           % (alias, got, expected))
    try:
        return tensor_proto.make_ndarray(proto)
    except ValueError as e:
        raise ServingError('INVALID_ARGUMENT', 'input "%s": %s' % (alias, e)) from e


class ModelManager:
    """Serves the highest version of one model and polls its base path for new versions."""

    def __init__(self, model_name, base_path, poll_seconds=1.0, session_config=None):
        self.model_name = model_name
        self.base_path = base_path
        self._poll_seconds = poll_seconds
        self._session_config = session_config
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._current = None
        self._failed = set()
        self._warned_empty = False
        self._stop = threading.Event()
        self._thread = None

    def poll_once(self):
        """Loads the highest version if it is new; keeps the old one when loading fails.

        Returns:
          the version served afterwards (None when none is loaded).
        """
        with self._poll_lock:
            return self._poll_locked()

    def _poll_locked(self):
        versions = list_versions(self.base_path)
        current = self._current
        if versions and (current is None or versions[-1] != current.version) and versions[-1] not in self._failed:
            version = versions[-1]
            path = os.path.join(self.base_path, str(version))
            logging.info('Loading model %s version %d from %s', self.model_name, version, path)
            try:
                loaded = LoadedVersion(path, version, self._session_config)
            except Exception as e:  # any load failure must keep the old version serving
                self._failed.add(version)
                logging.error('Failed to load model %s version %d from %s: %s; still serving version %s',
                              self.model_name, version, path, e, current.version if current else None)
            else:
                with self._lock:
                    old, self._current = self._current, loaded
                logging.info('Serving model %s version %d', self.model_name, version)
                if old is not None:
                    old.retire()
        elif not versions and current is None and not self._warned_empty:
            self._warned_empty = True
            logging.warning('No versions of model %s found under %s (waiting for one)',
                            self.model_name, self.base_path)
        return self._current.version if self._current else None

    def start(self):
        """Loads the current version and starts the polling thread."""
        self.poll_once()
        self._thread = threading.Thread(target=self._poll_loop, name='version-poll', daemon=True)
        self._thread.start()

    def _poll_loop(self):
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll_once()
            except OSError as e:
                logging.error('Polling %s failed: %s', self.base_path, e)

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
            raise ServingError('NOT_FOUND', 'Servable not found for request: model "%s" (this server serves "%s")'
                               % (model_name, self.model_name))
        with self._lock:
            current = self._current
            if current is None:
                raise ServingError('NOT_FOUND', 'model "%s" has no loaded version (base path %s)'
                                   % (model_name, self.base_path))
            if version is not None and version != current.version:
                raise ServingError('NOT_FOUND', 'model "%s" version %d is not available; serving version %d'
                                   % (model_name, version, current.version))
            current.acquire()
        return current

    def status(self, version=None):
        """Returns (version, state) pairs, state 'AVAILABLE' or 'END' (unloaded) or 'NOT_FOUND'."""
        current = self._current
        if version is None:
            return [(current.version, 'AVAILABLE')] if current else []
        if current is not None and version == current.version:
            return [(version, 'AVAILABLE')]
        if version in list_versions(self.base_path):
            return [(version, 'END')]
        return []

