"""Tests of nets/ssd_layers.py: L2 normalisation and multibox head shapes."""
import numpy as np
import tensorflow as tf
import tf_slim as slim

from nets import ssd_layers


def test_l2_normalization_scale_init_20():
    x = np.array([[[[3.0, 4.0]]]], np.float32)
    with tf.Graph().as_default():
        y = ssd_layers.l2_normalization(tf.constant(x), 20.0, scope='norm')
        (scale,) = tf.compat.v1.global_variables()
        assert scale.op.name == 'norm/scale'
        assert scale.shape.as_list() == [2]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            np.testing.assert_allclose(sess.run(y), [[[[12.0, 16.0]]]], rtol=1e-6)


def test_multibox_head_order_matches_cells_then_boxes():
    # With zero inputs the logits equal the biases: every cell repeats them in (box, class)
    # order.
    with tf.Graph().as_default():
        feature = tf.zeros([1, 2, 3, 5])
        logits, locs = ssd_layers.multibox_head(feature, 4, 3, scope='head')
        assert logits.shape.as_list() == [1, 2 * 3 * 4, 3]
        assert locs.shape.as_list() == [1, 2 * 3 * 4, 4]
        bias = [v for v in tf.compat.v1.global_variables() if v.op.name == 'head/cls/biases'][0]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bias.assign(np.arange(12, dtype=np.float32)))
            got = sess.run(logits)
    np.testing.assert_array_equal(got[0, :4], np.arange(12).reshape(4, 3))
    np.testing.assert_array_equal(got[0, 4:8], np.arange(12).reshape(4, 3))


def test_separable_head_variables():
    with tf.Graph().as_default():
        with slim.arg_scope([slim.separable_conv2d], activation_fn=None):
            ssd_layers.multibox_head(tf.zeros([1, 3, 3, 8]), 6, 2, separable=True, scope='h')
        shapes = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    assert shapes['h/loc/depthwise/depthwise_weights'] == [3, 3, 8, 1]
    assert shapes['h/loc/pointwise/weights'] == [1, 1, 8, 24]
    assert shapes['h/cls/pointwise/weights'] == [1, 1, 8, 12]
