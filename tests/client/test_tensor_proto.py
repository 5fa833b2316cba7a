"""numpy <-> TensorProto conversion agrees with TensorFlow's own, and sizes come before memory."""
import numpy as np
import pytest
import tensorflow as tf

from client import protos, tensor_proto


def _to_tf(proto):
    return tf.make_ndarray(tf.make_tensor_proto(0).FromString(proto.SerializeToString()))


def _from_tf(tf_proto):
    return protos.TensorProto.FromString(tf_proto.SerializeToString())


@pytest.mark.parametrize('array', [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    np.array([[1, -2], [3, 4]], np.int64),
    np.array([1, 2, 255], np.uint8),
    np.array([True, False]),
    np.zeros([0, 3], np.int32),
    np.float64(2.5),
])
def test_round_trip_and_tf_compatible(array):
    proto = tensor_proto.make_tensor_proto(array)
    np.testing.assert_array_equal(tensor_proto.make_ndarray(proto), array)
    np.testing.assert_array_equal(_to_tf(proto), array)
    np.testing.assert_array_equal(tensor_proto.make_ndarray(_from_tf(tf.make_tensor_proto(array))),
                                  array)


def test_strings():
    proto = tensor_proto.make_tensor_proto([b'ab', b'\xff\x00'])
    assert proto.dtype == tf.string.as_datatype_enum
    assert list(tensor_proto.make_ndarray(proto)) == [b'ab', b'\xff\x00']
    assert list(_to_tf(proto)) == [b'ab', b'\xff\x00']


def test_fills_an_existing_proto():
    request = protos.PredictRequest()
    tensor_proto.make_tensor_proto(np.ones([2], np.float32), request.inputs['x'])
    assert tensor_proto.shape_of(request.inputs['x']) == [2]


def test_repeated_fields_as_clients_send_them():
    proto = tf.make_tensor_proto([1.5, 2.5, 3.5], dtype=tf.float32, shape=[3])
    proto.ClearField('tensor_content')
    proto.float_val.extend([1.5, 2.5, 3.5])
    np.testing.assert_array_equal(tensor_proto.make_ndarray(_from_tf(proto)), [1.5, 2.5, 3.5])
    scalar_fill = _from_tf(tf.make_tensor_proto(7, dtype=tf.int32, shape=[2, 2]))
    assert tensor_proto.decoded_size(scalar_fill) == (4, 16)
    np.testing.assert_array_equal(tensor_proto.make_ndarray(scalar_fill), np.full([2, 2], 7))


def test_decoded_size_is_known_before_allocating():
    huge = protos.TensorProto(dtype=tf.float32.as_datatype_enum, float_val=[1.0])
    huge.tensor_shape.dim.add(size=10 ** 7)
    huge.tensor_shape.dim.add(size=10 ** 7)  # 4 * 10^14 bytes; int64 products would overflow
    assert tensor_proto.decoded_size(huge) == (10 ** 14, 4 * 10 ** 14)
    strings = protos.TensorProto(dtype=tensor_proto.DT_STRING, string_val=[b'abc'])
    strings.tensor_shape.dim.add(size=1000)
    assert tensor_proto.decoded_size(strings) == (1000, 3000)


@pytest.mark.parametrize('change,words', [
    (lambda p: setattr(p.tensor_shape.dim[0], 'size', 5), 'needs 20'),
    (lambda p: setattr(p.tensor_shape.dim[0], 'size', -1), 'negative'),
    (lambda p: setattr(p.tensor_shape, 'unknown_rank', True), 'unknown rank'),
    (lambda p: setattr(p, 'dtype', 77), 'DT_<77>'),
    (lambda p: setattr(p, 'dtype', tf.float16.as_datatype_enum), 'DT_HALF'),
])
def test_malformed_tensors_are_errors(change, words):
    proto = tensor_proto.make_tensor_proto(np.zeros([4], np.float32))
    change(proto)
    with pytest.raises(ValueError, match=words.replace('<', '.').replace('>', '.')):
        tensor_proto.make_ndarray(proto)
