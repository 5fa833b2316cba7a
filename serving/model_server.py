"""A TF-Serving-compatible gRPC model server for one model (PredictionService + ModelService).

    python -m serving.model_server --port=8500 --model_name=ssd --model_base_path=exports/ssd

Serves Predict, GetModelMetadata and GetModelStatus from `tensorflow_serving.apis`, so clients
work unchanged against `tensorflow/serving`. The highest version under the base path is served;
new versions are picked up by polling. SIGTERM/SIGINT drain in-flight requests, then exit.
"""
import argparse
import logging
import signal
import sys
import threading
from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import tensor_proto
from serving.model_manager import ModelManager, ServingError

DEFAULT_SIGNATURE = 'serving_default'
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_OPTIONS = [('grpc.max_send_message_length', MAX_MESSAGE_BYTES),
                ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES)]


def _abort(context, error):
    context.abort(getattr(grpc.StatusCode, error.code), str(error))


def _version(model_spec):
    """Returns the requested version or None. Raises ServingError for version labels."""
    if model_spec.version_label:
        raise ServingError('INVALID_ARGUMENT', 'version labels are not supported by this server ("%s"); '
                           'use a version number' % model_spec.version_label)
    return model_spec.version.value if model_spec.HasField('version') else None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata."""

    def __init__(self, manager):
        self._manager = manager

    def Predict(self, request, context):
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        try:
            loaded = self._manager.acquire(request.model_spec.name, _version(request.model_spec))
        except ServingError as e:
            return _abort(context, e)
        try:
            outputs = loaded.run(signature_name, request.inputs, request.output_filter)
        except ServingError as e:
            return _abort(context, e)
        finally:
            loaded.release()
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature_name
        for alias, value in outputs.items():
            response.outputs[alias].CopyFrom(tensor_proto.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        fields = set(request.metadata_field)
        if fields != {'signature_def'}:
            return _abort(context, ServingError('INVALID_ARGUMENT', 'metadata_field must be ["signature_def"], got %s'
                                                % sorted(fields)))
        try:
            loaded = self._manager.acquire(request.model_spec.name, _version(request.model_spec))
        except ServingError as e:
            return _abort(context, e)
        loaded.release()
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = loaded.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in loaded.signature_defs.items():
            signatures.signature_def[key].CopyFrom(signature)
        response.metadata['signature_def'].Pack(signatures)
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus."""

    def __init__(self, manager):
        self._manager = manager

    def GetModelStatus(self, request, context):
        name = request.model_spec.name
        try:
            version = _version(request.model_spec)
        except ServingError as e:
            return _abort(context, e)
        states = self._manager.status(version) if name == self._manager.model_name else []
        if not states:
            return _abort(context, ServingError('NOT_FOUND', 'Could not find any versions of model "%s"%s'
                                                % (name, '' if version is None else ' version %d' % version)))
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state in states:
            status = response.model_version_status.add(version=number)
            status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
        return response


def create_server(manager, port, host='0.0.0.0', max_workers=8):
    """Builds (does not start) the gRPC server.

    Returns:
      (server, bound port) - port 0 picks a free port.
    """
    # No SO_REUSEPORT: a second server on a busy port must fail, not silently share the port.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix='grpc'),
                         options=GRPC_OPTIONS + [('grpc.so_reuseport', 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
    try:
        bound = server.add_insecure_port('%s:%d' % (host, port))
    except RuntimeError as e:
        raise OSError('cannot bind gRPC port %s:%d (%s)' % (host, port, e)) from e
    if not bound:
        raise OSError('cannot bind gRPC port %s:%d' % (host, port))
    return server, bound


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--port', type=int, default=8500, help='gRPC port')
    parser.add_argument('--host', default='0.0.0.0', help='interface to bind')
    parser.add_argument('--rest_api_port', type=int, default=0, help='REST port (0 = no REST API)')
    parser.add_argument('--model_name', default='ssd')
    parser.add_argument('--model_base_path', required=True, help='folder with <int version>/ subfolders')
    parser.add_argument('--file_system_poll_wait_seconds', type=float, default=1.0)
    parser.add_argument('--max_workers', type=int, default=8, help='gRPC worker threads')
    parser.add_argument('--grace_seconds', type=float, default=10.0, help='drain time on SIGTERM')
    args = parser.parse_args(argv)
    for flag in ('port', 'rest_api_port'):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error('--%s must be in 0..65535' % flag)
    if args.file_system_poll_wait_seconds <= 0:
        parser.error('--file_system_poll_wait_seconds must be > 0')
    if args.max_workers < 1:
        parser.error('--max_workers must be >= 1')
    return args


def main(argv=None):
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    manager = ModelManager(args.model_name, args.model_base_path, args.file_system_poll_wait_seconds)
    manager.start()
    try:
        server, port = create_server(manager, args.port, args.host, args.max_workers)
    except OSError as e:
        manager.stop()
        logging.error('--port: %s', e)
        return 1
    rest = None
    if args.rest_api_port:
        from serving import rest_api  # pylint: disable=import-outside-toplevel
        rest = rest_api.start(manager, args.host, args.rest_api_port)
        logging.info('REST API on %s:%d', args.host, args.rest_api_port)
    server.start()
    logging.info('gRPC PredictionService/ModelService for model %s on %s:%d', args.model_name, args.host, port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    logging.info('Stopping: draining requests for up to %.1f s', args.grace_seconds)
    if rest is not None:
        rest.shutdown()
    server.stop(args.grace_seconds).wait()
    manager.stop()
    logging.info('Stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
