"""SSD training and evaluation preprocessing of one sample dict (TF graph ops).

Works inside tf.data `map` (graph mode, no py_function) with any number of
boxes, including zero. Training: photometric distortion, zoom-out, the
min-IoU crop sampler and a horizontal flip (Liu et al., 2016, sec. 3.6),
resampled once to the network size, then normalised. Evaluation: resize and
normalise only, exactly as training does.
"""
import tensorflow as tf

from common import fields
from preprocessing import box_sampling, color_distortion, image_ops


def _random_seed():
    """A fresh int32 [2] stateless seed from the stateful generator."""
    return tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)


def preprocess_for_train(sample, out_hw, normalization, seed=None):
    """Augments one training sample.

    Args:
      sample: dict with `image` uint8 [H, W, 3], `boxes` float32 [N, 4]
        (ymin, xmin, ymax, xmax normalised) and optionally `labels`,
        `difficult`, `truncated` [N]; other keys are passed through.
      out_hw: (height, width) of the network input, python ints.
      normalization: common.normalization.Normalization or its name.
      seed: optional int32 [2] stateless seed (tests); drawn at random if None.
    Returns:
      dict like `sample` with `image` float32 [out_h, out_w, 3] normalised,
      `boxes` float32 [K, 4] in [0, 1] with ymin < ymax and xmin < xmax, and
      the per-box fields gathered to the same K boxes.
    """
    seeds = tf.random.experimental.stateless_split(_random_seed() if seed is None else seed, 2)
    boxes = tf.reshape(tf.cast(sample[fields.BOXES], tf.float32), [-1, 4])
    image = color_distortion.distort_color(tf.cast(sample[fields.IMAGE], tf.float32), seeds[0])
    window, boxes, kept = box_sampling.sample_geometry(boxes, seeds[1])
    image = image_ops.crop_and_resize_image(image, window, out_hw)
    output = dict(sample)
    output[fields.IMAGE] = image_ops.normalize_image(image, normalization)
    output[fields.BOXES] = boxes
    for key in fields.PER_BOX_FIELDS:
        if key in sample:
            output[key] = tf.gather(sample[key], kept)
    return output


def preprocess_for_eval(sample, out_hw, normalization):
    """Resizes and normalises the image of one sample; boxes are unchanged.

    Args:
      sample: dict with `image` uint8 [H, W, 3]; other keys are passed through.
      out_hw: (height, width) of the network input, python ints.
      normalization: common.normalization.Normalization or its name.
    Returns:
      dict like `sample` with `image` float32 [out_h, out_w, 3].
    """
    output = dict(sample)
    output[fields.IMAGE] = image_ops.eval_preprocess_image(sample[fields.IMAGE], out_hw,
                                                          normalization)
    return output
