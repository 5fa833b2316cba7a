"""Tests for preprocessing/image_ops.py."""
import numpy as np
import pytest
import tensorflow as tf

from preprocessing import image_ops


def _run(tensor):
    with tf.compat.v1.Session() as sess:
        return sess.run(tensor)


def _image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


@pytest.mark.parametrize('in_hw,out_hw', [((9, 7), (20, 30)), ((50, 60), (17, 23)),
                                          ((3, 3), (3, 3))])
def test_full_window_equals_tf_image_resize(in_hw, out_hw):
    image = _image(*in_hw)
    with tf.Graph().as_default():
        ours, reference = _run((
            image_ops.crop_and_resize_image(image, image_ops.FULL_WINDOW, out_hw),
            tf.image.resize(image, out_hw, method='bilinear')))
    assert ours.shape == out_hw + (3,)
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_window_of_the_right_half_picks_the_right_column():
    # Output column 0 samples x = 0.5 + 0.5 * 0.5 = 0.75, pixel coordinate 0.75 * 2 - 0.5 = 1.
    image = _image(2, 2)
    with tf.Graph().as_default():
        out = _run(image_ops.crop_and_resize_image(image, [0.0, 0.5, 1.0, 1.0], (2, 1)))
    np.testing.assert_allclose(out, image[:, 1:2].astype(np.float32), atol=1e-3)


def test_zoom_out_window_places_the_image_on_a_fill_canvas():
    # Window [-1, 2] of a 4-pixel side at 12 outputs: output i samples pixel i - 4.
    image = _image(4, 4)
    fill = (10.0, 20.0, 30.0)
    with tf.Graph().as_default():
        out = _run(image_ops.crop_and_resize_image(image, [-1.0, -1.0, 2.0, 2.0], (12, 12), fill))
    np.testing.assert_allclose(out[4:8, 4:8], image, atol=1e-3)
    for border in (out[:3], out[9:], out[:, :3], out[:, 9:]):
        np.testing.assert_allclose(border, np.broadcast_to(fill, border.shape), atol=1e-3)


def test_reversed_window_mirrors():
    image = _image(5, 6)
    with tf.Graph().as_default():
        out = _run(image_ops.crop_and_resize_image(image, [0.0, 1.0, 1.0, 0.0], (5, 6)))
    np.testing.assert_allclose(out, image[:, ::-1].astype(np.float32), atol=1e-3)


def test_normalize_image_hand_values_and_error():
    with tf.Graph().as_default():
        pixel = tf.constant([[0.0, 127.5, 255.0]])
        vgg, unit = _run((image_ops.normalize_image(pixel, 'vgg_mean'),
                          image_ops.normalize_image(pixel, 'minus_one_to_one')))
    np.testing.assert_allclose(vgg, [[-123.0, 10.5, 151.0]])
    np.testing.assert_allclose(unit, [[-1.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match='unknown normalization'):
        image_ops.normalize_image(tf.zeros([1, 3]), 'caffe')
