"""Tests of nets/ssd_vgg.py: variable names against fixtures and slim's vgg_16, restore, shapes."""
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import vgg

from nets import nets_factory, ssd_vgg

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'


def _build(name, batch=1, weight_decay=0.0005, **kwargs):
    network = nets_factory.get_network(name, **kwargs)
    height, width = network.params.img_shape
    inputs = tf.compat.v1.placeholder(tf.float32, [batch, height, width, 3])
    outputs = network.net(inputs, weight_decay=weight_decay)
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


def test_batch_norm_vgg_has_batch_norm_after_every_feature_conv():
    with tf.Graph().as_default():
        network, _, (logits, _, _) = _build('ssd_300_vgg_bn', num_classes=4)
        names = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    plain = dict(_read_fixture('ssd_300_vgg'))
    convs = [n[:-len('/weights')] for n in plain if n.endswith('/weights') and '_box/' not in n]
    assert len(convs) == 13 + 2 + 2 * 4
    for conv in (c.replace('ssd_300_vgg/', 'ssd_300_vgg_bn/', 1) for c in convs):
        assert conv + '/biases' not in names
        depth = names[conv + '/weights'][-1]
        for variable in ('beta', 'gamma', 'moving_mean', 'moving_variance'):
            assert names['%s/BatchNorm/%s' % (conv, variable)] == [depth]
    # The prediction heads keep their biases and have no batch norm.
    assert names['ssd_300_vgg_bn/conv4_3_box/cls/biases'] == [4 * 4]
    assert not any('_box/' in n and 'BatchNorm' in n for n in names)
    assert network.params.normalization.name == 'vgg_mean'
    assert logits.shape.as_list() == [1, 8732, 4]


def test_dilated_conv2d_with_a_normalizer_has_no_biases():
    x = np.random.default_rng(0).normal(size=[2, 19, 19, 4]).astype(np.float32)
    with tf.Graph().as_default():
        out = ssd_vgg.dilated_conv2d(tf.constant(x), 3, 3, rate=6, activation_fn=None,
                                     normalizer_fn=lambda t: t * 0.0 + 1.0, scope='a')
        names = [v.op.name for v in tf.compat.v1.global_variables()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            out_v = sess.run(out)
    assert names == ['a/weights']
    np.testing.assert_array_equal(out_v, np.ones([2, 19, 19, 3]))


@pytest.mark.slow
def test_from_scratch_gradient_scales_plain_and_batch_norm():
    """Why plain VGG hardly learns from scratch with SGD (docs/training.md, "Training VGG from
    scratch").

    At initialisation the conv4_3 branch, rescaled to norm 20 by the L2 normalisation, gets
    gradients hundreds of times larger than conv5 and thousands of times larger than the
    extra layers, whose Xavier-initialised activations have shrunk layer after layer; with
    batch norm the layers' gradients stay within a factor of ten of each other.
    """
    def gradients(name):
        network = nets_factory.get_network(name, num_classes=6)
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(0)
            image = np.random.default_rng(0).uniform(-120, 130, [2, 300, 300, 3])
            logits, _, end_points = network.net(tf.constant(image, tf.float32),
                                                is_training=True)
            loss = tf.reduce_mean(tf.square(logits))
            layers = ('conv4/conv4_3', 'conv5/conv5_1', 'conv8/conv8_2')
            weights = [tf.compat.v1.get_default_graph().get_tensor_by_name(
                '%s/%s/weights:0' % (name, layer)) for layer in layers]
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                norms, conv8 = sess.run([[tf.norm(g) for g in tf.gradients(loss, weights)],
                                         tf.math.reduce_std(end_points['conv8'])])
        return dict(zip(('conv4_3', 'conv5_1', 'conv8_2'), norms)), conv8

    plain, plain_conv8 = gradients('ssd_300_vgg')
    batch_norm, bn_conv8 = gradients('ssd_300_vgg_bn')
    assert plain['conv4_3'] / plain['conv5_1'] > 50
    assert plain['conv4_3'] / plain['conv8_2'] > 1000
    assert batch_norm['conv4_3'] / batch_norm['conv5_1'] < 20
    assert batch_norm['conv4_3'] / batch_norm['conv8_2'] < 20
    # The activations of the first extra layer: shrunk to ~1/3000 of the input scale vs ~0.6.
    assert plain_conv8 < 0.1 < bn_conv8


@pytest.mark.parametrize('native', [True, False])
def test_dilated_conv2d_paths_agree(native):
    """The native and the space-to-batch paths compute relu(atrous conv) alike."""
    x = np.random.default_rng(1).normal(size=[1, 19, 19, 4]).astype(np.float32)
    with tf.Graph().as_default():
        inputs = tf.constant(x)
        ours = ssd_vgg.dilated_conv2d(inputs, 3, 3, rate=6, scope='a', native_dilations=native)
        weights, biases = tf.compat.v1.global_variables()
        reference = tf.nn.relu(tf.nn.bias_add(tf.nn.convolution(
            inputs, weights, padding='SAME', dilations=6), biases))
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            got, want = session.run([ours, reference])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_training_graph_has_gradients_on_this_machine():
    """conv6 of a training graph takes a path TensorFlow can differentiate here, with or
    without oneDNN."""
    with tf.Graph().as_default():
        network = nets_factory.get_network('ssd_300_vgg')
        inputs = tf.constant(np.random.default_rng(2).normal(size=[1, 300, 300, 3]), tf.float32)
        logits, _, _ = network.net(inputs, is_training=True)
        conv6 = [v for v in tf.compat.v1.trainable_variables() if 'conv6' in v.op.name]
        gradients = tf.gradients(tf.reduce_sum(logits), conv6)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = session.run(gradients)
    assert all(np.all(np.isfinite(g)) for g in values)
