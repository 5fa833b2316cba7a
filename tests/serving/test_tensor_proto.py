"""numpy <-> TensorProto conversion agrees with TensorFlow's own."""
import numpy as np
import pytest
import tensorflow as tf

from serving import tensor_proto


@pytest.mark.parametrize('array', [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    np.array([[1, -2], [3, 4]], np.int64),
    np.array([1, 2, 255], np.uint8),
    np.zeros([0, 3], np.int32),
])
def test_round_trip_and_tf_compatible(array):
    proto = tensor_proto.make_tensor_proto(array)
    np.testing.assert_array_equal(tensor_proto.make_ndarray(proto), array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    np.testing.assert_array_equal(tensor_proto.make_ndarray(tf.make_tensor_proto(array)), array)


def test_strings():
    proto = tensor_proto.make_tensor_proto([b'ab', b'\xff\x00'])
    assert proto.dtype == tf.string.as_datatype_enum
    assert list(tensor_proto.make_ndarray(proto)) == [b'ab', b'\xff\x00']
    assert list(tf.make_ndarray(proto)) == [b'ab', b'\xff\x00']


def test_repeated_fields_as_clients_send_them():
    proto = tf.make_tensor_proto([1.5, 2.5, 3.5], dtype=tf.float32, shape=[3])
    proto.ClearField('tensor_content')
    proto.float_val.extend([1.5, 2.5, 3.5])
    np.testing.assert_array_equal(tensor_proto.make_ndarray(proto), [1.5, 2.5, 3.5])
    scalar_fill = tf.make_tensor_proto(7, dtype=tf.int32, shape=[2, 2])
    np.testing.assert_array_equal(tensor_proto.make_ndarray(scalar_fill), np.full([2, 2], 7))


def test_count_mismatch_is_an_error():
    proto = tensor_proto.make_tensor_proto(np.zeros([4], np.float32))
    proto.tensor_shape.dim[0].size = 5
    with pytest.raises(ValueError, match='needs 5'):
        tensor_proto.make_ndarray(proto)
