"""Tests of nets/ssd_vgg.py: variable names against fixtures and slim's vgg_16, restore, shapes."""
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import vgg

from nets import nets_factory, ssd_vgg

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'


def _build(name, batch=1, **kwargs):
    network = nets_factory.get_network(name, **kwargs)
    height, width = network.params.img_shape
    inputs = tf.compat.v1.placeholder(tf.float32, [batch, height, width, 3])
    with slim.arg_scope(network.arg_scope()):
        outputs = network.net(inputs)
    return network, inputs, outputs


def _read_fixture(name):
    lines = (FIXTURES / ('%s_variables.txt' % name)).read_text().splitlines()
    return [(n, tuple(int(d) for d in shape.split(',')))
            for n, shape in (line.split() for line in lines if not line.startswith('#'))]


@pytest.mark.parametrize('name', ['ssd_300_vgg', 'ssd_512_vgg'])
def test_variables_match_fixture(name):
    with tf.Graph().as_default():
        _build(name)
        got = [(v.op.name, tuple(v.shape.as_list())) for v in tf.compat.v1.global_variables()]
    assert got == _read_fixture(name)


def test_backbone_names_match_slim_vgg_16():
    with tf.Graph().as_default():
        vgg.vgg_16(tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3]))
        slim_vars = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()
                     if not v.op.name.startswith(('vgg_16/fc',))}
    with tf.Graph().as_default():
        _build('ssd_300_vgg')
        ours = {v.op.name.replace('ssd_300_vgg/', 'vgg_16/', 1): v.shape.as_list()
                for v in tf.compat.v1.global_variables()}
    assert len(slim_vars) == 26
    for name, shape in slim_vars.items():
        assert ours[name] == shape, name
    assert 'vgg_16/fc6/weights' not in ours and 'vgg_16/fc7/weights' not in ours


def test_restore_from_vgg_16_checkpoint_with_scope_remap(tmp_path):
    prefix = str(tmp_path / 'vgg_16.ckpt')
    with tf.Graph().as_default():
        vgg.vgg_16(tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3]))
        conv_vars = [v for v in tf.compat.v1.global_variables() if '/conv' in v.op.name]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.variables_initializer(conv_vars))
            saver = tf.compat.v1.train.Saver(conv_vars)
            saver.save(sess, prefix, write_meta_graph=False)
            expected = sess.run(conv_vars[-2])      # conv5_3 weights
    with tf.Graph().as_default():
        _build('ssd_300_vgg')
        restore = {v.op.name.replace('ssd_300_vgg/', 'vgg_16/', 1): v
                   for v in tf.compat.v1.global_variables() if '/conv' in v.op.name
                   and v.op.name.split('/')[1] in ('conv1', 'conv2', 'conv3', 'conv4', 'conv5')}
        assert len(restore) == 26
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver(restore).restore(sess, prefix)
            got = sess.run(restore['vgg_16/conv5/conv5_3/weights'])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize('name', ['ssd_300_vgg', 'ssd_512_vgg'])
def test_feature_shapes_equal_params(name):
    with tf.Graph().as_default():
        network, _, (logits, locs, end_points) = _build(name, batch=2)
        for layer, shape in zip(network.params.feat_layers, network.params.feat_shapes):
            assert end_points['feature/' + layer].shape.as_list()[1:3] == list(shape)
        num_anchors = len(network.anchors())
        assert logits.shape.as_list() == [2, num_anchors, 21]
        assert locs.shape.as_list() == [2, num_anchors, 4]
        # One L2 term per conv weight (13 VGG convs, conv6, conv7, 2 per extra layer and
        # 2 per head), none on the L2-norm scale.
        num_layers = len(network.params.feat_layers)
        assert len(tf.compat.v1.losses.get_regularization_losses()) == (
            15 + 2 * (num_layers - 2) + 2 * num_layers)


def test_forward_pass_and_l2_norm_scale():
    with tf.Graph().as_default():
        _, inputs, (logits, locs, _) = _build('ssd_300_vgg', num_classes=4)
        scale = [v for v in tf.compat.v1.global_variables()
                 if v.op.name == 'ssd_300_vgg/conv4_3_norm/scale'][0]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            image = np.random.default_rng(0).uniform(-120, 130, [1, 300, 300, 3])
            logits_v, locs_v, scale_v = sess.run([logits, locs, scale], {inputs: image})
    assert logits_v.shape == (1, 8732, 4) and locs_v.shape == (1, 8732, 4)
    assert np.all(np.isfinite(logits_v)) and np.all(np.isfinite(locs_v))
    np.testing.assert_array_equal(scale_v, np.full(512, 20.0))


def test_dilated_conv2d_equals_slim_atrous_conv():
    x = np.random.default_rng(0).normal(size=[2, 19, 19, 4]).astype(np.float32)
    with tf.Graph().as_default():
        ours = ssd_vgg.dilated_conv2d(tf.constant(x), 3, 3, rate=6,
                                      weights_regularizer=slim.l2_regularizer(0.1), scope='a')
        reference = slim.conv2d(tf.constant(x), 3, [3, 3], rate=6, scope='b')
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        assert variables['a/weights'].shape.as_list() == [3, 3, 4, 3]
        assert variables['a/biases'].shape.as_list() == [3]
        assert len(tf.compat.v1.losses.get_regularization_losses()) == 1
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run([variables['b/weights'].assign(variables['a/weights']),
                      variables['b/biases'].assign(tf.ones([3]))])
            sess.run(variables['a/biases'].assign(tf.ones([3])))
            ours_v, reference_v = sess.run([ours, reference])
    np.testing.assert_allclose(ours_v, reference_v, rtol=1e-5, atol=1e-5)
