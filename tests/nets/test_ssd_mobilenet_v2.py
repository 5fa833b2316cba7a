"""Tests of nets/ssd_mobilenet_v2.py: shapes, batch norm modes, width multiplier, learning."""
import functools

import numpy as np
import tensorflow as tf
import tf_slim as slim

from nets import losses, matching, nets_factory, ssd_mobilenet_v2
from nets.batch_norm import batch_norm
from nets.ssd_net import SSDNet

UPDATE_OPS = tf.compat.v1.GraphKeys.UPDATE_OPS


def _network(depth_multiplier=1.0, num_classes=3):
    base = nets_factory.get_network('ssd_300_mobilenet_v2', num_classes=num_classes)
    feature_fn = functools.partial(ssd_mobilenet_v2.mobilenet_v2_feature_maps,
                                   depth_multiplier=depth_multiplier)
    return SSDNet(base.name, base.params, feature_fn, ssd_mobilenet_v2.mobilenet_arg_scope, True)


def test_make_divisible():
    assert ssd_mobilenet_v2.make_divisible(32) == 32
    assert ssd_mobilenet_v2.make_divisible(16 * 0.35) == 8
    assert ssd_mobilenet_v2.make_divisible(24 * 0.75) == 24     # 18 -> 16 < 0.9 * 18 -> 24


def _check_features(network, end_points, logits, locs, depth_multiplier):
    for layer, shape in zip(network.params.feat_layers, network.params.feat_shapes):
        assert end_points['feature/' + layer].shape.as_list()[1:3] == list(shape)
    assert end_points['feature/layer_8'].shape[-1] == 6 * ssd_mobilenet_v2.make_divisible(
        32 * depth_multiplier)
    assert end_points['feature/layer_15'].shape[-1] == 6 * ssd_mobilenet_v2.make_divisible(
        96 * depth_multiplier)
    assert end_points['feature/layer_19'].shape[-1] == 1280
    assert logits.shape.as_list() == [2, 8732, 3]
    assert locs.shape.as_list() == [2, 8732, 4]


def test_training_graph_shapes_names_and_updates():
    with tf.Graph().as_default():
        network = _network()
        logits, locs, end_points = network.net(tf.zeros([2, 300, 300, 3]), is_training=True)
        _check_features(network, end_points, logits, locs, 1.0)
        names = {v.op.name for v in tf.compat.v1.global_variables()}
        updates = tf.compat.v1.get_collection(UPDATE_OPS)
        num_batch_norms = len([n for n in names if n.endswith('BatchNorm/moving_mean')])
        assert len(updates) == 2 * num_batch_norms
        for name in ('ssd_300_mobilenet_v2/Conv/weights',
                     'ssd_300_mobilenet_v2/expanded_conv/depthwise/depthwise_weights',
                     'ssd_300_mobilenet_v2/expanded_conv_13/expand/BatchNorm/gamma',
                     'ssd_300_mobilenet_v2/Conv_1/BatchNorm/moving_variance',
                     'ssd_300_mobilenet_v2/extra_3/project/weights',
                     'ssd_300_mobilenet_v2/layer_15_box/cls/depthwise/BatchNorm/beta',
                     'ssd_300_mobilenet_v2/layer_15_box/cls/pointwise/biases',
                     'ssd_300_mobilenet_v2/layer_8_box/loc/pointwise/weights'):
            assert name in names, name
        # The 1x1 prediction convs have no batch norm.
        assert not any('pointwise/BatchNorm' in n for n in names)


def test_eval_graph_with_width_multiplier():
    with tf.Graph().as_default():
        network = _network(depth_multiplier=0.5)
        logits, locs, end_points = network.net(tf.zeros([2, 300, 300, 3]),
                                               is_training=False)
        _check_features(network, end_points, logits, locs, 0.5)
        assert not tf.compat.v1.get_collection(UPDATE_OPS)
        shapes = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
        assert shapes['ssd_300_mobilenet_v2/Conv/weights'] == [3, 3, 3, 16]


def test_overfits_one_image():
    """A few training steps on one image with one box reduce the loss a lot."""
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, [2, 300, 300, 3]).astype(np.float32)
    image[:, 60:180, 90:240] = 0.8
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        network = _network(depth_multiplier=0.5, num_classes=2)
        logits, locs, _ = network.net(tf.constant(image), is_training=True)
        labels, target_locs, _ = matching.match_anchors(
            network.anchors(), tf.constant([[0.2, 0.3, 0.6, 0.8]]), tf.constant([1]))
        loss = losses.ssd_losses(logits, locs, tf.stack([labels] * 2),
                                 tf.stack([target_locs] * 2))['total']
        train_op = slim.learning.create_train_op(loss, tf.compat.v1.train.AdamOptimizer(1e-3))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            first = sess.run(loss)
            for _ in range(10):
                last = sess.run(train_op)
    assert np.isfinite(last)
    assert last < 0.5 * first


def test_batch_norm_defaults():
    scope = ssd_mobilenet_v2.mobilenet_arg_scope()
    params = scope[slim.arg_scope_func_key(batch_norm)]
    assert params['decay'] == 0.9
    assert params['scale'] and params['center']
