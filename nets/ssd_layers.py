"""Layers shared by the SSD networks: L2 normalisation and the multibox prediction heads.

`multibox_head` returns its class logits and box offsets already flattened to one row
per anchor, in the order of nets.anchors, so the network concatenates the layers.
"""
import tensorflow as tf
import tf_slim as slim


def l2_normalization(inputs, scale_init=20.0, scope='L2Normalization'):
    """Channel-wise L2 normalisation with a learnt per-channel scale (ParseNet; SSD conv4_3).

    Args:
      inputs: float32 [B, H, W, C].
      scale_init: initial value of the scale (20 in SSD).
      scope: variable scope; the scale variable is `<scope>/scale` [C].

    Returns:
      float32 [B, H, W, C].
    """
    channels = int(inputs.shape[-1])
    with tf.compat.v1.variable_scope(scope, values=[inputs]):
        scale = tf.compat.v1.get_variable(
            'scale', [channels], tf.float32,
            initializer=tf.compat.v1.constant_initializer(scale_init),
            collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES,
                         tf.compat.v1.GraphKeys.MODEL_VARIABLES])
        return tf.math.l2_normalize(inputs, axis=-1, epsilon=1e-12) * scale


def _predictor(feature, num_outputs, separable, scope):
    """3x3 conv (SSDLite: depthwise 3x3 + 1x1), no activation -> [B, H, W, num_outputs]."""
    if not separable:
        return slim.conv2d(feature, num_outputs, [3, 3], activation_fn=None,
                           normalizer_fn=None, scope=scope)
    with tf.compat.v1.variable_scope(scope, values=[feature]):
        net = slim.separable_conv2d(feature, None, [3, 3], depth_multiplier=1,
                                    scope='depthwise')
        return slim.conv2d(net, num_outputs, [1, 1], activation_fn=None,
                           normalizer_fn=None, scope='pointwise')


def multibox_head(feature, num_boxes, num_classes, separable=False, scope=None):
    """Class logits and box offsets of one feature layer.

    Args:
      feature: float32 [B, H, W, D].
      num_boxes: anchors per cell.
      num_classes: classes including background.
      separable: SSDLite head (depthwise 3x3 + batch norm + 1x1) instead of a 3x3 conv.
      scope: variable scope (e.g. 'conv4_3_box').

    Returns:
      logits float32 [B, H * W * num_boxes, num_classes],
      locs float32 [B, H * W * num_boxes, 4]; cell-major then box order, like the anchors.
    """
    with tf.compat.v1.variable_scope(scope, 'multibox_head', [feature]):
        locs = _predictor(feature, num_boxes * 4, separable, 'loc')
        logits = _predictor(feature, num_boxes * num_classes, separable, 'cls')
    height, width = int(feature.shape[1]), int(feature.shape[2])
    count = height * width * num_boxes
    return (tf.reshape(logits, [-1, count, num_classes]), tf.reshape(locs, [-1, count, 4]))
