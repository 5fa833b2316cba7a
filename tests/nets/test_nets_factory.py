"""Tests of nets/nets_factory.py and the SSDNet object (nets/ssd_net.py)."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from nets import anchors as anchors_lib
from nets import nets_factory


def test_registry():
    assert nets_factory.TRAINING_NETWORKS == ('ssd_300_mobilenet_v2', 'ssd_300_vgg',
                                              'ssd_300_vgg_bn', 'ssd_512_vgg')
    published = sorted(n for names in nets_factory.PUBLISHED_NETWORKS.values() for n in names)
    assert sorted(nets_factory.TRAINING_NETWORKS + tuple(published)) == list(
        nets_factory.NETWORK_NAMES)
    for name in nets_factory.NETWORK_NAMES:
        network = nets_factory.get_network(name, num_classes=6)
        assert network.name == name
        assert network.params.num_classes == 6
        assert len(network.anchors()) == anchors_lib.num_anchors(network.params)


def test_unknown_network():
    with pytest.raises(ValueError, match='ssd_300_vgg'):
        nets_factory.get_network('ssd_300_resnet')


def test_anchors_are_a_copy():
    network = nets_factory.get_network('ssd_300_vgg')
    network.anchors()[:] = 0
    assert network.anchors().max() > 0
    assert nets_factory.get_network('ssd_300_vgg').anchors().max() > 0


def test_network_is_immutable_and_anchors_follow_its_params():
    network = nets_factory.get_network('ssd_300_vgg')
    with pytest.raises(dataclasses.FrozenInstanceError):
        network.params = network.params._replace(img_shape=(600, 600))
    bigger = dataclasses.replace(network, params=network.params._replace(img_shape=(600, 600)))
    np.testing.assert_allclose(bigger.anchors()[:, 2:] - bigger.anchors()[:, :2],
                               (network.anchors()[:, 2:] - network.anchors()[:, :2]) / 2,
                               rtol=1e-5)


def test_wrong_input_size_is_a_clear_error():
    network = nets_factory.get_network('ssd_300_vgg')
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match='300, 300'):
            network.net(tf.zeros([1, 512, 512, 3]))


def test_decode_outputs():
    network = nets_factory.get_network('ssd_300_mobilenet_v2', num_classes=3)
    num_anchors = len(network.anchors())
    with tf.Graph().as_default():
        logits = tf.constant(np.random.default_rng(0).normal(size=[2, num_anchors, 3]),
                             tf.float32)
        scores, boxes = network.decode_outputs(logits, tf.zeros([2, num_anchors, 4]))
        with tf.compat.v1.Session() as sess:
            scores_v, boxes_v = sess.run([scores, boxes])
    np.testing.assert_allclose(scores_v.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(boxes_v[1], network.anchors(), atol=1e-6)


def test_scope_and_reuse():
    network = nets_factory.get_network('ssd_300_vgg', num_classes=2)
    with tf.Graph().as_default():
        inputs = tf.zeros([1, 300, 300, 3])
        network.net(inputs, scope='model')
        count = len(tf.compat.v1.global_variables())
        network.net(inputs, scope='model', reuse=True)
        assert len(tf.compat.v1.global_variables()) == count
        assert all(v.op.name.startswith('model/') for v in tf.compat.v1.global_variables())
        # The default scope (the network name) can be reused too.
        network.net(inputs)
        count = len(tf.compat.v1.global_variables())
        network.net(inputs, reuse=True)
        assert len(tf.compat.v1.global_variables()) == count
        assert any(v.op.name.startswith('ssd_300_vgg/') for v in tf.compat.v1.global_variables())


def test_params_that_disagree_with_the_graph_are_a_clear_error():
    network = nets_factory.get_network('ssd_300_vgg')
    bad_shapes = ((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (2, 2))
    network = dataclasses.replace(network, params=network.params._replace(feat_shapes=bad_shapes))
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match='conv11 has shape'):
            network.net(tf.zeros([1, 300, 300, 3]))
