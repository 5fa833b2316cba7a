"""SSD VGG-16 feature extractor, one implementation for SSD300 and SSD512 (Liu et al., 2016).

VGG-16 layers are named as slim's vgg_16 (`conv1/conv1_1` ... `conv5/conv5_3`) so that a
slim vgg_16.ckpt restores with the scope remap vgg_16 -> <model scope>. fc6/fc7 become
conv6 (3x3, dilation 6, 1024) and conv7 (1x1, 1024); they are named differently from
fc6/fc7 and so are not restored from the classifier. pool5 is 3x3 with stride 1; pool
layers use SAME padding (Caffe's ceil mode: 75 -> 38 at pool3 for a 300 input).

`vgg_bn_arg_scope` is the optional batch-normalised variant (`ssd_300_vgg_bn`), as
ScratchDet (Zhu et al., CVPR 2019) trains SSD from scratch: batch norm after every conv
of the backbone and the extra layers (not after the prediction heads). Without it, VGG
from scratch starts badly scaled (docs/training.md, "Training VGG from scratch"): Xavier
initialisation halves the activation variance at every ReLU layer while conv4_3's L2
normalisation rescales its branch to norm 20, so at initialisation the gradients of the
layers differ by up to five orders of magnitude and one SGD learning rate cannot suit them.
"""
import collections
import functools

import tensorflow as tf
import tf_slim as slim

from common import precision
from nets.batch_norm import batch_norm
from nets.ssd_layers import l2_normalization

# An extra feature block: 1x1 conv to `bottleneck` channels, then a `kernel` conv with
# `stride` to `depth` channels after `padding` pixels of zero padding on each side (VALID).
ExtraLayer = collections.namedtuple('ExtraLayer', 'name bottleneck depth kernel stride padding')

EXTRA_LAYERS_300 = (
    ExtraLayer('conv8', 256, 512, 3, 2, 1),    # 19 -> 10
    ExtraLayer('conv9', 128, 256, 3, 2, 1),    # 10 -> 5
    ExtraLayer('conv10', 128, 256, 3, 1, 0),   # 5 -> 3
    ExtraLayer('conv11', 128, 256, 3, 1, 0),   # 3 -> 1
)

EXTRA_LAYERS_512 = (
    ExtraLayer('conv8', 256, 512, 3, 2, 1),    # 32 -> 16
    ExtraLayer('conv9', 128, 256, 3, 2, 1),    # 16 -> 8
    ExtraLayer('conv10', 128, 256, 3, 2, 1),   # 8 -> 4
    ExtraLayer('conv11', 128, 256, 3, 2, 1),   # 4 -> 2
    ExtraLayer('conv12', 128, 256, 4, 1, 1),   # 2 -> 1
)

L2_NORM_SCALE_INIT = 20.0


@functools.lru_cache(maxsize=None)
def native_dilation_gradients():
    """Whether this process's TensorFlow has CPU gradients of Conv2D with `dilations`."""
    return precision.onednn_enabled(precision.cpu_flags())


@slim.add_arg_scope
def dilated_conv2d(inputs, num_outputs, kernel_size, rate, activation_fn=tf.nn.relu,
                   weights_initializer=None, weights_regularizer=None,
                   biases_initializer=None, normalizer_fn=None, scope=None,
                   native_dilations=True):
    """A SAME-padded stride-1 atrous conv with slim.conv2d's variables (`weights`, `biases`).

    slim.conv2d(rate=r) goes through tf.nn.convolution's space-to-batch path, which is
    about 3x slower on CPU than Conv2D's native `dilations` used here, unless
    `native_dilations` is False: a training graph must take the space-to-batch path where
    TensorFlow does not run its oneDNN ops (CPUs without AVX512-VNNI, BF16 or AMX, such as
    AVX2-only ones), because its other CPU kernels have no gradient of a dilated Conv2D.

    Args:
      inputs: float32 [B, H, W, C].
      num_outputs: output channels.
      kernel_size: int, square kernel side.
      rate: dilation rate.
      activation_fn, weights_initializer, weights_regularizer, biases_initializer,
        normalizer_fn: as in slim.conv2d (with a normalizer there are no biases).
      scope: variable scope.
      native_dilations: Conv2D with `dilations` (True) or tf.nn.convolution's space-to-batch
        path (False); both compute the same.

    Returns:
      float32 [B, H, W, num_outputs].
    """
    with tf.compat.v1.variable_scope(scope, 'Conv', [inputs]):
        channels = int(inputs.shape[-1])
        weights = slim.model_variable(
            'weights', [kernel_size, kernel_size, channels, num_outputs],
            initializer=weights_initializer or tf.compat.v1.glorot_uniform_initializer(),
            regularizer=weights_regularizer)
        if native_dilations:
            outputs = tf.nn.conv2d(inputs, weights, strides=1, padding='SAME',
                                   dilations=[1, rate, rate, 1])
        else:
            outputs = tf.nn.convolution(inputs, weights, padding='SAME', dilations=rate)
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs)
        else:
            biases = slim.model_variable(
                'biases', [num_outputs],
                initializer=biases_initializer or tf.compat.v1.zeros_initializer())
            outputs = tf.nn.bias_add(outputs, biases)
        return activation_fn(outputs) if activation_fn is not None else outputs


def vgg_arg_scope(weight_decay=0.0005):
    """Arg scope of the VGG SSD: ReLU convs with Xavier init, L2 weight decay, SAME pads."""
    with slim.arg_scope([slim.conv2d, dilated_conv2d], activation_fn=tf.nn.relu,
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        weights_initializer=tf.compat.v1.glorot_uniform_initializer(),
                        biases_initializer=tf.compat.v1.zeros_initializer()):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d], padding='SAME',
                            data_format='NHWC') as sc:
            return sc


def vgg_bn_arg_scope(weight_decay=0.0005, batch_norm_decay=0.9, batch_norm_epsilon=0.001):
    """vgg_arg_scope with batch norm (beta and gamma) after every backbone and extra conv.

    The prediction heads set normalizer_fn=None themselves. The decay 0.9 lets the moving
    statistics follow a short training, as in the MobileNetV2 network.
    """
    with slim.arg_scope(vgg_arg_scope(weight_decay)):
        with slim.arg_scope([slim.conv2d, dilated_conv2d], normalizer_fn=batch_norm):
            with slim.arg_scope([batch_norm], decay=batch_norm_decay, epsilon=batch_norm_epsilon,
                                center=True, scale=True) as sc:
                return sc


def _extra_layer(net, spec):
    """One extra feature block (see ExtraLayer) -> [B, H', W', depth]."""
    with tf.compat.v1.variable_scope(spec.name, values=[net]):
        net = slim.conv2d(net, spec.bottleneck, [1, 1], scope=spec.name + '_1')
        if spec.padding:
            p = spec.padding
            net = tf.pad(net, [[0, 0], [p, p], [p, p], [0, 0]])
        return slim.conv2d(net, spec.depth, [spec.kernel, spec.kernel], stride=spec.stride,
                           padding='VALID', scope=spec.name + '_2')


def vgg_feature_maps(inputs, extra_layers, is_training=False):
    """Builds VGG-16 + extra layers in the current variable scope.

    Args:
      inputs: float32 [B, S, S, 3], VGG mean-subtracted RGB.
      extra_layers: tuple of ExtraLayer (EXTRA_LAYERS_300 or EXTRA_LAYERS_512).
      is_training: whether the graph trains: then conv6 takes the dilated convolution path
        with gradients on this machine (batch norm takes its mode from the arg scope that
        SSDNet.net opens).

    Returns:
      features: dict name -> [B, h, w, d] for 'conv4_3' (L2-normalised), 'conv7' and
        the extra layers.
      end_points: dict of every block output (conv4_3 before normalisation).
    """
    end_points = {}
    net = inputs
    for block, (repeat, depth) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
                                            start=1):
        name = 'conv%d' % block
        net = slim.repeat(net, repeat, slim.conv2d, depth, [3, 3], scope=name)
        end_points['%s_%d' % (name, repeat)] = net
        if block < 5:
            net = slim.max_pool2d(net, [2, 2], stride=2, scope='pool%d' % block)
    net = slim.max_pool2d(net, [3, 3], stride=1, scope='pool5')
    net = dilated_conv2d(net, 1024, 3, rate=6, scope='conv6',
                         native_dilations=not is_training or native_dilation_gradients())
    end_points['conv6'] = net
    net = slim.conv2d(net, 1024, [1, 1], scope='conv7')
    end_points['conv7'] = net
    for spec in extra_layers:
        net = _extra_layer(net, spec)
        end_points[spec.name] = net
    features = {name: end_points[name] for name in ['conv7'] + [s.name for s in extra_layers]}
    features['conv4_3'] = l2_normalization(end_points['conv4_3'], L2_NORM_SCALE_INIT,
                                           scope='conv4_3_norm')
    return features, end_points
