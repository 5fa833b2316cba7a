"""TensorFlow SSD box coding (Liu et al., 2016, eq. 2) with prior scaling (variances).

Boxes are ymin, xmin, ymax, xmax. encode_boxes, decode_boxes and iou are the graph twins
of the numpy functions in common/np_box_ops.py, with the same formulas line for line (the
TensorFlow-free client cannot use these, the graph cannot use those);
tests/nets/test_box_coding.py checks that each pair agrees.
"""
import tensorflow as tf

from common.np_box_ops import MAX_LOG_SCALE, centers


# encode_boxes, decode_boxes and iou repeat common/np_box_ops.py's formulas in TensorFlow on
# purpose: the graph needs tensors, the TensorFlow-free client numpy (see the module docstring).
def encode_boxes(boxes, anchors, prior_scaling):
    """Encodes boxes relative to anchors.

    Args:
      boxes: float32 [..., A, 4].
      anchors: float32 [A, 4] (numpy or tensor).
      prior_scaling: 4 floats (y, x, h, w variances).

    Returns:
      float32 [..., A, 4] offsets (dy, dx, dh, dw); box sizes are floored at 1e-8.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    acy, acx, ah, aw = centers(tf.convert_to_tensor(anchors, tf.float32))
    cy, cx, h, w = centers(boxes)
    h = tf.maximum(h, 1e-8)
    w = tf.maximum(w, 1e-8)
    return tf.stack([(cy - acy) / ah / prior_scaling[0],
                     (cx - acx) / aw / prior_scaling[1],
                     tf.math.log(h / ah) / prior_scaling[2],
                     tf.math.log(w / aw) / prior_scaling[3]], axis=-1)


def decode_boxes(locs, anchors, prior_scaling):
    """Decodes offsets [..., A, 4] relative to anchors [A, 4] -> boxes [..., A, 4] yxyx.

    Scaled log-size offsets are capped at log(1000 / 16) so exp() cannot overflow.
    """
    locs = tf.convert_to_tensor(locs, tf.float32)
    acy, acx, ah, aw = centers(tf.convert_to_tensor(anchors, tf.float32))
    cy = locs[..., 0] * prior_scaling[0] * ah + acy
    cx = locs[..., 1] * prior_scaling[1] * aw + acx
    h = tf.exp(tf.minimum(locs[..., 2] * prior_scaling[2], MAX_LOG_SCALE)) * ah
    w = tf.exp(tf.minimum(locs[..., 3] * prior_scaling[3], MAX_LOG_SCALE)) * aw
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def iou(boxes_a, boxes_b):
    """Pairwise IoU of boxes_a [N, 4] and boxes_b [M, 4] -> [N, M] (0 for empty unions)."""
    boxes_a = tf.convert_to_tensor(boxes_a, tf.float32)
    boxes_b = tf.convert_to_tensor(boxes_b, tf.float32)
    ymin = tf.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    xmin = tf.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    ymax = tf.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
    xmax = tf.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
    inter = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)

    def _area(b):
        return tf.maximum(b[:, 2] - b[:, 0], 0.0) * tf.maximum(b[:, 3] - b[:, 1], 0.0)

    union = _area(boxes_a)[:, None] + _area(boxes_b)[None, :] - inter
    return tf.where(union > 0, inter / tf.maximum(union, 1e-12), tf.zeros_like(inter))
