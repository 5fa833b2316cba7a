"""Global SSD matching of ground-truth boxes to anchors (Liu et al., 2016, section 2.2).

Matching runs over all anchors of all layers at once:
1. Bipartite step: each ground truth takes the anchor it overlaps most, greedily by the
   highest remaining IoU over all (ground truth, anchor) pairs, so two ground truths
   never share an anchor; ties go to the lowest ground-truth index, then the lowest
   anchor index. A ground truth with zero IoU everywhere gets no anchor.
2. Every other anchor takes its best ground truth if their IoU >= match_threshold
   (ties: lowest ground-truth index).
Anchors matched to a difficult ground truth get label -1 (ignored: neither positive nor
negative) when ignore_difficult is set.
"""
import tensorflow as tf

from nets import box_coding
from nets.ssd_params import PRIOR_SCALING


def _first_argmax(values, axis):
    """Index of the maximum along `axis`, the lowest index on ties (int32)."""
    size = tf.shape(values)[axis]
    shape = [1] * values.shape.ndims
    shape[axis] = -1
    index = tf.reshape(tf.range(size), shape) + tf.zeros_like(values, tf.int32)
    is_max = tf.equal(values, tf.reduce_max(values, axis=axis, keepdims=True))
    return tf.reduce_min(tf.where(is_max, index, tf.fill(tf.shape(index), size)), axis=axis)


def _bipartite_match(iou):
    """Greedy one-to-one matching of ground truths to anchors.

    Args:
      iou: float32 [N, A].

    Returns:
      int32 [A]: matched ground-truth index, -1 for anchors without a forced match.
    """
    num_gt = tf.shape(iou)[0]
    num_anchors = tf.shape(iou)[1]

    def body(i, remaining, forced):
        flat = tf.reshape(remaining, [-1])
        best = _first_argmax(flat, 0)
        gt = best // num_anchors
        anchor = best % num_anchors
        valid = flat[best] > 0.0
        forced = tf.where(tf.logical_and(valid, tf.equal(tf.range(num_anchors), anchor)),
                          tf.fill([num_anchors], gt), forced)
        taken = tf.logical_or(tf.equal(tf.range(num_gt), gt)[:, None],
                              tf.equal(tf.range(num_anchors), anchor)[None, :])
        remaining = tf.where(taken, -tf.ones_like(remaining), remaining)
        remaining.set_shape(iou.shape)
        return i + 1, remaining, forced

    _, _, forced = tf.while_loop(
        lambda i, remaining, forced: i < num_gt, body,
        [tf.constant(0), iou, -tf.ones([num_anchors], tf.int32)])
    return forced


def match_anchors(anchors, gt_boxes, gt_labels, gt_difficult=None, match_threshold=0.5,
                  ignore_difficult=True, prior_scaling=PRIOR_SCALING):
    """Matches the ground truth of one image to anchors and encodes the targets.

    Args:
      anchors: float32 [A, 4] (numpy or tensor), yxyx normalised.
      gt_boxes: float32 [N, 4] yxyx normalised (N may be 0).
      gt_labels: int [N] class ids >= 1.
      gt_difficult: optional int/bool [N]; non-zero marks a difficult box.
      match_threshold: IoU from which an anchor is positive (> 0).
      ignore_difficult: give anchors matched to difficult boxes label -1.
      prior_scaling: box coding variances.

    Returns:
      target_labels int64 [A] (0 background, -1 ignored),
      target_locs float32 [A, 4] (encoded offsets; 0 for unmatched anchors),
      target_iou float32 [A] (IoU with the matched ground truth, else the best IoU).

    Raises:
      ValueError: match_threshold is not in (0, 1].
    """
    if not 0.0 < match_threshold <= 1.0:
        raise ValueError('match_threshold must be in (0, 1], got %r' % (match_threshold,))
    with tf.name_scope('match_anchors'):
        anchors = tf.convert_to_tensor(anchors, tf.float32)
        gt_boxes = tf.reshape(tf.cast(gt_boxes, tf.float32), [-1, 4])
        gt_labels = tf.reshape(tf.cast(gt_labels, tf.int64), [-1])
        if gt_difficult is None:
            gt_difficult = tf.zeros_like(gt_labels)
        gt_difficult = tf.reshape(tf.cast(gt_difficult, tf.bool), [-1])
        # A zero-area sentinel ground truth (label 0, IoU 0 everywhere) keeps the
        # reductions well-defined for images without boxes; it is never matched.
        gt_boxes = tf.concat([gt_boxes, tf.zeros([1, 4])], axis=0)
        gt_labels = tf.concat([gt_labels, tf.zeros([1], tf.int64)], axis=0)
        gt_difficult = tf.concat([gt_difficult, tf.zeros([1], tf.bool)], axis=0)

        iou = box_coding.iou(gt_boxes, anchors)                       # [N + 1, A]
        best_gt = _first_argmax(iou, 0)                               # [A]
        best_iou = tf.reduce_max(iou, axis=0)
        forced = _bipartite_match(iou)
        is_forced = forced >= 0
        matched_gt = tf.where(is_forced, forced, best_gt)
        positive = tf.logical_or(is_forced, best_iou >= match_threshold)
        matched_iou = tf.gather_nd(
            tf.transpose(iou), tf.stack([tf.range(tf.shape(iou)[1]), matched_gt], axis=1))

        labels = tf.where(positive, tf.gather(gt_labels, matched_gt), tf.zeros_like(best_gt,
                                                                                    tf.int64))
        if ignore_difficult:
            difficult = tf.logical_and(positive, tf.gather(gt_difficult, matched_gt))
            labels = tf.where(difficult, -tf.ones_like(labels), labels)
        boxes = tf.where(positive[:, None], tf.gather(gt_boxes, matched_gt), anchors)
        locs = box_coding.encode_boxes(boxes, anchors, prior_scaling)
        locs = tf.where(positive[:, None], locs, tf.zeros_like(locs))
        return labels, locs, matched_iou
