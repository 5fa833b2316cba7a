"""Numpy SSD post-processing for one image (no TensorFlow), identical to post_processing.py.

nms() reproduces tf.image.non_max_suppression: candidates in descending score order
(ties: lower index first); a candidate is dropped when its IoU with an already kept box
is strictly greater than the threshold; boxes may have any corner order; IoU with an
empty box is 0.

postprocess() gives the same detections as running nms() per class and keeping the
keep_top_k best of all classes, but visits the candidates of all classes in one global
score order and stops once keep_top_k are kept: a candidate's fate only depends on the
higher-scored candidates of its class, so the result is identical and the work is
bounded by the detections kept rather than by the candidates of every class.
"""
import types

import numpy as np

# Evaluation settings of SSD (Liu et al., 2016, and the original Caffe release): score
# threshold 0.01, NMS IoU 0.45, 400 candidates per class, 200 detections per image. The
# defaults of both post-processing implementations, the evaluator, the export and the client.
SELECT_THRESHOLD = 0.01
NMS_THRESHOLD = 0.45
PRE_NMS_TOP_K = 400
KEEP_TOP_K = 200
# Default minimum score of the detections shown to people (client, command-line detector,
# web page, evaluation's detection grid); post-processing itself keeps SELECT_THRESHOLD.
DISPLAY_THRESHOLD = 0.5
DEFAULTS = types.MappingProxyType({
    'select_threshold': SELECT_THRESHOLD, 'nms_threshold': NMS_THRESHOLD,
    'pre_nms_top_k': PRE_NMS_TOP_K, 'keep_top_k': KEEP_TOP_K})


def _sorted_candidates(scores, threshold, top_k):
    """Indices with score > threshold, at most top_k of the highest, by descending score.

    Ties are ordered by lower index, as tf.math.top_k and TF's NMS order them.
    """
    candidates = np.flatnonzero(scores > threshold)
    if candidates.size > top_k:
        values = scores[candidates]
        kth = np.partition(values, candidates.size - top_k)[candidates.size - top_k]
        above = candidates[values > kth]
        ties = candidates[values == kth][:top_k - above.size]
        candidates = np.sort(np.concatenate([above, ties]))
    return candidates[np.argsort(-scores[candidates], kind='stable')]


class _Overlaps:
    """Tests IoU > threshold among boxes [n, 4], computing IoU as TF's NMS does (float32).

    Small sets get their whole [n, n] matrix at the first query (one vectorised pass),
    large ones one row per query, so the cost follows the boxes actually kept.
    """

    FULL_MATRIX_MAX = 128

    def __init__(self, boxes, threshold):
        boxes = np.asarray(boxes, np.float32)
        self.ymin = np.minimum(boxes[:, 0], boxes[:, 2])
        self.ymax = np.maximum(boxes[:, 0], boxes[:, 2])
        self.xmin = np.minimum(boxes[:, 1], boxes[:, 3])
        self.xmax = np.maximum(boxes[:, 1], boxes[:, 3])
        self.area = (self.ymax - self.ymin) * (self.xmax - self.xmin)
        self.threshold = np.float32(threshold)
        self._matrix = None

    def _iou(self, rows):
        """float32 [len(rows), n] IoU of the `rows` boxes with every box (rows: a slice)."""
        height = (np.minimum(self.ymax[rows, None], self.ymax) -
                  np.maximum(self.ymin[rows, None], self.ymin))
        width = (np.minimum(self.xmax[rows, None], self.xmax) -
                 np.maximum(self.xmin[rows, None], self.xmin))
        inter = np.maximum(height, 0) * np.maximum(width, 0)
        return inter / (self.area[rows, None] + self.area - inter)

    def above(self, i):
        """bool [n]: IoU(box i, box j) > threshold for every j; none if box i is empty."""
        if self.area.size > self.FULL_MATRIX_MAX:
            if self.area[i] <= 0:
                return np.zeros(self.area.size, bool)
            return self._iou(slice(i, i + 1))[0] > self.threshold
        if self._matrix is None:
            with np.errstate(divide='ignore', invalid='ignore'):    # 0 / 0 for empty pairs
                self._matrix = self._iou(slice(None)) > self.threshold
            self._matrix[self.area <= 0] = False
        return self._matrix[i]


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
    order = _sorted_candidates(scores, score_threshold, scores.size)
    overlaps = _Overlaps(boxes[order], iou_threshold)
    suppressed = np.zeros(order.size, bool)
    keep = []
    for i in range(order.size):
        if len(keep) >= max_output:
            break
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps.above(i)
    return order[np.asarray(keep, np.int64)]


def postprocess(scores, boxes, select_threshold=SELECT_THRESHOLD, nms_threshold=NMS_THRESHOLD,
                pre_nms_top_k=PRE_NMS_TOP_K, keep_top_k=KEEP_TOP_K):
    """Detections of one image.

    Args:
      scores: [A, C] softmax scores (column 0 background).
      boxes: [A, 4] decoded boxes yxyx.
      select_threshold, nms_threshold, pre_nms_top_k, keep_top_k: as in
        nets.post_processing.postprocess.

    Returns:
      boxes float32 [k, 4] clipped to [0, 1], scores float32 [k], classes int64 [k];
      k <= keep_top_k, sorted by descending score (ties: lower class first).
    """
    scores = np.asarray(scores, np.float32)
    boxes = np.clip(np.asarray(boxes, np.float32), 0.0, 1.0)
    if scores.ndim != 2 or boxes.shape != (scores.shape[0], 4):
        raise ValueError('postprocess expects scores [A, C] and boxes [A, 4], got %s and %s'
                         % (scores.shape, boxes.shape))
    scores_by_class = np.ascontiguousarray(scores.T)
    classes, candidates = [], []
    for c in range(1, scores.shape[1]):
        found = _sorted_candidates(scores_by_class[c], select_threshold, pre_nms_top_k)
        if found.size:
            classes.append(c)
            candidates.append(found)
    if not candidates or keep_top_k <= 0:
        return np.zeros([0, 4], np.float32), np.zeros([0], np.float32), np.zeros([0], np.int64)
    # (slot, rank) of every candidate; slot s is class classes[s] with sorted candidates[s].
    slots = np.concatenate([np.full(found.size, s) for s, found in enumerate(candidates)])
    ranks = np.concatenate([np.arange(found.size) for found in candidates])
    anchors = np.concatenate(candidates)
    cand_scores = scores_by_class[np.asarray(classes)[slots], anchors]
    order = np.argsort(-cand_scores, kind='stable')
    overlaps = [_Overlaps(boxes[found], nms_threshold) for found in candidates]
    suppressed = [np.zeros(found.size, bool) for found in candidates]
    keep = []
    for j in order:
        slot, rank = slots[j], ranks[j]
        if suppressed[slot][rank]:
            continue
        keep.append(j)
        if len(keep) == keep_top_k:
            break
        suppressed[slot] |= overlaps[slot].above(rank)
    keep = np.asarray(keep, np.int64)
    return (boxes[anchors[keep]], cand_scores[keep],
            np.asarray(classes, np.int64)[slots[keep]])
