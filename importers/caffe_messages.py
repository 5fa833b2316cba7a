"""The few Caffe protobuf messages an SSD .caffemodel and its deploy.prototxt need.

Written here as descriptor data (no Caffe, no protoc): the message and field names and the
field numbers are those of the SSD authors' Caffe release (`src/caffe/proto/caffe.proto` of
weiliu89/caffe, branch ssd), so the binary and text formats read the same bytes. Fields that
are not listed (solver settings, fillers, data layers, losses) are skipped when reading.

NetParameter            name 1, layers 2 (the pre-2015 V1 format), input 3, input_dim 4,
                        input_shape 8, layer 100
LayerParameter          name 1, type 2, bottom 3, top 4, blobs 7, convolution_param 106,
                        pooling_param 121, input_param 143, prior_box_param 203,
                        detection_output_param 204, norm_param 206
BlobProto               num 1, channels 2, height 3, width 4, data 5, shape 7, double_data 8
"""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = 'caffe'
_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALARS = {'string': _F.TYPE_STRING, 'bool': _F.TYPE_BOOL, 'int32': _F.TYPE_INT32,
            'uint32': _F.TYPE_UINT32, 'int64': _F.TYPE_INT64, 'float': _F.TYPE_FLOAT,
            'double': _F.TYPE_DOUBLE}

# message -> fields (name, number, type, repeated, default). A type that is not a scalar
# names a message, or an enum as 'Message.Enum'.
MESSAGES = {
    'BlobShape': [('dim', 1, 'int64', True, None)],
    'BlobProto': [
        ('num', 1, 'int32', False, None), ('channels', 2, 'int32', False, None),
        ('height', 3, 'int32', False, None), ('width', 4, 'int32', False, None),
        ('data', 5, 'float', True, None), ('shape', 7, 'BlobShape', False, None),
        ('double_data', 8, 'double', True, None)],
    'NetParameter': [
        ('name', 1, 'string', False, None), ('layers', 2, 'V1LayerParameter', True, None),
        ('input', 3, 'string', True, None), ('input_dim', 4, 'int32', True, None),
        ('input_shape', 8, 'BlobShape', True, None),
        ('layer', 100, 'LayerParameter', True, None)],
    'V1LayerParameter': [('name', 4, 'string', False, None)],
    'LayerParameter': [
        ('name', 1, 'string', False, None), ('type', 2, 'string', False, None),
        ('bottom', 3, 'string', True, None), ('top', 4, 'string', True, None),
        ('blobs', 7, 'BlobProto', True, None),
        ('convolution_param', 106, 'ConvolutionParameter', False, None),
        ('pooling_param', 121, 'PoolingParameter', False, None),
        ('input_param', 143, 'InputParameter', False, None),
        ('prior_box_param', 203, 'PriorBoxParameter', False, None),
        ('detection_output_param', 204, 'DetectionOutputParameter', False, None),
        ('norm_param', 206, 'NormalizeParameter', False, None)],
    'ConvolutionParameter': [
        ('num_output', 1, 'uint32', False, None), ('bias_term', 2, 'bool', False, 'true'),
        ('pad', 3, 'uint32', True, None), ('kernel_size', 4, 'uint32', True, None),
        ('group', 5, 'uint32', False, '1'), ('stride', 6, 'uint32', True, None),
        ('pad_h', 9, 'uint32', False, None), ('pad_w', 10, 'uint32', False, None),
        ('kernel_h', 11, 'uint32', False, None), ('kernel_w', 12, 'uint32', False, None),
        ('stride_h', 13, 'uint32', False, None), ('stride_w', 14, 'uint32', False, None),
        ('dilation', 18, 'uint32', True, None)],
    'PoolingParameter': [
        ('pool', 1, 'PoolingParameter.PoolMethod', False, 'MAX'),
        ('kernel_size', 2, 'uint32', False, None), ('stride', 3, 'uint32', False, '1'),
        ('pad', 4, 'uint32', False, '0'), ('kernel_h', 5, 'uint32', False, None),
        ('kernel_w', 6, 'uint32', False, None), ('stride_h', 7, 'uint32', False, None),
        ('stride_w', 8, 'uint32', False, None), ('pad_h', 9, 'uint32', False, None),
        ('pad_w', 10, 'uint32', False, None), ('global_pooling', 12, 'bool', False, 'false')],
    'InputParameter': [('shape', 1, 'BlobShape', True, None)],
    'PriorBoxParameter': [
        ('min_size', 1, 'float', True, None), ('max_size', 2, 'float', True, None),
        ('aspect_ratio', 3, 'float', True, None), ('flip', 4, 'bool', False, 'true'),
        ('clip', 5, 'bool', False, 'false'), ('variance', 6, 'float', True, None),
        ('img_size', 7, 'uint32', False, None), ('img_h', 8, 'uint32', False, None),
        ('img_w', 9, 'uint32', False, None), ('step', 10, 'float', False, None),
        ('step_h', 11, 'float', False, None), ('step_w', 12, 'float', False, None),
        ('offset', 13, 'float', False, '0.5')],
    'NonMaximumSuppressionParameter': [
        ('nms_threshold', 1, 'float', False, '0.3'), ('top_k', 2, 'int32', False, None),
        ('eta', 3, 'float', False, '1.0')],
    'DetectionOutputParameter': [
        ('num_classes', 1, 'uint32', False, None), ('share_location', 2, 'bool', False, 'true'),
        ('background_label_id', 3, 'int32', False, '0'),
        ('nms_param', 4, 'NonMaximumSuppressionParameter', False, None),
        ('code_type', 6, 'PriorBoxParameter.CodeType', False, 'CORNER'),
        ('keep_top_k', 7, 'int32', False, '-1'),
        ('variance_encoded_in_target', 8, 'bool', False, 'false'),
        ('confidence_threshold', 9, 'float', False, None)],
    'NormalizeParameter': [
        ('across_spatial', 1, 'bool', False, 'true'), ('channel_shared', 3, 'bool', False, 'true'),
        ('eps', 4, 'float', False, '1e-10')],
}
# Repeated numbers Caffe declares [packed = true] (the others are written one by one; a reader
# takes both encodings).
PACKED = {('BlobShape', 'dim'), ('BlobProto', 'data'), ('BlobProto', 'double_data')}
# 'Message.Enum' -> values.
ENUMS = {
    'PoolingParameter.PoolMethod': [('MAX', 0), ('AVE', 1), ('STOCHASTIC', 2)],
    'PriorBoxParameter.CodeType': [('CORNER', 1), ('CENTER_SIZE', 2), ('CORNER_SIZE', 3)],
}


def _file_descriptor():
    """The FileDescriptorProto of MESSAGES and ENUMS (proto2, package caffe)."""
    proto = descriptor_pb2.FileDescriptorProto(name='ssd_caffe_minimal.proto', package=PACKAGE,
                                               syntax='proto2')
    messages = {}
    for name, fields in MESSAGES.items():
        message = proto.message_type.add(name=name)
        messages[name] = message
        for field_name, number, kind, repeated, default in fields:
            field = message.field.add(name=field_name, number=number,
                                       label=_REPEATED if repeated else _OPTIONAL)
            if kind in _SCALARS:
                field.type = _SCALARS[kind]
                if (name, field_name) in PACKED:
                    field.options.packed = True
            elif kind in ENUMS:
                field.type = _F.TYPE_ENUM
                field.type_name = '.%s.%s' % (PACKAGE, kind)
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = '.%s.%s' % (PACKAGE, kind)
            if default is not None:
                field.default_value = default
    for full_name, values in ENUMS.items():
        owner, name = full_name.split('.')
        enum = messages[owner].enum_type.add(name=name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    return proto


def _message_classes():
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName('%s.%s' % (PACKAGE, name))) for name in MESSAGES}


_CLASSES = _message_classes()
NetParameter = _CLASSES['NetParameter']
PoolingParameter = _CLASSES['PoolingParameter']
PriorBoxParameter = _CLASSES['PriorBoxParameter']
LayerParameter = _CLASSES['LayerParameter']
BlobProto = _CLASSES['BlobProto']
BlobShape = _CLASSES['BlobShape']
