"""MobileNetV2 feature extractor for SSDLite (Sandler et al., 2018, section 6.2).

Feature layers with the sizes of SSD300 (38, 19, 10, 5, 3, 1 for a 300 input): the
expansion outputs of layers 8 (38x38x192) and 15 (19x19x576), as the TF Object Detection
API's ssdlite_mobilenet_v2 takes layer 15, the final 1x1 conv (layer 19, 10x10x1280),
then three extra blocks (1x1 conv, depthwise 3x3, 1x1 conv): stride 2 to 5 and 3, then
VALID to 1. Every conv has batch norm and ReLU6 except the linear bottleneck projections.
"""
import tensorflow as tf
import tf_slim as slim

from nets.batch_norm import batch_norm

# Inverted residual blocks: (expansion t, output channels c, repeats n, first stride s).
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
FIRST_DEPTH = 32
LAST_DEPTH = 1280
# Extra blocks: (output channels, depthwise stride, depthwise padding); lighter than the
# OD API's 512, 256, 256, 128 channels.
EXTRA_LAYERS = ((256, 2, 'SAME'), (128, 2, 'SAME'), (128, 1, 'VALID'))


def make_divisible(value, divisor=8, min_value=8):
    """Rounds a channel count to a multiple of `divisor`, never below 90% of `value`."""
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def mobilenet_arg_scope(weight_decay=0.00004, batch_norm_decay=0.9, batch_norm_epsilon=0.001):
    """Arg scope of the MobileNetV2 SSDLite: batch norm + ReLU6, L2 weight decay, SAME pads.

    Weights start small (truncated normal, stddev 0.03, as in the TF OD API), which trains
    fastest from scratch; the activations before batch norm then have variances far below
    the moving variances' initial 1. The batch norm decay is 0.9 (PyTorch's momentum 0.1)
    rather than 0.99 so that the moving statistics forget that start within ~100 steps and
    evaluation, which uses them, follows the quickly changing weights of a short training.
    """
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                        activation_fn=tf.nn.relu6, normalizer_fn=batch_norm,
                        weights_initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.03),
                        padding='SAME', data_format='NHWC'):
        with slim.arg_scope([slim.conv2d],
                            weights_regularizer=slim.l2_regularizer(weight_decay)):
            with slim.arg_scope([batch_norm], decay=batch_norm_decay, epsilon=batch_norm_epsilon,
                                center=True, scale=True) as sc:
                return sc


def _inverted_residual(net, expansion, depth, stride, scope):
    """Expand 1x1 -> depthwise 3x3 -> linear 1x1 projection (+ residual).

    Returns:
      (output [B, H', W', depth], expansion output [B, H, W, in * expansion]).
    """
    in_depth = int(net.shape[-1])
    with tf.compat.v1.variable_scope(scope, values=[net]):
        expanded = net
        if expansion != 1:
            expanded = slim.conv2d(net, in_depth * expansion, [1, 1], scope='expand')
        out = slim.separable_conv2d(expanded, None, [3, 3], depth_multiplier=1, stride=stride,
                                    scope='depthwise')
        out = slim.conv2d(out, depth, [1, 1], activation_fn=None, scope='project')
        if stride == 1 and in_depth == depth:
            out = out + net
    return out, expanded


def _extra_block(net, depth, stride, padding, scope):
    """1x1 conv to depth/2, depthwise 3x3 with stride/padding, 1x1 conv to depth."""
    with tf.compat.v1.variable_scope(scope, values=[net]):
        net = slim.conv2d(net, depth // 2, [1, 1], scope='conv1x1')
        net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=stride,
                                    padding=padding, scope='depthwise')
        return slim.conv2d(net, depth, [1, 1], scope='project')


def mobilenet_v2_feature_maps(inputs, is_training=False, depth_multiplier=1.0,
                              extra_layers=EXTRA_LAYERS):
    """Builds MobileNetV2 + SSDLite extra blocks in the current variable scope.

    Args:
      inputs: float32 [B, S, S, 3] scaled to [-1, 1].
      is_training: Python bool; batch norm uses batch statistics and updates its averages.
      depth_multiplier: width multiplier of the backbone (the last 1280 conv is kept).
      extra_layers: (channels, stride, padding) of each extra block.

    Returns:
      features: dict 'layer_8', 'layer_15', 'layer_19', 'extra_1'.. -> [B, h, w, d].
      end_points: dict of every block output.
    """
    end_points = {}
    with slim.arg_scope([batch_norm], is_training=is_training):
        net = slim.conv2d(inputs, make_divisible(FIRST_DEPTH * depth_multiplier), [3, 3],
                          stride=2, scope='Conv')
        end_points['layer_1'] = net
        layer = 1
        for expansion, depth, repeats, first_stride in BLOCKS:
            for i in range(repeats):
                layer += 1
                scope = 'expanded_conv' + ('_%d' % (layer - 2) if layer > 2 else '')
                net, expanded = _inverted_residual(
                    net, expansion, make_divisible(depth * depth_multiplier),
                    first_stride if i == 0 else 1, scope)
                end_points['layer_%d' % layer] = net
                end_points['layer_%d/expansion_output' % layer] = expanded
        last_depth = make_divisible(LAST_DEPTH * max(1.0, depth_multiplier))
        net = slim.conv2d(net, last_depth, [1, 1], scope='Conv_1')
        end_points['layer_19'] = net
        features = {'layer_8': end_points['layer_8/expansion_output'],
                    'layer_15': end_points['layer_15/expansion_output'], 'layer_19': net}
        for i, (depth, stride, padding) in enumerate(extra_layers, start=1):
            net = _extra_block(net, depth, stride, padding, 'extra_%d' % i)
            end_points['extra_%d' % i] = net
            features['extra_%d' % i] = net
    return features, end_points
