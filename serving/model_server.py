"""A TF-Serving-compatible gRPC model server for one model (PredictionService + ModelService).

    python -m serving.model_server --port=8500 --model_name=ssd --model_base_path=exports/ssd

Serves Predict, GetModelMetadata and GetModelStatus with TF Serving's messages (client.protos),
so clients work unchanged against `tensorflow/serving`. The highest version under the base path
is served; new versions are picked up by polling. Like TF Serving its gRPC API listens on all
interfaces (0.0.0.0) by default: pass --host=127.0.0.1 to serve this machine only. The REST API
(--rest_api_port, serving/rest_api.py) listens on 127.0.0.1 unless --rest_api_host says
otherwise, with --rest_api_num_threads threads and --rest_api_timeout_in_ms to receive a request.

A request may bring at most --max_batch_size items per input, and --max_request_elements and
--max_request_bytes once decoded; larger ones are refused with INVALID_ARGUMENT naming the limit.
At most --max_batch_size items run at once over all requests (the others wait their turn): the
memory TensorFlow keeps after large requests is that of one full batch. At most
--max_inflight_predicts Predict requests are in flight (running or waiting their turn); more are
refused at once with UNAVAILABLE, as TF Serving's full batch queue does, so the client sends them
to another replica. The gRPC server runs --max_workers threads (more than that limit, so that
refusals and GetModelStatus find a thread at once) and takes no more RPCs than it has threads
(gRPC itself answers RESOURCE_EXHAUSTED beyond). A request whose deadline passes while it waits
is dropped, not run, and a run is cut at the deadline (TensorFlow's session timeout).
--enable_batching [--batching_parameters_file=serving/batching.config] batches concurrent
requests of a signature as TF Serving does (serving/batching.py; TF Serving's defaults without
the file).
SIGTERM/SIGINT drain the requests in flight for up to --grace_seconds, then exit; another signal
during the drain cancels them at once.
--precision=mixed_bfloat16 (CPUs with bfloat16 instructions) or mixed_float16 (GPUs) loads every
version with TensorFlow's mixed precision graph rewrite (common/precision.py); exports stay
float32, their signatures unchanged.
"""
import argparse
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from client import protos, tensor_proto
from common import cli, devices, precision, progress, tf_logs
from common.signatures import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MODEL_NAME,
    DEFAULT_SIGNATURE,
    MAX_MESSAGE_BYTES,
    ServingError,
)
from serving import batching

GRPC_OPTIONS = protos.MESSAGE_OPTIONS
_POLL_SECONDS = 0.1


def _abort(context, error):
    context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN), str(error))


def _version(model_spec):
    """Returns the requested version or None. Raises ServingError for version labels."""
    if model_spec.version_label:
        raise ServingError('version labels are not supported by this server ("%s"); use a '
                           'version number' % model_spec.version_label, 'INVALID_ARGUMENT')
    return model_spec.version.value if model_spec.HasField('version') else None


def _output_bytes(outputs):
    """Bytes of a response's tensors (strings: their lengths)."""
    return sum(sum(len(v) for v in value.flat) if value.dtype == object else value.nbytes
               for value in outputs.values())


def _answers_errors(method):
    """Turns ServingError into its status and any other exception into INTERNAL (logged)."""
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as e:
            return _abort(context, e)
        except Exception as e:  # a bug must answer INTERNAL with a logged traceback
            logging.exception('%s failed', method.__name__)
            return _abort(context, ServingError('%s: %s' % (type(e).__name__, e), 'INTERNAL'))
    wrapper.__name__ = method.__name__
    return wrapper


class Services:
    """PredictionService (Predict, GetModelMetadata) and ModelService (GetModelStatus).

    Attributes:
      answered, late, refused, expired: Predict requests answered, answered after their
        deadline (work for a client that had given up), refused at once because
        `max_predicts` were in flight, and ended at their deadline (DEADLINE_EXCEEDED: dropped
        while waiting or cut during the run).
    """

    def __init__(self, manager, max_predicts):
        self._manager = manager
        self._max_predicts = max_predicts
        self._predicts = 0
        self._lock = threading.Lock()
        self.answered = self.late = self.refused = self.expired = 0

    @_answers_errors
    def predict(self, request, context):
        with self._lock:
            busy = self._predicts >= self._max_predicts
            self.refused += busy
            self._predicts += not busy
        if busy:
            raise ServingError('the server is busy: %d Predict requests in flight, its limit '
                               '(--max_inflight_predicts); retry on another replica or later'
                               % self._max_predicts, 'UNAVAILABLE')
        try:
            return self._predict(request, context)
        except ServingError as e:
            with self._lock:
                self.expired += e.code == 'DEADLINE_EXCEEDED'
            raise
        finally:
            with self._lock:
                self._predicts -= 1

    def _predict(self, request, context):
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        loaded = self._manager.acquire(request.model_spec.name, _version(request.model_spec))
        try:
            outputs = loaded.run(signature_name, request.inputs, request.output_filter, deadline)
        finally:
            loaded.release()
        with self._lock:
            self.answered += 1
            self.late += deadline is not None and time.monotonic() > deadline
        size = _output_bytes(outputs)
        if size > MAX_MESSAGE_BYTES:
            raise ServingError('the answer would hold %d bytes of tensors, over the message limit '
                               'of %d; send fewer items per request' % (size, MAX_MESSAGE_BYTES),
                               'RESOURCE_EXHAUSTED')
        response = protos.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature_name
        for alias, value in outputs.items():
            tensor_proto.make_tensor_proto(value, response.outputs[alias])
        return response

    @_answers_errors
    def get_model_metadata(self, request, context):
        fields = set(request.metadata_field)
        if fields != {'signature_def'}:
            raise ServingError('metadata_field must be ["signature_def"], got %s' % sorted(fields),
                               'INVALID_ARGUMENT')
        loaded = self._manager.acquire(request.model_spec.name, _version(request.model_spec))
        loaded.release()
        response = protos.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = loaded.version
        signatures = protos.SignatureDefMap()
        for key, signature in loaded.signature_defs.items():
            signatures.signature_def[key].CopyFrom(signature)
        response.metadata['signature_def'].Pack(signatures)
        return response

    @_answers_errors
    def get_model_status(self, request, context):
        name = request.model_spec.name
        version = _version(request.model_spec)
        states = self._manager.status(version) if name == self._manager.model_name else []
        if not states:
            raise ServingError('Could not find any versions of model "%s"%s' % (
                name, '' if version is None else ' version %d' % version), 'NOT_FOUND')
        response = protos.GetModelStatusResponse()
        for number, state in states:
            status = response.model_version_status.add(version=number)
            status.state = protos.ModelVersionStatus.State.Value(state)
        return response


def create_server(manager, port, host='0.0.0.0', max_workers=64, services=None):
    """Builds (does not start) the gRPC server: `max_workers` threads, as many RPCs at most; it
    accepts the clients' keepalive pings.

    Args:
      services: the Services to serve (default: new ones on `manager`, Predict limited to
        half the threads).
    Returns:
      (server, bound port) - port 0 picks a free port.
    """
    # No SO_REUSEPORT: a second server on a busy port must fail, not silently share the port.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix='grpc'),
                         options=(GRPC_OPTIONS + protos.SERVER_KEEPALIVE_OPTIONS +
                                  [('grpc.so_reuseport', 0)]),
                         maximum_concurrent_rpcs=max_workers)
    services = services or Services(manager, max(max_workers // 2, 1))
    server.add_generic_rpc_handlers([
        protos.generic_handler(protos.PREDICTION_SERVICE, {
            'Predict': services.predict, 'GetModelMetadata': services.get_model_metadata}),
        protos.generic_handler(protos.MODEL_SERVICE, {
            'GetModelStatus': services.get_model_status})])
    try:
        bound = server.add_insecure_port('%s:%d' % (host, port))
    except RuntimeError as e:
        raise OSError('cannot bind gRPC port %s:%d (%s)' % (host, port, e)) from e
    if not bound:
        raise OSError('cannot bind gRPC port %s:%d' % (host, port))
    return server, bound


class _Signals:
    """Records SIGTERM and SIGINT. The handler only appends (no lock, no I/O), so any number of
    signals, arriving in any order and even inside the handler, cannot deadlock the main thread."""

    def __init__(self):
        self.received = []

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        del frame
        self.received.append(signum)


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    network = parser.add_argument_group('network')
    network.add_argument('--port', type=int, default=DEFAULT_GRPC_PORT, help='gRPC port')
    network.add_argument('--host', default='0.0.0.0',
                         help='interface to bind (0.0.0.0 = all, as TF Serving; 127.0.0.1 = '
                              'this machine only)')
    network.add_argument('--rest_api_port', type=int, default=0,
                         help='REST port (0 = no REST API)')
    network.add_argument('--rest_api_host', default='127.0.0.1',
                         help='interface of the REST API: this machine only unless given '
                              '(0.0.0.0 = all)')
    network.add_argument('--rest_api_num_threads', type=int, default=8,
                         help='REST connections served at once (more wait, then get 503)')
    network.add_argument('--rest_api_timeout_in_ms', type=int, default=30000,
                         help='the most time a REST request may take to arrive')
    network.add_argument('--max_workers', type=int, default=64,
                         help='gRPC worker threads, and the most RPCs in flight (gRPC answers '
                              'RESOURCE_EXHAUSTED beyond)')
    network.add_argument('--max_inflight_predicts', type=int, default=None,
                         help='Predict requests running or waiting their turn; more are refused '
                              'at once with UNAVAILABLE (below --max_workers; default: 16, at '
                              'most half of --max_workers)')
    model = parser.add_argument_group('model')
    model.add_argument('--model_name', default=DEFAULT_MODEL_NAME)
    model.add_argument('--model_base_path', required=True,
                       help='folder with <int version>/ subfolders')
    model.add_argument('--file_system_poll_wait_seconds', type=float, default=1.0)
    precision.add_flag(model)
    limits = parser.add_argument_group('request limits')
    limits.add_argument('--max_batch_size', type=int, default=8,
                        help='largest batch (dimension 0) of an input; also the most items '
                             'run at once over all requests, which bounds the memory')
    limits.add_argument('--max_request_elements', type=int, default=MAX_MESSAGE_BYTES // 4,
                        help='elements of all inputs of a request once decoded')
    limits.add_argument('--max_request_bytes', type=int, default=MAX_MESSAGE_BYTES,
                        help='bytes of all inputs of a request once decoded')
    batch = parser.add_argument_group('batching (as TF Serving)')
    batch.add_argument('--enable_batching', action='store_true',
                       help='run concurrent requests of a signature as one batch')
    batch.add_argument('--batching_parameters_file', default=None,
                       help='text-format BatchingParameters (max_batch_size, '
                            'batch_timeout_micros, num_batch_threads, max_enqueued_batches, '
                            'allowed_batch_sizes); default: TF Serving\'s defaults')
    parser.add_argument('--grace_seconds', type=float, default=10.0,
                        help='drain time on SIGTERM/SIGINT')
    args = parser.parse_args(argv)
    for flag in ('port', 'rest_api_port'):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error('--%s must be in 0..65535' % flag)
    if args.file_system_poll_wait_seconds <= 0:
        parser.error('--file_system_poll_wait_seconds must be > 0')
    for flag in ('max_batch_size', 'max_request_elements', 'max_request_bytes',
                 'rest_api_num_threads', 'rest_api_timeout_in_ms'):
        if getattr(args, flag) < 1:
            parser.error('--%s must be >= 1' % flag)
    if args.max_inflight_predicts is None:
        args.max_inflight_predicts = max(min(16, args.max_workers // 2), 1)
    if not 1 <= args.max_inflight_predicts < args.max_workers:
        parser.error('--max_inflight_predicts must be >= 1 and below --max_workers (%d), so '
                     'that refusals and status calls find a thread' % args.max_workers)
    if args.grace_seconds < 0:
        parser.error('--grace_seconds must be >= 0')
    args.batching = None
    if args.batching_parameters_file and not args.enable_batching:
        parser.error('--batching_parameters_file needs --enable_batching')
    if args.enable_batching:
        try:
            args.batching = (batching.read_parameters(args.batching_parameters_file)
                             if args.batching_parameters_file else batching.BatchingParameters())
        except ValueError as error:
            parser.error('--batching_parameters_file: %s' % error)
    try:
        precision.check(args.precision, int(devices.gpus_visible()))
    except ValueError as error:
        parser.error(str(error))
    return args


class _DropDeprecationNotices(logging.Filter):
    """TensorFlow's notices about the TF1 SavedModel loader, which this server uses on purpose."""

    def filter(self, record):
        return 'is deprecated and will be removed' not in record.getMessage()


def _load_tensorflow(precision_name=precision.FLOAT32):
    """Imports TensorFlow quietly: no INFO lines from C++ (warnings and errors stay), and no CUDA
    initialisation (`failed call to cuInit`) on a machine without an NVIDIA driver.

    Returns:
      (ModelManager class, RequestLimits class, session config: the graph rewrite of
      `precision_name` (common.precision) turned on).
    """
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from google.protobuf import text_format  # pylint: disable=import-outside-toplevel

    from serving.model_manager import (  # pylint: disable=import-outside-toplevel
        ModelManager,
        RequestLimits,
    )
    tf.get_logger().addFilter(_DropDeprecationNotices())
    config = devices.without_absent_gpus(tf.compat.v1.ConfigProto())
    text_format.Merge(precision.session_config_text(precision_name), config)
    return ModelManager, RequestLimits, config


def _drain(server, rest, signals, grace_seconds):
    """Stops the servers; a signal after the first one cancels the requests still in flight."""
    first = len(signals.received)
    logging.info('Stopping: draining requests for up to %.1f s (signal again to cancel them)',
                 grace_seconds)
    if rest is not None:
        rest.shutdown()
    done = server.stop(grace_seconds)
    while not done.wait(_POLL_SECONDS):
        if len(signals.received) > first:
            logging.info('Second signal: cancelling the requests in flight')
            first = len(signals.received)
            server.stop(0)


def _stop(manager, batcher, services=None):
    manager.stop()
    if services is not None:
        dropped = manager.budget.dropped + (batcher.dropped if batcher is not None else 0)
        logging.info('Predict requests: %d answered (%d after their deadline), %d refused as '
                     'busy, %d ended at their deadline (%d of them before they ran)',
                     services.answered, services.late, services.refused, services.expired,
                     dropped)
    if batcher is not None:
        batcher.stop()
        sizes = batcher.batch_sizes
        batches = sum(sizes.values())
        logging.info('Batching: %s, %.2f items each on average',
                     progress.counted(batches, 'batch', 'batches'),
                     sum(size * count for size, count in sizes.items()) / max(batches, 1))


def main(argv=None):
    signals = _Signals()
    signals.install()
    args = _parse_args(argv)
    cli.setup_logging()
    for warning in precision.check(args.precision, int(devices.gpus_visible())):
        logging.warning('%s', warning)
    model_manager_class, limits_class, session_config = _load_tensorflow(args.precision)
    if args.precision != precision.FLOAT32:
        logging.info('Running the models in %s: %s', args.precision,
                     precision.session_config_text(args.precision))
    limits = limits_class(max_batch_size=args.max_batch_size,
                          max_elements=args.max_request_elements,
                          max_bytes=args.max_request_bytes)
    batcher = batching.Batcher(args.batching) if args.batching else None
    manager = model_manager_class(args.model_name, args.model_base_path,
                                  args.file_system_poll_wait_seconds, session_config, limits,
                                  batcher=batcher)
    manager.start()
    try:
        services = Services(manager, args.max_inflight_predicts)
        server, port = create_server(manager, args.port, args.host, args.max_workers, services)
    except OSError as e:
        _stop(manager, batcher)
        logging.error('--port: %s', e)
        return 1
    rest = None
    if args.rest_api_port:
        from serving import rest_api  # pylint: disable=import-outside-toplevel
        rest = rest_api.start(manager, args.rest_api_host, args.rest_api_port,
                              args.rest_api_num_threads, args.rest_api_timeout_in_ms / 1000)
        logging.info('REST API on %s:%d', args.rest_api_host, args.rest_api_port)
    server.start()
    logging.info('gRPC PredictionService/ModelService for model %s on %s:%d (limits: batch %d, '
                 '%d elements, %d bytes per request; batching: %s)', args.model_name, args.host,
                 port, limits.max_batch_size, limits.max_elements, limits.max_bytes,
                 args.batching or 'off')
    while not signals.received:
        time.sleep(_POLL_SECONDS)
    _drain(server, rest, signals, args.grace_seconds)
    _stop(manager, batcher, services)
    logging.info('Stopped')
    return 0


def _exit(code):
    """Flushes the logs and ends the process now: a worker thread still running a request that
    the drain cancelled would otherwise keep it alive (Python joins the gRPC workers at exit)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    tf_logs.close_stderr_filter()
    os._exit(code)


if __name__ == '__main__':
    tf_logs.filter_stderr()  # before main imports TensorFlow, whose import prints its banner
    _exit(main())
