"""numpy <-> TensorProto conversion without TensorFlow ops (used by client and server)."""
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

NUMPY_TO_DTYPE = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
}
DTYPE_TO_NUMPY = {v: k for k, v in NUMPY_TO_DTYPE.items()}
# Fields TF Serving clients may use instead of tensor_content.
_VAL_FIELDS = {
    types_pb2.DT_FLOAT: 'float_val',
    types_pb2.DT_DOUBLE: 'double_val',
    types_pb2.DT_INT32: 'int_val',
    types_pb2.DT_UINT8: 'int_val',
    types_pb2.DT_INT64: 'int64_val',
    types_pb2.DT_BOOL: 'bool_val',
}


def dtype_name(dtype):
    """Returns 'DT_FLOAT' style name of a types_pb2 enum value."""
    return types_pb2.DataType.Name(dtype)


def shape_of(proto):
    """Returns the shape of a TensorProto or TensorShapeProto as a list (-1 = unknown)."""
    shape = proto.tensor_shape if isinstance(proto, tensor_pb2.TensorProto) else proto
    if shape.unknown_rank:
        return None
    return [d.size for d in shape.dim]


def make_tensor_proto(values):
    """Builds a TensorProto from a numpy array, or from a list / array of bytes (DT_STRING).

    Args:
      values: numpy array of a dtype in NUMPY_TO_DTYPE, or bytes objects (list or object array).
    Returns:
      tensor_pb2.TensorProto.
    Raises:
      ValueError: unsupported dtype.
    """
    if isinstance(values, (list, tuple)) or (isinstance(values, np.ndarray) and values.dtype.kind in 'OS'):
        array = np.asarray(values, dtype=object)
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        flat = array.reshape(-1)
        if not all(isinstance(v, bytes) for v in flat):
            raise ValueError('string tensors need bytes values')
        proto.string_val.extend(flat)
    else:
        array = np.asarray(values)
        if array.dtype not in NUMPY_TO_DTYPE:
            raise ValueError('unsupported dtype %s' % array.dtype)
        proto = tensor_pb2.TensorProto(dtype=NUMPY_TO_DTYPE[array.dtype])
        proto.tensor_content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('<')).tobytes()
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape]))
    return proto


def make_ndarray(proto):
    """Converts a TensorProto to a numpy array (object array of bytes for DT_STRING).

    Raises:
      ValueError: unsupported dtype or a value count that does not match the shape.
    """
    shape = shape_of(proto) or []
    count = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == types_pb2.DT_STRING:
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
        return _fill(values, count, shape)
    if proto.dtype not in DTYPE_TO_NUMPY:
        raise ValueError('unsupported dtype %s' % dtype_name(proto.dtype))
    dtype = DTYPE_TO_NUMPY[proto.dtype]
    if proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder('<'))
        if values.size != count:
            raise ValueError('tensor_content has %d values, shape %s needs %d' % (values.size, shape, count))
        return values.reshape(shape)
    values = np.asarray(getattr(proto, _VAL_FIELDS[proto.dtype]), dtype=dtype)
    return _fill(values, count, shape)


def _fill(values, count, shape):
    """Reshapes repeated-field values; a single value is broadcast like TensorFlow does."""
    if values.size == count:
        return values.reshape(shape)
    if values.size == 1:
        return np.full(shape, values[0], dtype=values.dtype)
    if values.size == 0 and count == 0:
        return values.reshape(shape)
    raise ValueError('tensor has %d values, shape %s needs %d' % (values.size, shape, count))
