"""Tests for preprocessing/color_distortion.py."""
import numpy as np
import tensorflow as tf

from preprocessing import color_distortion


def _distort(image, seeds, probability):
    with tf.Graph().as_default():
        seed = tf.compat.v1.placeholder(tf.int32, [2])
        out = color_distortion.distort_color(tf.constant(image), seed, probability)
        with tf.compat.v1.Session() as sess:
            return [sess.run(out, {seed: s}) for s in seeds]


def _image():
    return np.random.default_rng(0).uniform(0.0, 255.0, (16, 16, 3)).astype(np.float32)


def test_probability_zero_is_the_identity():
    out, = _distort(_image(), [[1, 2]], probability=0.0)
    np.testing.assert_allclose(out, _image(), atol=1e-3)


def test_distortions_stay_in_range_vary_and_repeat_per_seed():
    seeds = [[i, 5] for i in range(20)]
    first = _distort(_image(), seeds, probability=1.0)
    second = _distort(_image(), seeds, probability=1.0)
    for a, b in zip(first, second):
        assert a.min() >= 0.0 and a.max() <= 255.0
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - _image()).mean() > 1.0
    assert len({a.tobytes() for a in first}) == len(seeds)


def test_gray_stays_gray():
    # Brightness and contrast act on all channels alike; saturation and hue leave gray unchanged.
    gray = np.repeat(np.linspace(0.0, 255.0, 64, dtype=np.float32).reshape(8, 8, 1), 3, axis=2)
    for out in _distort(gray, [[i, 9] for i in range(10)], probability=1.0):
        np.testing.assert_allclose(out[:, :, 0], out[:, :, 1], atol=0.5)
        np.testing.assert_allclose(out[:, :, 0], out[:, :, 2], atol=0.5)
