"""Tests of nets/batch_norm.py: train mode statistics and updates, eval with moving stats."""
import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim

from nets import ssd_vgg
from nets.batch_norm import batch_norm

UPDATE_OPS = tf.compat.v1.GraphKeys.UPDATE_OPS


def _variable(name):
    """The global variable called `name` in the default graph."""
    return [v for v in tf.compat.v1.global_variables() if v.op.name == name][0]


def _inputs():
    rng = np.random.default_rng(0)
    return (rng.normal(3.0, 2.0, [4, 5, 5, 3]) * [1.0, 2.0, 0.5]).astype(np.float32)


def test_train_mode_normalises_and_updates_moving_stats():
    x = _inputs()
    with tf.Graph().as_default():
        y = batch_norm(tf.constant(x), decay=0.9, scale=True, is_training=True)
        updates = tf.compat.v1.get_collection(UPDATE_OPS)
        assert len(updates) == 2
        names = sorted(v.op.name for v in tf.compat.v1.global_variables())
        assert names == ['BatchNorm/beta', 'BatchNorm/gamma', 'BatchNorm/moving_mean',
                         'BatchNorm/moving_variance']
        assert sorted(v.op.name for v in tf.compat.v1.trainable_variables()) == [
            'BatchNorm/beta', 'BatchNorm/gamma']
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            y_v = sess.run(y)
            sess.run(updates)
            mean, var = sess.run([_variable('BatchNorm/moving_mean'),
                                  _variable('BatchNorm/moving_variance')])
    flat = x.reshape(-1, 3)
    np.testing.assert_allclose(y_v.reshape(-1, 3).mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(y_v.reshape(-1, 3).std(0), 1.0, atol=1e-3)
    np.testing.assert_allclose(mean, 0.1 * flat.mean(0), rtol=1e-4)
    # The fused kernel feeds the unbiased (n - 1) batch variance to the moving average.
    np.testing.assert_allclose(var, 0.9 + 0.1 * flat.var(0, ddof=1), rtol=1e-4)


def test_eval_mode_uses_moving_stats():
    x = _inputs()
    with tf.Graph().as_default():
        y = batch_norm(tf.constant(x), scale=True, epsilon=0.001, is_training=False)
        assert not tf.compat.v1.get_collection(UPDATE_OPS)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run([tf.compat.v1.assign(v, value) for v, value in zip(
                tf.compat.v1.global_variables(),
                [np.full(3, 0.5), np.full(3, 2.0), np.array([1.0, 2.0, 3.0]),
                 np.array([4.0, 1.0, 0.25])])])
            y_v = sess.run(y)
    expected = (x - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 0.001) * 2.0 + 0.5
    np.testing.assert_allclose(y_v, expected, rtol=1e-4, atol=1e-4)


def test_updates_collections_none_updates_in_place():
    x = _inputs()
    with tf.Graph().as_default():
        y = batch_norm(tf.constant(x), decay=0.5, updates_collections=None, is_training=True)
        assert not tf.compat.v1.get_collection(UPDATE_OPS)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(y)
            mean = sess.run(_variable('BatchNorm/moving_mean'))
    np.testing.assert_allclose(mean, 0.5 * x.reshape(-1, 3).mean(0), rtol=1e-4)


def test_arg_scope_with_slim_conv2d():
    with tf.Graph().as_default():
        inputs = tf.zeros([1, 8, 8, 3])
        with slim.arg_scope([batch_norm], is_training=False, scale=True):
            net = slim.conv2d(inputs, 4, [3, 3], normalizer_fn=batch_norm, scope='conv')
        assert net.shape.as_list() == [1, 8, 8, 4]
        names = sorted(v.op.name for v in tf.compat.v1.global_variables())
        assert names == ['conv/BatchNorm/beta', 'conv/BatchNorm/gamma',
                         'conv/BatchNorm/moving_mean', 'conv/BatchNorm/moving_variance',
                         'conv/weights']
        assert not tf.compat.v1.get_collection(UPDATE_OPS)


def test_bad_inputs():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match='NHWC'):
            batch_norm(tf.zeros([2, 3]))
        with pytest.raises(ValueError, match='is_training'):
            batch_norm(tf.zeros([1, 2, 2, 3]), is_training=tf.constant(True))


def _conv_bn(layer, fold):
    """Output of `layer(inputs)` with batch norm (random statistics) in inference mode, and
    the graph's op types; `fold_into_conv` = fold."""
    rng = np.random.default_rng(2)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        inputs = tf.constant(rng.normal(size=[2, 9, 9, 4]).astype(np.float32))
        with slim.arg_scope([batch_norm], is_training=False, scale=True, fold_into_conv=fold):
            outputs = layer(inputs)
        types = [op.type for op in tf.compat.v1.get_default_graph().get_operations()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.global_variables():
                if 'BatchNorm' in v.op.name:
                    low = 0.5 if v.op.name.endswith(('variance', 'gamma')) else -0.5
                    v.load(rng.uniform(low, low + 1.0, v.shape.as_list()), sess)
            return sess.run(outputs), types, outputs.op.type


@pytest.mark.parametrize('layer', [
    lambda x: slim.conv2d(x, 6, [3, 3], stride=2, normalizer_fn=batch_norm,
                          activation_fn=tf.nn.relu6, scope='conv'),
    lambda x: slim.separable_conv2d(x, None, [3, 3], depth_multiplier=2, stride=2,
                                    normalizer_fn=batch_norm, scope='depthwise'),
    lambda x: ssd_vgg.dilated_conv2d(x, 5, 3, rate=2, normalizer_fn=batch_norm,
                                     activation_fn=None, scope='dilated'),
], ids=['conv', 'depthwise', 'dilated'])
def test_inference_batch_norm_folds_into_the_convolution(layer):
    folded, types, last = _conv_bn(layer, True)
    unfolded, unfolded_types, _ = _conv_bn(layer, False)
    np.testing.assert_allclose(folded, unfolded, rtol=1e-5, atol=1e-5)
    assert 'FusedBatchNormV3' in unfolded_types and 'FusedBatchNormV3' not in types
    assert last in ('BiasAdd', 'Relu', 'Relu6')


def test_batch_norm_of_a_convolution_used_elsewhere_is_not_folded():
    with tf.Graph().as_default():
        conv = tf.nn.conv2d(tf.zeros([1, 4, 4, 3]), tf.ones([1, 1, 3, 3]), 1, 'SAME')
        tf.identity(conv)
        out = batch_norm(conv, is_training=False)
        assert out.op.type == 'FusedBatchNormV3'
