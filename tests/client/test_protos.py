"""client.protos is TF Serving's wire format: same fields, same bytes, official answers parse;
and the client works in a process where TensorFlow cannot be imported."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pool
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from client import protos, tensor_proto
from tests import helpers

PAIRS = [
    (protos.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
    (protos.TensorProto, tensor_pb2.TensorProto),
    (protos.TensorInfo, meta_graph_pb2.TensorInfo),
    (protos.SignatureDef, meta_graph_pb2.SignatureDef),
    (protos.ModelSpec, model_pb2.ModelSpec),
    (protos.PredictRequest, predict_pb2.PredictRequest),
    (protos.PredictResponse, predict_pb2.PredictResponse),
    (protos.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap),
    (protos.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest),
    (protos.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse),
    (protos.GetModelStatusRequest, get_model_status_pb2.GetModelStatusRequest),
    (protos.GetModelStatusResponse, get_model_status_pb2.GetModelStatusResponse),
    (protos.ModelVersionStatus, get_model_status_pb2.ModelVersionStatus),
]
# Official fields left out on purpose (kept as unknown fields when parsed).
OMITTED = {'tensorflow.TensorProto': {'resource_handle_val', 'variant_val', 'float8_val'},
           'tensorflow.TensorInfo': {'coo_sparse', 'composite_tensor'},
           'tensorflow.serving.PredictRequest': {'predict_streamed_options', 'client_id',
                                                 'request_options'}}


def _field_facts(field):
    """What decides a field's wire format and meaning (and its JSON name)."""
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        kind = ('map', _field_facts(message.fields_by_name['value']))
    else:
        kind = (message or field.enum_type).full_name if (message or field.enum_type) else None
    oneof = field.containing_oneof
    return (field.number, field.type, field.label, kind, field.json_name,
            oneof.name if oneof is not None and not oneof.name.startswith('_') else None)


@pytest.mark.parametrize('ours,official', PAIRS, ids=[p[1].DESCRIPTOR.full_name for p in PAIRS])
def test_messages_have_the_official_fields(ours, official):
    assert ours.DESCRIPTOR.full_name == official.DESCRIPTOR.full_name
    theirs = {f.name: _field_facts(f) for f in official.DESCRIPTOR.fields}
    mine = {f.name: _field_facts(f) for f in ours.DESCRIPTOR.fields}
    assert set(theirs) - set(mine) == OMITTED.get(official.DESCRIPTOR.full_name, set())
    assert mine == {name: theirs[name] for name in mine}


def test_enums_match():
    official_types = tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name['dtype'].enum_type
    for value in protos.DataType.values:
        assert official_types.values_by_number[value.number].name == value.name
    states = get_model_status_pb2.ModelVersionStatus.State
    assert {v.name: v.number for v in protos.ModelVersionStatus.DESCRIPTOR.enum_types[0].values} \
        == dict(states.items())


def _fill_predict_request(request, tensors):
    request.model_spec.name = 'ssd'
    request.model_spec.version.value = 7
    request.model_spec.signature_name = 'detect'
    for alias, proto in tensors.items():
        request.inputs[alias].ParseFromString(proto.SerializeToString())
    request.output_filter.extend(['detection_boxes', 'num_detections'])
    return request


def test_requests_are_byte_identical_to_official_ones():
    tensors = {'images': tensor_proto.make_tensor_proto(np.random.rand(1, 4, 4, 3).astype('f4')),
               'encoded_images': tensor_proto.make_tensor_proto([b'\xff\xd8jpeg', b'']),
               'x': protos.TensorProto(dtype=1, float_val=[1.0, -2.5])}
    assert tensors['images'].SerializeToString() == tf.make_tensor_proto(
        tensor_proto.make_ndarray(tensors['images'])).SerializeToString()
    ours = _fill_predict_request(protos.PredictRequest(), tensors)
    official = _fill_predict_request(predict_pb2.PredictRequest(), tensors)
    assert ours.SerializeToString(deterministic=True) == \
        official.SerializeToString(deterministic=True)

    for ours, official in [
            (protos.GetModelMetadataRequest(metadata_field=['signature_def']),
             get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])),
            (protos.GetModelStatusRequest(), get_model_status_pb2.GetModelStatusRequest())]:
        for message in (ours, official):
            message.model_spec.name = 'ssd'
            message.model_spec.version_label = 'stable'
        assert ours.SerializeToString() == official.SerializeToString()


def test_official_responses_parse():
    response = predict_pb2.PredictResponse()
    response.model_spec.name = 'ssd'
    response.model_spec.version.value = 3
    response.outputs['scores'].CopyFrom(tf.make_tensor_proto(np.eye(3, dtype=np.float32)))
    response.outputs['class_names'].CopyFrom(tf.make_tensor_proto([[b'background', b'cat']]))
    parsed = protos.PredictResponse.FromString(response.SerializeToString())
    assert parsed.model_spec.version.value == 3
    np.testing.assert_array_equal(tensor_proto.make_ndarray(parsed.outputs['scores']), np.eye(3))
    assert tensor_proto.make_ndarray(parsed.outputs['class_names']).tolist() == \
        [[b'background', b'cat']]

    signature = meta_graph_pb2.SignatureDef(method_name='tensorflow/serving/predict')
    signature.inputs['images'].name = 'images:0'
    signature.inputs['images'].dtype = tf.float32.as_datatype_enum
    signature.inputs['images'].tensor_shape.CopyFrom(tf.TensorShape([None, 300, 300, 3]).as_proto())
    signatures = get_model_metadata_pb2.SignatureDefMap()
    signatures.signature_def['serving_default'].CopyFrom(signature)
    metadata = get_model_metadata_pb2.GetModelMetadataResponse()
    metadata.metadata['signature_def'].Pack(signatures)
    parsed = protos.GetModelMetadataResponse.FromString(metadata.SerializeToString())
    unpacked = protos.SignatureDefMap()
    assert parsed.metadata['signature_def'].Unpack(unpacked)
    info = unpacked.signature_def['serving_default'].inputs['images']
    assert (info.name, tensor_proto.dtype_name(info.dtype)) == ('images:0', 'DT_FLOAT')
    assert tensor_proto.shape_of(info.tensor_shape) == [-1, 300, 300, 3]

    status = get_model_status_pb2.GetModelStatusResponse()
    entry = status.model_version_status.add(version=2, state=30)
    entry.status.error_message = 'fine'
    parsed = protos.GetModelStatusResponse.FromString(status.SerializeToString())
    assert [(s.version, protos.ModelVersionStatus.State.Name(s.state), s.status.error_message)
            for s in parsed.model_version_status] == [(2, 'AVAILABLE', 'fine')]


def test_protos_do_not_clash_with_tensorflows_in_one_process():
    assert protos.TensorProto.DESCRIPTOR.file.pool is not descriptor_pool.Default()
    assert tensor_pb2.TensorProto.DESCRIPTOR.file.pool is descriptor_pool.Default()
    assert protos.TensorProto is not tensor_pb2.TensorProto


# Runs in a fresh interpreter: importing tensorflow or tensorflow_serving raises there.
_WITHOUT_TENSORFLOW = helpers.BLOCK_TENSORFLOW + r'''
import json, sys
try:
    import tensorflow  # noqa: F401
    raise SystemExit('the blocker does not work')
except ImportError:
    pass
import numpy as np
from client import ssd_client as client
with client.SSDClient(sys.argv[1], score_threshold=0.0) as ssd:
    picture = np.random.RandomState(0).randint(0, 256, [20, 40, 3], dtype=np.uint8)
    result = ssd.detect(picture)
    status = ssd.status()
with client.SSDClient(sys.argv[1], signature='detect', score_threshold=0.0) as detect:
    in_graph = detect.detect(picture)
print(json.dumps({'version': result.model['version'], 'n': len(result.detections),
                  'in_graph': in_graph.model, 'status': status,
                  'tf': [m for m in sys.modules if m.startswith('tensorflow')]}))
'''


def test_client_detects_where_tensorflow_cannot_be_imported(toy_server):
    done = subprocess.run([sys.executable, '-c', _WITHOUT_TENSORFLOW, toy_server[0]],
                          cwd=helpers.REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=helpers.REPO))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer['version'] == 1 and answer['n'] > 0 and answer['tf'] == []
    assert answer['in_graph']['signature'] == 'detect'
    assert answer['status']['versions'] == [{'version': 1, 'state': 'AVAILABLE'}]
