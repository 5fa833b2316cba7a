"""numpy <-> TensorProto (client.protos) conversion without TensorFlow, for client and server.

The same layout as `tf.make_tensor_proto` / `tf.make_ndarray`: numbers in little-endian
`tensor_content`, strings in `string_val`. Requests of other clients may carry numbers in the
typed repeated fields (`float_val`, ...) instead, and a single value stands for a whole tensor
(TensorFlow fills the shape with it); `decoded_size` tells what a tensor expands to before
anything is allocated, so a server can refuse a 60-byte request that would expand to gigabytes.

Reading a bytes field of a message copies it (protobuf's upb runtime makes a new bytes object at
each read), so `tensor_content`, the megabyte of an image or of the scores, is read once per
conversion and the array is a view of that one copy.
"""
import math

import numpy as np

from client import protos

DT_STRING = protos.DataType.values_by_name['DT_STRING'].number
NUMPY_TO_DTYPE = {np.dtype(numpy_type): protos.DataType.values_by_name[name].number
                  for numpy_type, name in [(np.float32, 'DT_FLOAT'), (np.float64, 'DT_DOUBLE'),
                                           (np.int32, 'DT_INT32'), (np.int64, 'DT_INT64'),
                                           (np.uint8, 'DT_UINT8'), (np.bool_, 'DT_BOOL')]}
DTYPE_TO_NUMPY = {v: k for k, v in NUMPY_TO_DTYPE.items()}
# The typed repeated field of each dtype (used instead of tensor_content by some clients).
_VAL_FIELDS = {NUMPY_TO_DTYPE[np.dtype(t)]: field for t, field in [
    (np.float32, 'float_val'), (np.float64, 'double_val'), (np.int32, 'int_val'),
    (np.uint8, 'int_val'), (np.int64, 'int64_val'), (np.bool_, 'bool_val')]}


def dtype_name(dtype):
    """'DT_FLOAT' style name of a DataType number ('DT_<n>' for numbers TensorFlow lacks)."""
    value = protos.DataType.values_by_number.get(dtype)
    return value.name if value is not None else 'DT_<%d>' % dtype


def shape_of(proto):
    """The shape of a TensorProto or TensorShapeProto as a list (-1 = unknown), None if unranked."""
    shape = proto.tensor_shape if hasattr(proto, 'tensor_shape') else proto
    if shape.unknown_rank:
        return None
    return [d.size for d in shape.dim]


def make_tensor_proto(values, proto=None):
    """Builds a TensorProto from a numpy array, or from a list / array of bytes (DT_STRING).

    Args:
      values: numpy array of a dtype in NUMPY_TO_DTYPE, or bytes objects (list or object array).
      proto: an empty TensorProto to fill (such as `response.outputs[alias]`, which saves a
        copy of the data), or None for a new one.
    Returns:
      the TensorProto.
    Raises:
      ValueError: unsupported dtype, or strings that are not bytes.
    """
    proto = protos.TensorProto() if proto is None else proto
    if isinstance(values, (list, tuple)) or (isinstance(values, np.ndarray) and
                                             values.dtype.kind in 'OS'):
        array = np.asarray(values, dtype=object)
        flat = array.reshape(-1)
        if not all(isinstance(v, bytes) for v in flat):
            raise ValueError('string tensors need bytes values')
        proto.dtype = DT_STRING
        proto.string_val.extend(flat)
    else:
        array = np.asarray(values)
        if array.dtype not in NUMPY_TO_DTYPE:
            raise ValueError('unsupported dtype %s' % array.dtype)
        proto.dtype = NUMPY_TO_DTYPE[array.dtype]
        proto.tensor_content = np.ascontiguousarray(
            array, dtype=array.dtype.newbyteorder('<')).tobytes()
    proto.tensor_shape.dim.extend([protos.TensorShapeProto.Dim(size=s) for s in array.shape])
    return proto


def decoded_size(proto):
    """What make_ndarray will allocate for a TensorProto, computed without allocating it.

    Returns:
      (elements, bytes): elements of the shape, and bytes of the values once expanded (for
      strings, the total length of the strings).
    Raises:
      ValueError: unknown rank, a negative dimension, an unsupported dtype, or values that do
        not fit the shape.
    """
    return _decoded_size(proto, proto.tensor_content)


def _decoded_size(proto, content):
    """decoded_size with the proto's tensor_content already read."""
    shape = shape_of(proto)
    if shape is None:
        raise ValueError('the tensor has an unknown rank (unknown_rank is set); send its shape')
    if any(size < 0 for size in shape):
        raise ValueError('shape %s has a negative dimension' % shape)
    count = math.prod(shape)
    if proto.dtype == DT_STRING:
        lengths = [len(v) for v in proto.string_val]
        _check_value_count(len(lengths), count, shape)
        return count, count * lengths[0] if len(lengths) == 1 else sum(lengths)
    if proto.dtype not in DTYPE_TO_NUMPY:
        raise ValueError('unsupported dtype %s' % dtype_name(proto.dtype))
    itemsize = DTYPE_TO_NUMPY[proto.dtype].itemsize
    if content:
        if len(content) != count * itemsize:
            raise ValueError('tensor_content has %d bytes, shape %s of %s needs %d' % (
                len(content), shape, dtype_name(proto.dtype), count * itemsize))
    else:
        _check_value_count(len(getattr(proto, _VAL_FIELDS[proto.dtype])), count, shape)
    return count, count * itemsize


def _check_value_count(given, count, shape):
    """One value per element, or a single value for all of them (as TensorFlow fills)."""
    if given != count and given != 1:
        raise ValueError('tensor has %d values, shape %s needs %d' % (given, shape, count))


def make_ndarray(proto):
    """Converts a TensorProto to a numpy array (object array of bytes for DT_STRING).

    Check `decoded_size` first where the proto comes from an untrusted peer: a single value
    is expanded to the whole shape.

    Returns:
      the array; numbers sent in tensor_content give a read-only view of one copy of it.
    Raises:
      ValueError: as decoded_size.
    """
    content = proto.tensor_content if proto.dtype != DT_STRING else b''
    _decoded_size(proto, content)
    shape = shape_of(proto)
    if proto.dtype == DT_STRING:
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
    elif content:
        dtype = DTYPE_TO_NUMPY[proto.dtype]
        return np.frombuffer(content, dtype=dtype.newbyteorder('<')).reshape(shape)
    else:
        values = np.asarray(getattr(proto, _VAL_FIELDS[proto.dtype]),
                            dtype=DTYPE_TO_NUMPY[proto.dtype])
    if values.size == 1 and math.prod(shape) != 1:
        return np.full(shape, values[0], dtype=values.dtype)
    return values.reshape(shape)
