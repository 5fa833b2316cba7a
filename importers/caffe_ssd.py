"""The SSD authors' Caffe models: reading a `.caffemodel` (+ `deploy.prototxt`) without Caffe.

A .caffemodel is a binary NetParameter (importers/caffe_messages.py) holding each layer's
parameters and weights (`blobs`: [out, in, kh, kw] and [out] for a convolution, [C] for the
conv4_3 Normalize scale). Layer names of the release (`models/VGGNet/VOC0712/SSD_300x300`):
conv1_1 ... conv5_3, fc6 (3x3, dilation 6), fc7, conv6_1/conv6_2 ... conv9_1/conv9_2
(SSD512: ... conv10_1/conv10_2), conv4_3_norm, and per feature layer `<source>_mbox_loc`,
`<source>_mbox_conf` and `<source>_mbox_priorbox` with source conv4_3_norm, fc7, conv6_2 ...
"""
import collections
import math

import numpy as np
from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from importers import caffe_messages, errors, vgg_layers
from nets import ssd_vgg

SOURCE = 'caffe'
# The project's extra block convN is the release's conv(N-2): conv8 <-> conv6_1 / conv6_2.
_BLOCK_SHIFT = 2
PRIOR_BOX_SUFFIX = '_mbox_priorbox'

# One feature layer's prior boxes as the release's PriorBox layer states them.
PriorBox = collections.namedtuple('PriorBox', 'min_size max_size ratios step offset variance clip')
# Convolution geometry of a layer (square kernels only, as in every SSD release model).
ConvGeometry = collections.namedtuple('ConvGeometry', 'num_output kernel pad stride dilation')


def _feature_source(feature_layer):
    """Project feature layer -> the release layer feeding its heads (conv4_3_norm, fc7, conv6_2)."""
    if feature_layer == 'conv4_3':
        return 'conv4_3_norm'
    if feature_layer == 'conv7':
        return 'fc7'
    return 'conv%d_2' % (int(feature_layer[4:]) - _BLOCK_SHIFT)


def layer_names(num_feature_layers):
    """Project layer name -> release layer name."""
    names = {}
    for name in vgg_layers.BACKBONE:
        names[name] = {'conv6': 'fc6', 'conv7': 'fc7'}.get(name, name.split('/')[-1])
    for name in vgg_layers.extra_layers(num_feature_layers):
        block, index = name.split('/')[-1][4:].split('_')
        names[name] = 'conv%d_%s' % (int(block) - _BLOCK_SHIFT, index)
    names[vgg_layers.L2_NORM] = 'conv4_3_norm'
    for feature, loc, cls in vgg_layers.head_layers(num_feature_layers):
        names[loc] = _feature_source(feature) + '_mbox_loc'
        names[cls] = _feature_source(feature) + '_mbox_conf'
    return names


def variable_blobs(num_feature_layers):
    """Project variable name (relative to the model scope) -> 'release layer/blob index'."""
    names = layer_names(num_feature_layers)
    return {'%s/%s' % (layer.name, variable): '%s/%d' % (names[layer.name], index)
            for layer in vgg_layers.all_layers(num_feature_layers)
            for index, variable in enumerate(layer.variables)}


def prior_box_layers(num_feature_layers):
    """The release's PriorBox layer names, in feature layer order."""
    return tuple(_feature_source(feature) + PRIOR_BOX_SUFFIX
                 for feature in vgg_layers.feature_layers(num_feature_layers))


def read_net(path, text=False):
    """A NetParameter from a binary .caffemodel or (text=True) a .prototxt.

    Raises:
        errors.WeightsError: unreadable, not a Caffe net, or the pre-2015 V1 layer format.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as error:
        raise errors.WeightsError('%s: cannot read (%s)' % (path, error.strerror)) from None
    net = caffe_messages.NetParameter()
    try:
        if text:
            text_format.Parse(data.decode('utf-8'), net, allow_unknown_field=True)
        else:
            net.ParseFromString(data)
    except (protobuf_message.DecodeError, text_format.ParseError, UnicodeDecodeError) as error:
        raise errors.WeightsError('%s: not a Caffe %s (%s)' % (
            path, 'prototxt' if text else 'model', errors.first_line(error))) from None
    if len(net.layers) and not len(net.layer):
        raise errors.WeightsError('%s: uses Caffe\'s old V1 layer format; convert it with Caffe\'s '
                                  'upgrade_net_proto_%s first' % (path, 'text' if text else
                                                                  'binary'))
    if not len(net.layer):
        raise errors.WeightsError('%s: not a Caffe %s (no layers)' % (
            path, 'prototxt' if text else 'model'))
    return net


def _blob_array(blob, name):
    shape = list(blob.shape.dim) or [d for d in (blob.num, blob.channels, blob.height,
                                                 blob.width)]
    values = blob.data if len(blob.data) else blob.double_data
    if int(np.prod(shape)) != len(values):
        raise ValueError('%s holds %d values for shape %s' % (name, len(values), shape))
    return np.asarray(values, np.float32).reshape(shape)


def blobs(net, path):
    """'layer/blob index' -> float32 array of every layer with weights.

    Raises:
        errors.WeightsError: a blob whose values disagree with its shape (a damaged file), or
            no weights at all.
    """
    found = {}
    for layer in net.layer:
        for index, blob in enumerate(layer.blobs):
            name = '%s/%d' % (layer.name, index)
            try:
                found[name] = _blob_array(blob, name)
            except ValueError as error:
                raise errors.WeightsError('%s: %s' % (path, error)) from None
    if not found:
        raise errors.WeightsError('%s: has no weights (a deploy.prototxt? pass the .caffemodel '
                                  'as --input)' % path)
    return found


def num_feature_layers_of(tensors, path):
    """6 (SSD300) or 7 (SSD512), from the layers the file has.

    Raises:
        errors.WeightsError: not an SSD VGG model of the release.
    """
    layers = {name.split('/')[0] for name in tensors}
    for count in (7, 6):
        wanted = set(layer_names(count).values())
        if wanted <= layers:
            return count
    missing = sorted(set(layer_names(6).values()) - layers)
    raise errors.WeightsError('%s: not an SSD VGG-16 Caffe model: %d of its layers are missing '
                              '(e.g. %s)' % (path, len(missing), missing[0]))


def num_classes_of(tensors, num_feature_layers, path):
    """Classes (background included) from the first conf and loc heads."""
    names = layer_names(num_feature_layers)
    loc = tensors[names['conv4_3_box/loc'] + '/0'].shape[0]
    conf = tensors[names['conv4_3_box/cls'] + '/0'].shape[0]
    if loc % 4 or conf % (loc // 4):
        raise errors.WeightsError('%s: %s has %d outputs, not a multiple of the %d boxes of %s'
                                  % (path, names['conv4_3_box/cls'], conf, loc // 4,
                                     names['conv4_3_box/loc']))
    return conf // (loc // 4)


def _by_name(net):
    return {layer.name: layer for layer in net.layer}


def prior_boxes(net, num_feature_layers, path):
    """The PriorBox of each feature layer, or None when the net has no PriorBox layers.

    Ratios are the ones besides 1 in the release's order (2, 1/2, 3, 1/3 with flip).
    """
    layers = _by_name(net)
    names = prior_box_layers(num_feature_layers)
    if not any(name in layers for name in names):
        return None
    boxes = []
    for name in names:
        if name not in layers:
            raise errors.WeightsError('%s: layer %s is missing while the other PriorBox layers '
                                      'are there' % (path, name))
        p = layers[name].prior_box_param
        ratios = []
        for ratio in p.aspect_ratio:
            if abs(ratio - 1.0) < 1e-6:
                continue
            ratios.append(float(ratio))
            if p.flip:
                ratios.append(1.0 / float(ratio))
        step = p.step or p.step_h
        boxes.append(PriorBox(tuple(float(s) for s in p.min_size),
                              tuple(float(s) for s in p.max_size), tuple(ratios), float(step),
                              float(p.offset), tuple(float(v) for v in p.variance), bool(p.clip)))
    return tuple(boxes)


def input_size(net):
    """(height, width) of the net's input (Input layer or input_shape), or None."""
    shapes = list(net.input_shape)
    shapes += [shape for layer in net.layer if layer.type == 'Input'
               for shape in layer.input_param.shape]
    if shapes and len(shapes[0].dim) == 4:
        return int(shapes[0].dim[2]), int(shapes[0].dim[3])
    if len(net.input_dim) == 4:
        return int(net.input_dim[2]), int(net.input_dim[3])
    return None


def conv_geometry(layer):
    """ConvGeometry of a Convolution layer's parameters."""
    p = layer.convolution_param

    def one(values, h_value, default):
        if len(values):
            return int(values[0])
        return int(h_value) if h_value else default

    return ConvGeometry(int(p.num_output), one(p.kernel_size, p.kernel_h, 0),
                        one(p.pad, p.pad_h, 0), one(p.stride, p.stride_h, 1),
                        int(p.dilation[0]) if len(p.dilation) else 1)


def network_geometry(num_feature_layers):
    """Release layer -> (kernel, pad, stride, dilation) of the layer the project builds for it
    (nets/ssd_vgg.py: 3x3 SAME convs, conv6 3x3 dilation 6, the extra blocks' own geometry,
    3x3 heads), and pool layer -> (kernel, stride, pad) of its max pooling (SAME pooling is
    Caffe's ceil mode)."""
    extras = ssd_vgg.EXTRA_LAYERS_512 if num_feature_layers == 7 else ssd_vgg.EXTRA_LAYERS_300
    geometry = {name: (3, 1, 1, 1) for name in vgg_layers.BACKBONE}
    geometry.update({'conv6': (3, 6, 1, 6), 'conv7': (1, 0, 1, 1)})
    for spec in extras:
        geometry['%s/%s_1' % (spec.name, spec.name)] = (1, 0, 1, 1)
        geometry['%s/%s_2' % (spec.name, spec.name)] = (spec.kernel, spec.padding, spec.stride, 1)
    for _, loc, cls in vgg_layers.head_layers(num_feature_layers):
        geometry[loc] = geometry[cls] = (3, 1, 1, 1)
    names = layer_names(num_feature_layers)
    found = {names[layer]: value for layer, value in geometry.items()}
    found.update({'pool%d' % i: (2, 2, 0) for i in range(1, 5)})
    found['pool5'] = (3, 1, 1)
    return found


def check_geometry(net, path, num_feature_layers, network_name):
    """Raises errors.WeightsError where a layer the file states differs from the network."""
    expected = network_geometry(num_feature_layers)
    for layer in net.layer:
        if layer.name not in expected:
            continue
        if layer.HasField('convolution_param'):
            stated = conv_geometry(layer)[1:]
            what = 'kernel %d pad %d stride %d dilation %d'
        elif layer.HasField('pooling_param'):
            p = layer.pooling_param
            if p.pool != caffe_messages.PoolingParameter.MAX:
                raise errors.WeightsError('%s: layer %s is not max pooling; %s pools by max'
                                          % (path, layer.name, network_name))
            stated = (int(p.kernel_size or p.kernel_h), int(p.stride_h or p.stride),
                      int(p.pad_h or p.pad))
            what = 'kernel %d stride %d pad %d'
        else:
            continue
        if stated != expected[layer.name]:
            raise errors.WeightsError('%s: layer %s is %s, but %s has %s there' % (
                path, layer.name, what % stated, network_name, what % expected[layer.name]))


def check_prototxt(deploy, model, model_path, prototxt_path, num_feature_layers):
    """Raises errors.WeightsError where the deploy.prototxt disagrees with the .caffemodel.

    Compared: the weighted layers (names, outputs and kernel sizes against the blobs), the
    layer geometry both state, and the PriorBox layers.
    """
    model_layers = _by_name(model)
    deploy_layers = _by_name(deploy)
    names = set(layer_names(num_feature_layers).values())
    for name in sorted(names):
        if name not in deploy_layers:
            raise errors.WeightsError('%s has no layer %s, which %s has: the prototxt is of '
                                      'another network' % (prototxt_path, name, model_path))
        layer = deploy_layers[name]
        if layer.type != 'Convolution':
            continue
        geometry = conv_geometry(layer)
        weights = model_layers[name].blobs[0]
        shape = list(weights.shape.dim) or [weights.num, weights.channels, weights.height,
                                            weights.width]
        if shape[0] != geometry.num_output or shape[2] != geometry.kernel:
            raise errors.WeightsError(
                '%s: layer %s has num_output %d and kernel %d, but %s has weights %s (another '
                'class count or network)' % (prototxt_path, name, geometry.num_output,
                                              geometry.kernel, model_path,
                                              'x'.join(map(str, shape))))
        if model_layers[name].HasField('convolution_param'):
            stated = conv_geometry(model_layers[name])
            if stated != geometry:
                raise errors.WeightsError('%s: layer %s is %s, in %s it is %s' % (
                    prototxt_path, name, _describe(geometry), model_path, _describe(stated)))
    deploy_priors = prior_boxes(deploy, num_feature_layers, prototxt_path)
    model_priors = prior_boxes(model, num_feature_layers, model_path)
    if deploy_priors and model_priors and not same_priors(deploy_priors, model_priors):
        for name, a, b in zip(prior_box_layers(num_feature_layers), deploy_priors, model_priors):
            if not same_priors([a], [b]):
                raise errors.WeightsError('%s: PriorBox %s is %s, in %s it is %s' % (
                    prototxt_path, name, _describe_prior(a), model_path, _describe_prior(b)))


def _describe(geometry):
    return 'num_output %d kernel %d pad %d stride %d dilation %d' % geometry


def _describe_prior(prior):
    return 'min_size %s max_size %s step %g' % (prior.min_size, prior.max_size, prior.step)


def _close(a, b):
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6)
                                    for x, y in zip(a, b))


def same_priors(first, second):
    """Whether two PriorBox sequences describe the same anchors (relative tolerance 1e-4)."""
    return len(first) == len(second) and all(
        _close(a.min_size, b.min_size) and _close(a.max_size, b.max_size)
        and _close(a.ratios, b.ratios) and _close((a.step, a.offset), (b.step, b.offset))
        and _close(a.variance, b.variance) and a.clip == b.clip for a, b in zip(first, second))



def params_priors(params):
    """The PriorBox layers that give a network's anchors (nets/anchors.py's order is the
    release's: min size, sqrt(min * max), then each ratio)."""
    return tuple(PriorBox((float(sizes[0]),), (float(sizes[1]),), tuple(float(r) for r in ratios),
                          float(step), float(params.anchor_offset),
                          tuple(float(v) for v in params.prior_scaling), False)
                 for sizes, ratios, step in zip(params.anchor_sizes, params.anchor_ratios,
                                                params.anchor_steps))


def check_layers(net, path):
    """Raises errors.WeightsError for Normalize or DetectionOutput settings the network does not
    implement (per-channel L2 norm of each position; centre-size box coding with shared
    locations, background id 0 and variances not encoded in the targets)."""
    for layer in net.layer:
        if layer.HasField('norm_param'):
            p = layer.norm_param
            if p.across_spatial or p.channel_shared:
                raise errors.WeightsError('%s: layer %s normalises %s; the network normalises '
                                          'each position with one scale per channel' % (
                                              path, layer.name, 'across positions'
                                              if p.across_spatial else 'with one shared scale'))
        if layer.HasField('detection_output_param'):
            p = layer.detection_output_param
            problems = [text for bad, text in (
                (p.code_type != caffe_messages.PriorBoxParameter.CENTER_SIZE,
                 'code_type is not CENTER_SIZE'),
                (not p.share_location, 'share_location is false'),
                (p.background_label_id != 0, 'background_label_id is not 0'),
                (p.variance_encoded_in_target, 'variance_encoded_in_target is true')) if bad]
            if problems:
                raise errors.WeightsError('%s: layer %s: %s, which the network does not '
                                          'implement' % (path, layer.name, problems[0]))
