"""Property test of the model server's request decoding: whatever dtype, shape (huge, negative),
contents or lengths a Predict request carries, the answer is OK, INVALID_ARGUMENT or
RESOURCE_EXHAUSTED (never UNKNOWN or INTERNAL), no decoded tensor exceeds the limits, and the
server still answers a normal request afterwards."""
import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from client import protos, tensor_proto
from serving import model_server
from serving.model_manager import ModelManager, RequestLimits
from tests import helpers

LIMITS = RequestLimits(max_batch_size=8, max_elements=20_000, max_bytes=60_000)
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
# Toy signatures: input alias, dtype and shape ('slow' is left out: its input is a loop count).
FLOAT, STRING = tensor_proto.NUMPY_TO_DTYPE[np.dtype(np.float32)], tensor_proto.DT_STRING
INPUTS = {'serving_default': ('images', FLOAT, [None, 4, 4, 3]),
          'detect': ('encoded_images', STRING, [None]), 'echo': ('x', FLOAT, [None, None])}

LIMIT_FLAGS = ('--max_batch_size', '--max_request_elements', '--max_request_bytes')
_sizes = st.one_of(st.integers(0, 9), st.integers(-2 ** 63, 2 ** 63 - 1),
                   st.sampled_from([-1, 3_000, 20_000, 10 ** 6, 2 ** 31, 2 ** 62]))
_any_dtype = st.one_of(st.sampled_from(sorted(tensor_proto.DTYPE_TO_NUMPY) + [STRING]),
                       st.integers(-5, 200))


def _long_bytes(draw, min_size, max_size):
    """Random bytes of up to max_size (long ones from a drawn seed: Hypothesis' own data is
    limited to a few kB per example)."""
    size = draw(st.integers(min_size, max_size))
    return np.random.RandomState(draw(st.integers(0, 2 ** 32 - 1))).bytes(size)


@st.composite
def _values(draw, proto, count):
    """Values that fit the shape (or a single one, broadcast) mostly, else anything."""
    if draw(st.integers(0, 3)) and count >= 0:
        if proto.dtype != STRING:
            if count > 1000 or draw(st.booleans()):
                proto.float_val.append(draw(st.floats(width=32)))
            else:
                proto.tensor_content = _long_bytes(draw, 4 * count, 4 * count)
        elif count <= 8 and draw(st.booleans()):
            proto.string_val.extend([_long_bytes(draw, 0, 100) for _ in range(count)])
        else:
            proto.string_val.append(_long_bytes(draw, 0, 20_000))
        return
    content = draw(st.sampled_from(['tensor_content', 'float_val', 'int_val', 'int64_val',
                                    'bool_val', 'double_val', 'string_val', 'none']))
    if content == 'tensor_content':
        proto.tensor_content = _long_bytes(draw, 0, 1024)
    elif content == 'string_val':
        proto.string_val.extend([_long_bytes(draw, 0, 20_000)
                                 for _ in range(draw(st.integers(0, 6)))])
    elif content != 'none':
        values = draw(st.lists(st.integers(-2 ** 31, 2 ** 31 - 1), max_size=6))
        getattr(proto, content).extend([bool(v) for v in values] if content == 'bool_val'
                                       else values)


@st.composite
def _tensors(draw, dtype, shape):
    """A TensorProto, often of the signature's dtype and shape (else anything)."""
    proto = protos.TensorProto(dtype=dtype if draw(st.integers(0, 4)) else draw(_any_dtype))
    proto.tensor_shape.unknown_rank = draw(st.integers(0, 19)) == 0
    if draw(st.integers(0, 3)):
        sizes = [draw(st.one_of(st.integers(1, 9), st.integers(1, 30_000), _sizes))
                 if size is None else size
                 for size in shape]
    else:
        sizes = draw(st.lists(_sizes, max_size=5))
    for size in sizes:
        proto.tensor_shape.dim.add(size=size)
    count = 1
    for size in sizes:
        count *= size
    draw(_values(proto, count))
    return proto


@st.composite
def _requests(draw):
    signature = draw(st.sampled_from(sorted(INPUTS) * 3 + ['', 'nope']))
    alias, dtype, shape = INPUTS.get(signature or 'serving_default', INPUTS['serving_default'])
    request = protos.PredictRequest()
    request.model_spec.name = 'ssd'
    request.model_spec.signature_name = signature
    alias = alias if draw(st.integers(0, 9)) else draw(st.sampled_from(['x', 'other']))
    request.inputs[alias].CopyFrom(draw(_tensors(dtype, shape)))
    if draw(st.integers(0, 7)) == 0:
        request.output_filter.extend(draw(st.lists(st.sampled_from(
            ['y', 'scores', 'class_names', 'num_detections', 'bogus']), max_size=2)))
    return request


@pytest.fixture(scope='module')
def fuzz_server(tmp_path_factory):
    base = str(tmp_path_factory.mktemp('fuzz') / 'ssd')
    helpers.export_toy_model(base)
    manager = ModelManager('ssd', base, limits=LIMITS)
    manager.start()
    server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=2)
    server.start()
    channel = grpc.insecure_channel('127.0.0.1:%d' % port)
    yield protos.unary_stub(channel, protos.PREDICTION_SERVICE, 'Predict')
    channel.close()
    server.stop(0).wait()
    manager.stop()


@pytest.fixture
def decoded_sizes(monkeypatch):
    """Records the size of every array the server decodes."""
    sizes = []
    real = tensor_proto.make_ndarray

    def recording(proto):
        array = real(proto)
        sizes.append((array.size, sum(map(len, array.flat)) if array.dtype == object
                      else array.nbytes))
        return array

    monkeypatch.setattr(tensor_proto, 'make_ndarray', recording)
    return sizes


def _normal_request():
    request = protos.PredictRequest()
    request.model_spec.name = 'ssd'
    tensor_proto.make_tensor_proto(np.zeros([1, 4, 4, 3], np.float32), request.inputs['images'])
    return request


# Bounded: about 10 s on a loaded 2-core machine; derandomized so a failure reproduces.
@settings(max_examples=500, deadline=5000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=_requests())
def test_any_request_gets_a_proper_status_within_the_limits(fuzz_server, decoded_sizes, request):
    try:
        fuzz_server(request, timeout=30)
        event('OK')
    except grpc.RpcError as e:
        assert e.code() in ALLOWED, '%s: %s' % (e.code(), e.details())
        event(e.code().name + ''.join(' ' + f for f in LIMIT_FLAGS if f in e.details()))
    assert all(n <= LIMITS.max_elements and b <= LIMITS.max_bytes for n, b in decoded_sizes)
    response = fuzz_server(_normal_request(), timeout=30)  # still serving
    assert tensor_proto.shape_of(response.outputs['scores']) == [1, 2, 3]
