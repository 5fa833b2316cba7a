"""Numpy SSD post-processing for one image (no TensorFlow), identical to post_processing.py.

nms() reproduces tf.image.non_max_suppression: candidates in descending score order
(ties: lower index first), a candidate is suppressed by a kept box when their IoU is
strictly greater than the threshold; boxes may have any corner order.
"""
import numpy as np


def _pairwise_iou(boxes):
    """IoU [n, n] of boxes [n, 4] as TF's NMS computes it (float32, any corner order)."""
    ymin = np.minimum(boxes[:, 0], boxes[:, 2])
    ymax = np.maximum(boxes[:, 0], boxes[:, 2])
    xmin = np.minimum(boxes[:, 1], boxes[:, 3])
    xmax = np.maximum(boxes[:, 1], boxes[:, 3])
    area = (ymax - ymin) * (xmax - xmin)
    inter_h = np.maximum(np.minimum(ymax[:, None], ymax[None, :]) -
                         np.maximum(ymin[:, None], ymin[None, :]), 0.0)
    inter_w = np.maximum(np.minimum(xmax[:, None], xmax[None, :]) -
                         np.maximum(xmin[:, None], xmin[None, :]), 0.0)
    inter = inter_h * inter_w
    union = area[:, None] + area[None, :] - inter
    valid = (area[:, None] > 0) & (area[None, :] > 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(valid, inter / union, 0.0).astype(np.float32)


def nms(boxes, scores, iou_threshold, max_output, score_threshold=-np.inf):
    """Greedy non-maximum suppression.

    Args:
      boxes: [n, 4]; scores: [n].
      iou_threshold: suppress boxes overlapping a kept one by more than this.
      max_output: maximum number of kept boxes.
      score_threshold: only boxes with score strictly greater are considered.

    Returns:
      int64 [k] indices into boxes, in descending score order.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    candidates = np.flatnonzero(scores > score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind='stable')]
    if order.size == 0 or max_output <= 0:
        return np.zeros([0], np.int64)
    overlaps = _pairwise_iou(boxes[order]) > np.float32(iou_threshold)
    suppressed = np.zeros(order.size, bool)
    keep = []
    for i in range(order.size):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_output:
            break
        suppressed |= overlaps[i]
    return order[keep].astype(np.int64)


def postprocess(scores, boxes, select_threshold=0.01, nms_threshold=0.45, pre_nms_top_k=400,
                keep_top_k=200):
    """Detections of one image.

    Args:
      scores: [A, C] softmax scores (column 0 background).
      boxes: [A, 4] decoded boxes yxyx.
      select_threshold, nms_threshold, pre_nms_top_k, keep_top_k: as in
        nets.post_processing.postprocess.

    Returns:
      boxes float32 [k, 4] clipped to [0, 1], scores float32 [k], classes int64 [k];
      k <= keep_top_k, sorted by descending score.
    """
    scores = np.asarray(scores, np.float32)
    boxes = np.clip(np.asarray(boxes, np.float32), 0.0, 1.0)
    if scores.ndim != 2 or boxes.shape != (scores.shape[0], 4):
        raise ValueError('postprocess expects scores [A, C] and boxes [A, 4], got %s and %s'
                         % (scores.shape, boxes.shape))
    det_idx, det_scores, det_classes = [], [], []
    for c in range(1, scores.shape[1]):
        class_scores = scores[:, c]
        candidates = np.flatnonzero(class_scores > select_threshold)
        if candidates.size == 0:
            continue
        order = np.argsort(-class_scores[candidates], kind='stable')[:pre_nms_top_k]
        candidates = candidates[order]
        keep = candidates[nms(boxes[candidates], class_scores[candidates], nms_threshold,
                              keep_top_k)]
        det_idx.append(keep)
        det_scores.append(class_scores[keep])
        det_classes.append(np.full(keep.size, c, np.int64))
    if not det_idx:
        return np.zeros([0, 4], np.float32), np.zeros([0], np.float32), np.zeros([0], np.int64)
    det_idx = np.concatenate(det_idx)
    det_scores = np.concatenate(det_scores)
    det_classes = np.concatenate(det_classes)
    order = np.argsort(-det_scores, kind='stable')[:keep_top_k]
    return boxes[det_idx[order]], det_scores[order], det_classes[order]
