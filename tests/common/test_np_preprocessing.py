"""Tests for common/np_preprocessing.py and its TF twin."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from common import normalization, np_preprocessing
from preprocessing import image_ops


def test_imports_without_tensorflow():
    code = ('import sys; import common.np_preprocessing; '
            'assert "tensorflow" not in sys.modules, "tensorflow imported"')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_normalize_hand_values():
    pixel = np.array([[0.0, 127.5, 255.0]])
    np.testing.assert_allclose(np_preprocessing.normalize(pixel, 'vgg_mean'),
                               [[-123.0, 10.5, 151.0]])
    np.testing.assert_allclose(np_preprocessing.normalize(pixel, 'minus_one_to_one'),
                               [[-1.0, 0.0, 1.0]])
    for kind in normalization.KINDS.values():
        np.testing.assert_allclose(
            np_preprocessing.denormalize(np_preprocessing.normalize(pixel, kind), kind), pixel,
            atol=1e-4)


def test_unknown_normalization_is_a_clear_error():
    with pytest.raises(ValueError, match='unknown normalization'):
        np_preprocessing.normalize(np.zeros((1, 3)), 'imagenet')


@pytest.mark.parametrize('in_hw,out_hw', [((37, 53), (30, 30)), ((10, 13), (30, 30)),
                                          ((375, 500), (300, 300)), ((64, 64), (32, 32)),
                                          ((1, 1), (5, 4))])
@pytest.mark.parametrize('normalization', ['vgg_mean', 'minus_one_to_one'])
def test_numpy_matches_tf_within_one_level(in_hw, out_hw, normalization):
    """TF and numpy eval preprocessing agree within 1/255 of the [0, 255] pixel range.

    In normalised units that is 1.0 for 'vgg_mean' (pixel levels) and 2/255
    for 'minus_one_to_one'. The observed difference is far smaller (float
    rounding), so the test also asserts 1/20 of that.
    """
    rng = np.random.default_rng(sum(in_hw))
    image = rng.integers(0, 256, in_hw + (3,), dtype=np.uint8)
    with tf.Graph().as_default():
        tf_out = image_ops.eval_preprocess_image(tf.constant(image), out_hw, normalization)
        with tf.compat.v1.Session() as sess:
            expected = sess.run(tf_out)
    actual = np_preprocessing.preprocess_image(image, out_hw, normalization)
    assert actual.shape == expected.shape == out_hw + (3,)
    assert actual.dtype == np.float32
    level = 1.0 if normalization == 'vgg_mean' else 2.0 / 255.0
    difference = np.abs(actual - expected).max()
    assert difference <= level
    assert difference <= level / 20.0


def test_preprocess_image_rejects_non_rgb():
    with pytest.raises(ValueError, match='RGB image'):
        np_preprocessing.preprocess_image(np.zeros((4, 4), np.uint8), (2, 2), 'vgg_mean')


def test_to_rgb_uint8_conversions():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = np_preprocessing.to_rgb_uint8(gray)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[:, :, 1], gray)
    rgba = np.dstack([np.full((2, 2, 3), 7, np.uint8), np.zeros((2, 2), np.uint8)])
    np.testing.assert_array_equal(np_preprocessing.to_rgb_uint8(rgba), np.full((2, 2, 3), 7))
    gray_alpha = np.dstack([np.full((2, 2), 9, np.uint8), np.full((2, 2), 255, np.uint8)])
    np.testing.assert_array_equal(np_preprocessing.to_rgb_uint8(gray_alpha), np.full((2, 2, 3), 9))
    deep = np.array([[0, 257 * 200, 65535]], np.uint16)
    np.testing.assert_array_equal(np_preprocessing.to_rgb_uint8(deep)[0, :, 0], [0, 200, 255])
    unit = np.array([[0.0, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(np_preprocessing.to_rgb_uint8(unit)[0, :, 2], [0, 128, 255])
    mask = np.array([[True, False]])
    np.testing.assert_array_equal(np_preprocessing.to_rgb_uint8(mask)[0, :, 0], [255, 0])


@pytest.mark.parametrize('array,message', [
    (np.zeros((2, 2, 5), np.uint8), '1-4 channels'),
    (np.zeros((2,), np.uint8), '1-4 channels'),
    (np.zeros((0, 2, 3), np.uint8), '1-4 channels'),
    (np.full((2, 2), 3.0, np.float32), r'\[0, 1\]'),
    (np.zeros((2, 2), np.int64), 'unsupported image dtype'),
])
def test_to_rgb_uint8_errors(array, message):
    with pytest.raises(ValueError, match=message):
        np_preprocessing.to_rgb_uint8(array)


def test_bgr_normalization_reverses_the_channels_in_numpy_and_tf():
    caffe = normalization.Normalization('caffe_bgr', (104.0, 117.0, 123.0), (1.0, 1.0, 1.0),
                                        'bgr')
    pixel = np.array([[10.0, 20.0, 30.0]], np.float32)
    np.testing.assert_allclose(np_preprocessing.normalize(pixel, caffe), [[-74.0, -97.0, -113.0]])
    np.testing.assert_allclose(np_preprocessing.denormalize(
        np_preprocessing.normalize(pixel, caffe), caffe), pixel)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        np.testing.assert_allclose(session.run(image_ops.normalize_image(pixel, caffe)),
                                   [[-74.0, -97.0, -113.0]])
