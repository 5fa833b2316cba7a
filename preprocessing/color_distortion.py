"""SSD photometric distortion (TF graph ops, stateless random)."""
import functools

import tensorflow as tf

# Caffe SSD / ssd.pytorch settings; each distortion is applied with probability 0.5.
BRIGHTNESS_DELTA = 32.0 / 255.0
CONTRAST_RANGE = (0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA = 18.0 / 360.0

# fn(image [H, W, 3] in [0, 1], seed [2]) -> image.
DISTORTIONS = (
    lambda x, s: tf.image.stateless_random_brightness(x, BRIGHTNESS_DELTA, s),
    lambda x, s: tf.image.stateless_random_contrast(x, *CONTRAST_RANGE, seed=s),
    lambda x, s: tf.image.stateless_random_saturation(x, *SATURATION_RANGE, seed=s),
    lambda x, s: tf.image.stateless_random_hue(x, HUE_DELTA, s),
)


def _clipped(distortion, pixels, seed):
    return tf.clip_by_value(distortion(pixels, seed), 0.0, 1.0)


def _apply_one(pixels, index, seed):
    """Applies DISTORTIONS[index] (a scalar tensor) to pixels in [0, 1]."""
    branches = [functools.partial(_clipped, fn, pixels, seed) for fn in DISTORTIONS]
    return tf.switch_case(index, branches)


def distort_color(image, seed, probability=0.5):
    """Brightness, contrast, saturation and hue, each with `probability`, in random order.

    Args:
      image: float32 [H, W, 3] RGB in [0, 255].
      seed: int32 [2] stateless seed.
      probability: chance of applying each distortion.
    Returns:
      float32 [H, W, 3] clipped to [0, 255].
    """
    count = len(DISTORTIONS)
    seeds = tf.random.experimental.stateless_split(seed, 2 * count + 1)
    order = tf.random.experimental.stateless_shuffle(tf.range(count), seeds[0])
    pixels = image / 255.0
    for step in range(count):
        apply = tf.random.stateless_uniform([], seeds[1 + step]) < probability
        distort = functools.partial(_apply_one, pixels, order[step], seeds[1 + count + step])
        pixels = tf.cond(apply, distort, functools.partial(tf.identity, pixels))
    return pixels * 255.0
