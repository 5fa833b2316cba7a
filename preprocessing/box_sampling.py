"""SSD geometric augmentation on box coordinates (TF graph ops).

Zoom-out, the min-IoU crop sampler and the horizontal flip are computed as a
single window of the original image (normalised [ymin, xmin, ymax, xmax], may
extend beyond [0, 1] after zoom-out, x reversed after a flip), so the image is
resampled once (`image_ops.crop_and_resize_image`). Numbers from Liu et al.,
2016, sec. 2.2 and 3.6, and the original Caffe release.
"""
import tensorflow as tf

from nets import box_coding
from preprocessing.image_ops import FULL_WINDOW

# The paper's sampler: keep the image, one of these minimum IoUs, or any crop.
MIN_IOUS = (0.1, 0.3, 0.5, 0.7, 0.9)
KEEP_IMAGE = -1.0


def _uniform(shape, seed, minval=0.0, maxval=1.0):
    return tf.random.stateless_uniform(shape, seed, minval=minval, maxval=maxval)


def boxes_in_window(boxes, window):
    """Expresses boxes in the coordinates of `window` (both in the same frame).

    Args:
      boxes: float32 [N, 4]; window: float32 [4].
    Returns:
      float32 [N, 4].
    """
    origin = tf.stack([window[0], window[1], window[0], window[1]])
    size = tf.stack([window[2] - window[0], window[3] - window[1]] * 2)
    return (boxes - origin) / size


def compose_windows(outer, inner):
    """Maps `inner` (given in `outer`'s coordinates) to `outer`'s frame. [4], [4] -> [4]."""
    origin = tf.stack([outer[0], outer[1], outer[0], outer[1]])
    size = tf.stack([outer[2] - outer[0], outer[3] - outer[1]] * 2)
    return origin + inner * size


def sample_zoom_out(seed, max_ratio=4.0, probability=0.5):
    """Samples the zoom-out canvas: the image placed on a canvas up to `max_ratio` times larger.

    Args:
      seed: int32 [2] stateless seed.
      max_ratio: largest canvas side / image side.
      probability: chance of zooming out at all.
    Returns:
      float32 [4], the canvas as a window of the image (contains [0, 0, 1, 1]).
    """
    seeds = tf.random.experimental.stateless_split(seed, 3)
    apply = _uniform([], seeds[0]) < probability
    ratio = tf.where(apply, _uniform([], seeds[1], 1.0, max_ratio), 1.0)
    # Offset of the image inside the canvas, in canvas units: [0, 1 - 1 / ratio].
    offset = _uniform([2], seeds[2]) * (1.0 - 1.0 / ratio)
    top_left = -offset * ratio
    return tf.concat([top_left, top_left + ratio], axis=0)


def sample_min_iou(seed, min_ious=MIN_IOUS):
    """Chooses uniformly among the sampler's options (Liu et al., 2016, sec. 3.6).

    Args:
      seed: int32 [2] stateless seed.
      min_ious: the minimum-IoU options.
    Returns:
      float32 scalar: KEEP_IMAGE, one of `min_ious`, or 0.0 (any crop).
    """
    options = tf.constant((KEEP_IMAGE,) + tuple(min_ious) + (0.0,), tf.float32)
    index = tf.random.stateless_uniform([], seed, maxval=len(min_ious) + 2, dtype=tf.int32)
    return tf.gather(options, index)


def sample_crop_window(boxes, min_iou, seed, num_trials=50, min_scale=0.3, max_scale=1.0,
                       min_aspect=0.5, max_aspect=2.0):
    """Samples a crop with IoU >= `min_iou` with some box.

    Draws `num_trials` crops (scale and aspect ratio as in Caffe's
    BatchSampler) and takes the first one that overlaps some box with IoU
    >= `min_iou` and contains at least one box centre (when there are boxes);
    if none qualifies, or `min_iou` is KEEP_IMAGE, the whole image is kept.

    Args:
      boxes: float32 [N, 4], N may be 0.
      min_iou: float32 scalar from `sample_min_iou`.
      seed: int32 [2] stateless seed.
    Returns:
      float32 [4] crop window in [0, 1].
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    scale = _uniform([num_trials], seeds[0], min_scale, max_scale)
    low = tf.maximum(min_aspect, tf.square(scale))
    high = tf.minimum(max_aspect, 1.0 / tf.square(scale))
    aspect = low + _uniform([num_trials], seeds[1]) * (high - low)
    height = tf.minimum(scale / tf.sqrt(aspect), 1.0)
    width = tf.minimum(scale * tf.sqrt(aspect), 1.0)
    ymin = _uniform([num_trials], seeds[2]) * (1.0 - height)
    xmin = _uniform([num_trials], seeds[3]) * (1.0 - width)
    candidates = tf.stack([ymin, xmin, ymin + height, xmin + width], axis=1)

    has_boxes = tf.shape(boxes)[0] > 0
    overlaps = tf.reduce_any(box_coding.iou(candidates, boxes) >= min_iou, axis=1)
    iou_ok = tf.logical_or(overlaps, min_iou <= 0.0)
    centre_ok = tf.logical_or(tf.reduce_any(centres_inside(boxes, candidates), axis=1),
                              tf.logical_not(has_boxes))
    ok = tf.logical_and(iou_ok, centre_ok)
    first = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
    use_crop = tf.logical_and(min_iou >= 0.0, tf.reduce_any(ok))
    return tf.where(use_crop, candidates[first], tf.constant(FULL_WINDOW))


def centres_inside(boxes, windows):
    """Whether each box centre lies strictly inside each window.

    Args:
      boxes: float32 [N, 4]; windows: float32 [M, 4].
    Returns:
      bool [M, N].
    """
    cy = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cx = (boxes[:, 1] + boxes[:, 3]) / 2.0
    return tf.logical_and(
        tf.logical_and(cy[None, :] > windows[:, 0:1], cy[None, :] < windows[:, 2:3]),
        tf.logical_and(cx[None, :] > windows[:, 1:2], cx[None, :] < windows[:, 3:4]))


def crop_boxes(boxes, window):
    """Keeps the boxes whose centre is inside `window`, in its coordinates, clipped.

    Args:
      boxes: float32 [N, 4]; window: float32 [4].
    Returns:
      (boxes float32 [K, 4] in [0, 1] with positive extent, kept indices int32 [K]).
    """
    inside = centres_inside(boxes, window[None, :])[0]
    moved = tf.clip_by_value(boxes_in_window(boxes, window), 0.0, 1.0)
    valid = tf.logical_and(moved[:, 2] > moved[:, 0], moved[:, 3] > moved[:, 1])
    kept = tf.cast(tf.reshape(tf.where(tf.logical_and(inside, valid)), [-1]), tf.int32)
    return tf.gather(moved, kept), kept


def flip_boxes(boxes):
    """Mirrors boxes left-right: [N, 4] -> [N, 4]."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=1)


def flip_window(window):
    """Swaps a window's x bounds so resampling it mirrors the image: [4] -> [4]."""
    return tf.stack([window[0], window[3], window[2], window[1]])


def sample_geometry(boxes, seed, flip_probability=0.5):
    """Zoom-out, crop and flip for one image.

    Args:
      boxes: float32 [N, 4] in the image's normalised coordinates.
      seed: int32 [2] stateless seed.
    Returns:
      window: float32 [4], the region of the image that becomes the output
        (x reversed when flipped), for `image_ops.crop_and_resize_image`.
      boxes: float32 [K, 4] in output coordinates.
      kept: int32 [K], indices of the input boxes that survive.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    canvas = sample_zoom_out(seeds[0])
    canvas_boxes = boxes_in_window(boxes, canvas)
    crop = sample_crop_window(canvas_boxes, sample_min_iou(seeds[1]), seeds[3])
    out_boxes, kept = crop_boxes(canvas_boxes, crop)
    window = compose_windows(canvas, crop)
    flip = _uniform([], seeds[2]) < flip_probability
    out_boxes = tf.cond(flip, lambda: flip_boxes(out_boxes), lambda: out_boxes)
    window = tf.where(flip, flip_window(window), window)
    return window, out_boxes, kept
