"""TF Serving's gRPC messages and stubs, defined here so the client needs no TensorFlow.

`tensorflow_serving.apis` imports all of TensorFlow (about 700 MB per process). The few messages
the Predict, GetModelMetadata and GetModelStatus calls use are declared below with the package
names, field names and field numbers of TF Serving's .proto files, so their wire format is the
same (tests/serving/test_protos.py checks the bytes against the official classes). They live in
a private DescriptorPool: loading TensorFlow in the same process cannot clash with them. Fields
this project never reads (resource handles, sparse tensor infos, request options, ...) are left
out; on parsing they are kept as unknown fields.

The model server and the client both use these classes, through `unary_stub` and
`generic_handler` (no generated `*_pb2_grpc` code).
"""
import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

from common.signatures import MAX_MESSAGE_BYTES

PREDICTION_SERVICE = 'tensorflow.serving.PredictionService'
MODEL_SERVICE = 'tensorflow.serving.ModelService'
# Channel and server options of both sides for messages of megabytes (an image in, scores and
# boxes out): the size limit both ways, and socket reads of up to 1 MiB at once (gRPC starts at
# 8 KiB; bench.serving's round trip of 1 MB + 873 KB over loopback measured ~0.2 ms less).
MESSAGE_OPTIONS = [('grpc.max_send_message_length', MAX_MESSAGE_BYTES),
                   ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
                   ('grpc.experimental.tcp_read_chunk_size', 2**20),
                   ('grpc.experimental.tcp_min_read_chunk_size', 2**16)]
# Keepalive of the client's channels: a ping every 2 s, also on idle connections, and a connection
# whose ping is not answered within 2 s is closed (its calls fail with UNAVAILABLE and are sent
# to another replica), so a hung replica (SIGSTOP, a stuck node) leaves the rotation. gRPC 1.76
# times keepalive pings out with `grpc.http2.ping_timeout_ms`, not `grpc.keepalive_timeout_ms`.
KEEPALIVE_MS = 2000
CLIENT_KEEPALIVE_OPTIONS = [('grpc.keepalive_time_ms', KEEPALIVE_MS),
                            ('grpc.keepalive_timeout_ms', KEEPALIVE_MS),
                            ('grpc.http2.ping_timeout_ms', KEEPALIVE_MS),
                            ('grpc.keepalive_permit_without_calls', 1),
                            ('grpc.http2.max_pings_without_data', 0)]
# The server side that accepts them: gRPC servers answer pings more frequent than every 5 minutes
# with GOAWAY "too_many_pings" by default. TF Serving takes the same two settings as
# --grpc_channel_arguments (serving/k8s/tfserving.yaml, serving/docker-compose.yml).
SERVER_KEEPALIVE_OPTIONS = [
    ('grpc.http2.min_recv_ping_interval_without_data_ms', KEEPALIVE_MS // 2),
    ('grpc.keepalive_permit_without_calls', 1)]

_Field = descriptor_pb2.FieldDescriptorProto
_SCALARS = {'double': _Field.TYPE_DOUBLE, 'float': _Field.TYPE_FLOAT, 'int64': _Field.TYPE_INT64,
            'uint64': _Field.TYPE_UINT64, 'int32': _Field.TYPE_INT32, 'bool': _Field.TYPE_BOOL,
            'string': _Field.TYPE_STRING, 'bytes': _Field.TYPE_BYTES, 'uint32': _Field.TYPE_UINT32}
_DATA_TYPES = ['DT_INVALID', 'DT_FLOAT', 'DT_DOUBLE', 'DT_INT32', 'DT_UINT8', 'DT_INT16', 'DT_INT8',
               'DT_STRING', 'DT_COMPLEX64', 'DT_INT64', 'DT_BOOL', 'DT_QINT8', 'DT_QUINT8',
               'DT_QINT32', 'DT_BFLOAT16', 'DT_QINT16', 'DT_QUINT16', 'DT_UINT16', 'DT_COMPLEX128',
               'DT_HALF', 'DT_RESOURCE', 'DT_VARIANT', 'DT_UINT32', 'DT_UINT64']
# tensorflow.error.Code 0..15 (16 is UNAUTHENTICATED), the gRPC status codes.
_ERROR_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
                'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION',
                'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS']

# Per package: messages (path in the package -> fields) and enums (path -> (number, name)).
# A field is (name, number, type, mode): type a scalar name or the full name of a message or
# enum; mode None, 'repeated', 'map' (string keys, type = value type) or the name of a oneof.
_PACKAGES = [
    ('tensorflow.error', {}, {'Code': list(enumerate(_ERROR_CODES)) + [(16, 'UNAUTHENTICATED')]}),
    ('tensorflow', {
        'TensorShapeProto': [('dim', 2, 'tensorflow.TensorShapeProto.Dim', 'repeated'),
                             ('unknown_rank', 3, 'bool', None)],
        'TensorShapeProto.Dim': [('size', 1, 'int64', None), ('name', 2, 'string', None)],
        'TensorProto': [
            ('dtype', 1, 'tensorflow.DataType', None),
            ('tensor_shape', 2, 'tensorflow.TensorShapeProto', None),
            ('version_number', 3, 'int32', None), ('tensor_content', 4, 'bytes', None),
            ('half_val', 13, 'int32', 'repeated'), ('float_val', 5, 'float', 'repeated'),
            ('double_val', 6, 'double', 'repeated'), ('int_val', 7, 'int32', 'repeated'),
            ('string_val', 8, 'bytes', 'repeated'), ('scomplex_val', 9, 'float', 'repeated'),
            ('int64_val', 10, 'int64', 'repeated'), ('bool_val', 11, 'bool', 'repeated'),
            ('dcomplex_val', 12, 'double', 'repeated'), ('uint32_val', 16, 'uint32', 'repeated'),
            ('uint64_val', 17, 'uint64', 'repeated')],
        'TensorInfo': [('name', 1, 'string', 'encoding'),
                       ('dtype', 2, 'tensorflow.DataType', None),
                       ('tensor_shape', 3, 'tensorflow.TensorShapeProto', None)],
        'SignatureDef': [('inputs', 1, 'tensorflow.TensorInfo', 'map'),
                         ('outputs', 2, 'tensorflow.TensorInfo', 'map'),
                         ('method_name', 3, 'string', None),
                         ('defaults', 4, 'tensorflow.TensorProto', 'map')],
    }, {'DataType': list(enumerate(_DATA_TYPES))}),
    ('tensorflow.serving', {
        'ModelSpec': [('name', 1, 'string', None),
                      ('version', 2, 'google.protobuf.Int64Value', 'version_choice'),
                      ('version_label', 4, 'string', 'version_choice'),
                      ('signature_name', 3, 'string', None)],
        'PredictRequest': [('model_spec', 1, 'tensorflow.serving.ModelSpec', None),
                           ('inputs', 2, 'tensorflow.TensorProto', 'map'),
                           ('output_filter', 3, 'string', 'repeated')],
        'PredictResponse': [('model_spec', 2, 'tensorflow.serving.ModelSpec', None),
                            ('outputs', 1, 'tensorflow.TensorProto', 'map')],
        'SignatureDefMap': [('signature_def', 1, 'tensorflow.SignatureDef', 'map')],
        'GetModelMetadataRequest': [('model_spec', 1, 'tensorflow.serving.ModelSpec', None),
                                    ('metadata_field', 2, 'string', 'repeated')],
        'GetModelMetadataResponse': [('model_spec', 1, 'tensorflow.serving.ModelSpec', None),
                                     ('metadata', 2, 'google.protobuf.Any', 'map')],
        'StatusProto': [('error_code', 1, 'tensorflow.error.Code', None),
                        ('error_message', 2, 'string', None)],
        'GetModelStatusRequest': [('model_spec', 1, 'tensorflow.serving.ModelSpec', None)],
        'ModelVersionStatus': [('version', 1, 'int64', None),
                               ('state', 2, 'tensorflow.serving.ModelVersionStatus.State', None),
                               ('status', 3, 'tensorflow.serving.StatusProto', None)],
        'GetModelStatusResponse': [('model_version_status', 1,
                                    'tensorflow.serving.ModelVersionStatus', 'repeated')],
        # session_bundle_config.proto: the --batching_parameters_file (serving/batching.py).
        'BatchingParameters': [
            ('max_batch_size', 1, 'google.protobuf.Int64Value', None),
            ('batch_timeout_micros', 2, 'google.protobuf.Int64Value', None),
            ('max_enqueued_batches', 3, 'google.protobuf.Int64Value', None),
            ('num_batch_threads', 4, 'google.protobuf.Int64Value', None),
            ('thread_pool_name', 5, 'google.protobuf.StringValue', None),
            ('allowed_batch_sizes', 6, 'int64', 'repeated'),
            ('pad_variable_length_inputs', 7, 'bool', None)],
    }, {'ModelVersionStatus.State': [(0, 'UNKNOWN'), (10, 'START'), (20, 'LOADING'),
                                     (30, 'AVAILABLE'), (40, 'UNLOADING'), (50, 'END')]}),
]
_ENUM_NAMES = {'%s.%s' % (package, path) for package, _, enums in _PACKAGES for path in enums}
# JSON names that TF Serving's .proto files set explicitly (the others are camelCase).
_JSON_NAMES = {'model_version_status', 'error_code', 'error_message'}


def _add_field(message, scope, spec, oneofs):
    """Adds a field (and a map's entry type) to a DescriptorProto whose full name is scope."""
    name, number, kind, mode = spec
    field = message.field.add(name=name, number=number, label=_Field.LABEL_OPTIONAL)
    if name in _JSON_NAMES:
        field.json_name = name
    if mode == 'map':
        entry = message.nested_type.add(name=name.title().replace('_', '') + 'Entry')
        entry.options.map_entry = True
        entry_scope = '%s.%s' % (scope, entry.name)
        _add_field(entry, entry_scope, ('key', 1, 'string', None), [])
        _add_field(entry, entry_scope, ('value', 2, kind, None), [])
        kind, mode = entry_scope, 'repeated'
    if mode == 'repeated':
        field.label = _Field.LABEL_REPEATED
    elif mode is not None:
        if mode not in oneofs:
            oneofs.append(mode)
            message.oneof_decl.add(name=mode)
        field.oneof_index = oneofs.index(mode)
    if kind in _SCALARS:
        field.type = _SCALARS[kind]
    else:
        field.type = _Field.TYPE_ENUM if kind in _ENUM_NAMES else _Field.TYPE_MESSAGE
        field.type_name = '.' + kind


def _file(package, messages, enums, dependencies):
    """The FileDescriptorProto of one package (proto3, as TensorFlow's files)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name='ssd_pipeline/%s.proto' % package.replace('.', '_'), package=package,
        syntax='proto3', dependency=dependencies)
    messages_by_path = {}
    for path in messages:  # parents come before their nested messages
        parent, _, name = path.rpartition('.')
        container = messages_by_path[parent].nested_type if parent else proto.message_type
        messages_by_path[path] = container.add(name=name)
    for path, values in enums.items():
        parent, _, name = path.rpartition('.')
        enum = (messages_by_path[parent].enum_type if parent else proto.enum_type).add(name=name)
        for number, value_name in values:
            enum.value.add(name=value_name, number=number)
    for path, fields in messages.items():
        oneofs = []
        for spec in fields:
            _add_field(messages_by_path[path], '%s.%s' % (package, path), spec, oneofs)
    return proto


def _build_pool():
    pool = descriptor_pool.DescriptorPool()
    dependencies = []
    for well_known in (wrappers_pb2, any_pb2):
        pool.AddSerializedFile(well_known.DESCRIPTOR.serialized_pb)
        dependencies.append(well_known.DESCRIPTOR.name)
    for package, messages, enums in _PACKAGES:
        proto = _file(package, messages, enums, list(dependencies))
        pool.Add(proto)
        dependencies.append(proto.name)
    return pool


_POOL = _build_pool()


def _message(full_name):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


DataType = _POOL.FindEnumTypeByName('tensorflow.DataType')
TensorShapeProto = _message('tensorflow.TensorShapeProto')
TensorProto = _message('tensorflow.TensorProto')
TensorInfo = _message('tensorflow.TensorInfo')
SignatureDef = _message('tensorflow.SignatureDef')
ModelSpec = _message('tensorflow.serving.ModelSpec')
PredictRequest = _message('tensorflow.serving.PredictRequest')
PredictResponse = _message('tensorflow.serving.PredictResponse')
SignatureDefMap = _message('tensorflow.serving.SignatureDefMap')
GetModelMetadataRequest = _message('tensorflow.serving.GetModelMetadataRequest')
GetModelMetadataResponse = _message('tensorflow.serving.GetModelMetadataResponse')
GetModelStatusRequest = _message('tensorflow.serving.GetModelStatusRequest')
GetModelStatusResponse = _message('tensorflow.serving.GetModelStatusResponse')
ModelVersionStatus = _message('tensorflow.serving.ModelVersionStatus')
BatchingParameters = _message('tensorflow.serving.BatchingParameters')

# (service, method) -> (request class, response class).
METHODS = {
    (PREDICTION_SERVICE, 'Predict'): (PredictRequest, PredictResponse),
    (PREDICTION_SERVICE, 'GetModelMetadata'): (GetModelMetadataRequest, GetModelMetadataResponse),
    (MODEL_SERVICE, 'GetModelStatus'): (GetModelStatusRequest, GetModelStatusResponse),
}


def unary_stub(channel, service, method):
    """A callable `stub(request, timeout=..., ...)` for one method of METHODS on a channel."""
    request_class, response_class = METHODS[service, method]
    return channel.unary_unary('/%s/%s' % (service, method),
                               request_serializer=request_class.SerializeToString,
                               response_deserializer=response_class.FromString)


def generic_handler(service, implementations):
    """A grpc.GenericRpcHandler serving `implementations` (method -> fn(request, context)).

    Methods of the service that are not given answer UNIMPLEMENTED, as in TF Serving.
    """
    handlers = {}
    for method, function in implementations.items():
        request_class, response_class = METHODS[service, method]
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            function, request_deserializer=request_class.FromString,
            response_serializer=response_class.SerializeToString)
    return grpc.method_handlers_generic_handler(service, handlers)
