"""Numpy box operations (no TensorFlow): IoU, SSD box coding, clipping.

Boxes are ymin, xmin, ymax, xmax. iou, encode_boxes and decode_boxes have TensorFlow
twins in nets/box_coding.py with the same formulas line for line: the graph needs the
TF ones, the TensorFlow-free client and the VOC evaluation these.
tests/nets/test_box_coding.py checks that each pair agrees.
"""
import numpy as np

# Largest scaled log-size offset accepted when decoding (as torchvision: log(1000 / 16)),
# so an untrained network cannot overflow exp().
MAX_LOG_SCALE = float(np.log(1000.0 / 16.0))


def area(boxes):
    """Areas of boxes [..., 4] -> [...] (0 for empty boxes)."""
    return (np.maximum(boxes[..., 2] - boxes[..., 0], 0.0) *
            np.maximum(boxes[..., 3] - boxes[..., 1], 0.0))


def iou(boxes_a, boxes_b, dtype=np.float32):
    """Pairwise intersection over union.

    Args:
      boxes_a: [N, 4]; boxes_b: [M, 4] (N or M may be 0).
      dtype: computation and result type (the VOC evaluation uses float64).

    Returns:
      [N, M] IoU, 0 where the union is empty.
    """
    boxes_a = np.asarray(boxes_a, dtype).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype).reshape(-1, 4)
    ymin = np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    xmin = np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    ymax = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
    xmax = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
    inter = np.maximum(ymax - ymin, 0.0) * np.maximum(xmax - xmin, 0.0)
    union = area(boxes_a)[:, None] + area(boxes_b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(dtype)


def centers(boxes):
    """[..., 4] yxyx -> (cy, cx, h, w); numpy arrays or (in nets/box_coding.py) tensors."""
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w, h, w


# encode_boxes and decode_boxes repeat nets/box_coding.py's formulas in numpy on purpose:
# the TensorFlow-free client needs them without TensorFlow (see the module docstring).
def encode_boxes(boxes, anchors, prior_scaling):
    """Encodes boxes [..., A, 4] relative to anchors [A, 4] -> offsets [..., A, 4].

    Offsets are (dy, dx, dh, dw) divided by prior_scaling (Liu et al., 2016, eq. 2).
    Box sizes are floored at 1e-8 so that empty boxes give finite offsets.
    """
    boxes = np.asarray(boxes, np.float32)
    anchors = np.asarray(anchors, np.float32)
    acy, acx, ah, aw = centers(anchors)
    cy, cx, h, w = centers(boxes)
    h = np.maximum(h, 1e-8)
    w = np.maximum(w, 1e-8)
    return np.stack([(cy - acy) / ah / prior_scaling[0],
                     (cx - acx) / aw / prior_scaling[1],
                     np.log(h / ah) / prior_scaling[2],
                     np.log(w / aw) / prior_scaling[3]], axis=-1).astype(np.float32)


def decode_boxes(locs, anchors, prior_scaling):
    """Decodes offsets [..., A, 4] relative to anchors [A, 4] -> boxes [..., A, 4] yxyx."""
    locs = np.asarray(locs, np.float32)
    acy, acx, ah, aw = centers(np.asarray(anchors, np.float32))
    cy = locs[..., 0] * prior_scaling[0] * ah + acy
    cx = locs[..., 1] * prior_scaling[1] * aw + acx
    h = np.exp(np.minimum(locs[..., 2] * prior_scaling[2], MAX_LOG_SCALE)) * ah
    w = np.exp(np.minimum(locs[..., 3] * prior_scaling[3], MAX_LOG_SCALE)) * aw
    return np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w],
                    axis=-1).astype(np.float32)
