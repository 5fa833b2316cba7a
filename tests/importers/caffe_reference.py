"""The SSD authors' Caffe models as the tests write them: the real layer names, geometry and
blob shapes of VGG_VOC0712_SSD_300x300 and VGG_VOC0712_SSD_512x512 (their deploy.prototxt in
models_VGGNet_VOC0712_SSD_*.tar.gz; the COCO models differ in the class count and PriorBox
sizes), through the project's own message set (importers/caffe_messages.py).
"""
import numpy as np
from google.protobuf import text_format

from importers import caffe_messages

# Convolutions: (name, num_output, kernel, pad, stride, dilation). Every one is followed by a
# ReLU; poolings are MAX (Caffe's ceil mode).
_VGG = [('conv1_1', 64), ('conv1_2', 64), 'pool1', ('conv2_1', 128), ('conv2_2', 128), 'pool2',
        ('conv3_1', 256), ('conv3_2', 256), ('conv3_3', 256), 'pool3',
        ('conv4_1', 512), ('conv4_2', 512), ('conv4_3', 512), 'pool4',
        ('conv5_1', 512), ('conv5_2', 512), ('conv5_3', 512), 'pool5']
POOLS = {'pool1': (2, 2, 0), 'pool2': (2, 2, 0), 'pool3': (2, 2, 0), 'pool4': (2, 2, 0),
         'pool5': (3, 1, 1)}  # kernel, stride, pad
_FC = [('fc6', 1024, 3, 6, 1, 6), ('fc7', 1024, 1, 0, 1, 1)]
_EXTRA_300 = [('conv6_1', 256, 1, 0, 1, 1), ('conv6_2', 512, 3, 1, 2, 1),
              ('conv7_1', 128, 1, 0, 1, 1), ('conv7_2', 256, 3, 1, 2, 1),
              ('conv8_1', 128, 1, 0, 1, 1), ('conv8_2', 256, 3, 0, 1, 1),
              ('conv9_1', 128, 1, 0, 1, 1), ('conv9_2', 256, 3, 0, 1, 1)]
_EXTRA_512 = [('conv6_1', 256, 1, 0, 1, 1), ('conv6_2', 512, 3, 1, 2, 1),
              ('conv7_1', 128, 1, 0, 1, 1), ('conv7_2', 256, 3, 1, 2, 1),
              ('conv8_1', 128, 1, 0, 1, 1), ('conv8_2', 256, 3, 1, 2, 1),
              ('conv9_1', 128, 1, 0, 1, 1), ('conv9_2', 256, 3, 1, 2, 1),
              ('conv10_1', 128, 1, 0, 1, 1), ('conv10_2', 256, 4, 1, 1, 1)]
# Feature sources: (layer, channels, aspect ratios besides 1 (flipped too), PriorBox min_size,
# max_size, step).
_SOURCES_300 = {
    'voc': [('conv4_3_norm', 512, (2,), 30, 60, 8), ('fc7', 1024, (2, 3), 60, 111, 16),
            ('conv6_2', 512, (2, 3), 111, 162, 32), ('conv7_2', 256, (2, 3), 162, 213, 64),
            ('conv8_2', 256, (2,), 213, 264, 100), ('conv9_2', 256, (2,), 264, 315, 300)],
    'coco': [('conv4_3_norm', 512, (2,), 21, 45, 8), ('fc7', 1024, (2, 3), 45, 99, 16),
             ('conv6_2', 512, (2, 3), 99, 153, 32), ('conv7_2', 256, (2, 3), 153, 207, 64),
             ('conv8_2', 256, (2,), 207, 261, 100), ('conv9_2', 256, (2,), 261, 315, 300)],
}
_SOURCES_512 = {
    'voc': [('conv4_3_norm', 512, (2,), 35.84, 76.8, 8), ('fc7', 1024, (2, 3), 76.8, 153.6, 16),
            ('conv6_2', 512, (2, 3), 153.6, 230.4, 32), ('conv7_2', 256, (2, 3), 230.4, 307.2, 64),
            ('conv8_2', 256, (2, 3), 307.2, 384.0, 128), ('conv9_2', 256, (2,), 384.0, 460.8, 256),
            ('conv10_2', 256, (2,), 460.8, 537.6, 512)],
    'coco': [('conv4_3_norm', 512, (2,), 20.48, 51.2, 8),
             ('fc7', 1024, (2, 3), 51.2, 133.12, 16),
             ('conv6_2', 512, (2, 3), 133.12, 215.04, 32),
             ('conv7_2', 256, (2, 3), 215.04, 296.96, 64),
             ('conv8_2', 256, (2, 3), 296.96, 378.88, 128),
             ('conv9_2', 256, (2,), 378.88, 460.8, 256),
             ('conv10_2', 256, (2,), 460.8, 542.72, 512)],
}
MODELS = {300: (_EXTRA_300, _SOURCES_300), 512: (_EXTRA_512, _SOURCES_512)}
NAMES = {300: 'VGG_VOC0712_SSD_300x300', 512: 'VGG_VOC0712_SSD_512x512'}


def convolutions(size, num_classes=21, dataset='voc'):
    """(name, num_output, kernel, pad, stride, dilation, input channels) of every convolution."""
    extra, sources = MODELS[size]
    convs, channels = [], 3
    for entry in _VGG:
        if isinstance(entry, tuple):
            convs.append(entry + (3, 1, 1, 1, channels))
            channels = entry[1]
    for name, outputs, kernel, pad, stride, dilation in _FC + extra:
        convs.append((name, outputs, kernel, pad, stride, dilation, channels))
        channels = outputs
    for source, depth, ratios, _, _, _ in sources[dataset]:
        boxes = 2 + 2 * len(ratios)
        convs.append((source + '_mbox_loc', boxes * 4, 3, 1, 1, 1, depth))
        convs.append((source + '_mbox_conf', boxes * num_classes, 3, 1, 1, 1, depth))
    return convs


def blob_shapes(size, num_classes=21, dataset='voc'):
    """'layer/blob index' -> shape of every blob of the model (weights OIHW, biases, scale)."""
    shapes = {}
    for name, outputs, kernel, _, _, _, inputs in convolutions(size, num_classes, dataset):
        shapes[name + '/0'] = (outputs, inputs, kernel, kernel)
        shapes[name + '/1'] = (outputs,)
    shapes['conv4_3_norm/0'] = (512,)
    return shapes


def _relu_name(conv):
    """The release's ReLU names: relu1_1 ... relu5_3, relu6, relu7, conv6_1_relu ... ."""
    if conv.startswith('fc'):
        return 'relu' + conv[2:]
    if int(conv[4:].split('_')[0]) <= 5:
        return 'relu' + conv[4:]
    return conv + '_relu'


def _conv(net, name, bottom, outputs, kernel, pad, stride, dilation):
    layer = net.layer.add(name=name, type='Convolution', bottom=[bottom], top=[name])
    p = layer.convolution_param
    p.num_output = outputs
    p.kernel_size.append(kernel)
    if pad:
        p.pad.append(pad)
    if stride != 1:
        p.stride.append(stride)
    if dilation != 1:
        p.dilation.append(dilation)
    return layer


def build_net(size, blobs=None, num_classes=21, dataset='voc', priors=True, input_shape=True):
    """The model as a NetParameter: deploy.prototxt without `blobs`, the .caffemodel with them.

    Args:
        size: 300 or 512.
        blobs: 'layer/blob index' -> array, or None (no weights).
        priors: include the PriorBox and DetectionOutput layers.
        input_shape: state the input shape.
    """
    extra, sources = MODELS[size]
    net = caffe_messages.NetParameter(name=NAMES[size])
    if input_shape:
        net.input.append('data')
        net.input_shape.add(dim=[1, 3, size, size])
    bottom = 'data'
    geometry = {c[0]: c[1:6] for c in convolutions(size, num_classes, dataset)}
    for entry in [e if isinstance(e, str) else e[0] for e in _VGG] + [e[0] for e in _FC + extra]:
        if entry in POOLS:
            layer = net.layer.add(name=entry, type='Pooling', bottom=[bottom], top=[entry])
            kernel, stride, pad = POOLS[entry]
            layer.pooling_param.pool = caffe_messages.PoolingParameter.MAX
            layer.pooling_param.kernel_size = kernel
            layer.pooling_param.stride = stride
            if pad:
                layer.pooling_param.pad = pad
        else:
            _conv(net, entry, bottom, *geometry[entry])
            net.layer.add(name=_relu_name(entry), type='ReLU', bottom=[entry], top=[entry])
        bottom = entry
    norm = net.layer.add(name='conv4_3_norm', type='Normalize', bottom=['conv4_3'],
                         top=['conv4_3_norm'])
    norm.norm_param.across_spatial = False
    norm.norm_param.channel_shared = False
    for source, _, ratios, min_size, max_size, step in sources[dataset]:
        for head in ('loc', 'conf'):
            name = '%s_mbox_%s' % (source, head)
            _conv(net, name, source, *geometry[name])
            net.layer.add(name=name + '_perm', type='Permute', bottom=[name], top=[name + '_perm'])
        if priors:
            layer = net.layer.add(name=source + '_mbox_priorbox', type='PriorBox',
                                  bottom=[source, 'data'], top=[source + '_mbox_priorbox'])
            p = layer.prior_box_param
            p.min_size.append(min_size)
            p.max_size.append(max_size)
            p.aspect_ratio.extend(ratios)
            p.flip = True
            p.clip = False
            p.variance.extend([0.1, 0.1, 0.2, 0.2])
            p.step = step
            p.offset = 0.5
    if priors:
        layer = net.layer.add(name='detection_out', type='DetectionOutput',
                              bottom=['mbox_loc', 'mbox_conf_flatten', 'mbox_priorbox'],
                              top=['detection_out'])
        p = layer.detection_output_param
        p.num_classes = num_classes
        p.share_location = True
        p.background_label_id = 0
        p.nms_param.nms_threshold = 0.45
        p.nms_param.top_k = 400
        p.code_type = caffe_messages.PriorBoxParameter.CENTER_SIZE
        p.keep_top_k = 200
        p.confidence_threshold = 0.01
    if blobs is not None:
        layers = {layer.name: layer for layer in net.layer}
        for key in sorted(blobs, key=lambda k: (k.split('/')[0], int(k.split('/')[1]))):
            layers[key.split('/')[0]].blobs.add().MergeFromString(_blob_bytes(blobs[key]))
    return net


def _varint(value):
    out = bytearray()
    while True:
        out.append((value & 0x7f) | (0x80 if value > 0x7f else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _blob_bytes(array):
    """A BlobProto's wire bytes: shape (field 7) and packed float data (field 5), assembled
    directly (filling the repeated field from Python takes a minute for a whole model)."""
    array = np.ascontiguousarray(array, '<f4')
    shape = caffe_messages.BlobShape(dim=array.shape).SerializeToString()
    data = array.tobytes()
    return b'\x3a' + _varint(len(shape)) + shape + b'\x2a' + _varint(len(data)) + data


def write_model(path, size, blobs, **kwargs):
    """Writes a .caffemodel (binary NetParameter with weights)."""
    with open(path, 'wb') as f:
        f.write(build_net(size, blobs, **kwargs).SerializeToString())


def write_prototxt(path, size, **kwargs):
    """Writes a deploy.prototxt (text NetParameter, no weights)."""
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text_format.MessageToString(build_net(size, None, **kwargs)))


def seeded_blobs(size, seed=0, num_classes=21, dataset='voc'):
    """Random blobs of the model's shapes ('layer/index' -> float32), He-scaled."""
    rng = np.random.default_rng(seed)
    blobs = {}
    for key, shape in sorted(blob_shapes(size, num_classes, dataset).items()):
        if key == 'conv4_3_norm/0':
            blobs[key] = np.full(shape, 20.0, np.float32)
        elif len(shape) == 1:
            blobs[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            std = np.sqrt(2.0 / np.prod(shape[1:])) / (60.0 if key == 'conv1_1/0' else 1.0)
            blobs[key] = (std * rng.standard_normal(shape)).astype(np.float32)
    return blobs


def tiny_blobs(size, num_classes=21, dataset='voc'):
    """Blobs with the model's output widths and kernels but one input channel (for recognising
    a file's network without megabytes of weights; they do not fit the network's variables)."""
    return {key: np.zeros(shape[:1] + (1,) + shape[2:] if len(shape) == 4 else shape, np.float32)
            for key, shape in blob_shapes(size, num_classes, dataset).items()}
