"""Tests for preprocessing/preprocessing_factory.py."""
import numpy as np
import pytest
import tensorflow as tf

from nets import nets_factory
from preprocessing import preprocessing_factory


@pytest.mark.parametrize('name', nets_factory.NETWORK_NAMES)
def test_sizes_and_normalization_agree_with_the_network_params(name):
    out_hw, normalization = preprocessing_factory.network_input(name)
    params = nets_factory.get_network(name).params
    assert out_hw == tuple(params.img_shape[:2])
    assert normalization == params.normalization


@pytest.mark.parametrize('is_training', [True, False])
def test_get_preprocessing_outputs_the_network_size(is_training):
    with tf.Graph().as_default():
        sample = {'image': tf.zeros([50, 70, 3], tf.uint8),
                  'boxes': tf.constant([[0.2, 0.2, 0.8, 0.8]]),
                  'labels': tf.constant([1], tf.int64)}
        out = preprocessing_factory.get_preprocessing('ssd_512_vgg', is_training)(sample)
        assert out['image'].shape.as_list() == [512, 512, 3]
        with tf.compat.v1.Session() as sess:
            image, labels = sess.run((out['image'], out['labels']))
    # vgg_mean: pixels in [0, 255] minus the mean; a black image stays black without augmentation.
    assert np.all(image >= -123.0 - 1e-3) and np.all(image <= 255.0 - 104.0 + 1e-3)
    if not is_training:
        np.testing.assert_allclose(image, np.broadcast_to([-123.0, -117.0, -104.0], image.shape))
    assert len(labels) <= 1


def test_unknown_network_is_a_clear_error():
    with pytest.raises(ValueError, match='Unknown network .*ssd_300_vgg'):
        preprocessing_factory.get_preprocessing('ssd_1000', is_training=False)
