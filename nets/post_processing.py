"""TF SSD post-processing: per-class threshold, top-k, NMS, then top-k per image.

Same algorithm and results as common/np_post_processing.py (the web client's numpy copy):
boxes are clipped to [0, 1]; for each class c >= 1 the anchors with score >
select_threshold are kept, at most pre_nms_top_k of them by score, then NMS
(tf.image.non_max_suppression, suppressing IoU > nms_threshold, at most keep_top_k);
the survivors of all classes are ranked by score (ties: lower class, then NMS order) and
the first keep_top_k kept.
"""
import tensorflow as tf

from common import fields, np_post_processing


def _postprocess_image(scores, boxes, select_threshold, nms_threshold, pre_nms_top_k,
                       keep_top_k):
    """One image: scores [A, C], boxes [A, 4] -> (boxes [K, 4], scores [K], classes [K], n)."""
    boxes = tf.clip_by_value(boxes, 0.0, 1.0)
    num_anchors = tf.shape(scores)[0]
    all_boxes, all_scores, all_classes = [], [], []
    for c in range(1, scores.shape[1]):
        top_scores, top_idx = tf.math.top_k(scores[:, c], k=tf.minimum(pre_nms_top_k,
                                                                       num_anchors))
        top_boxes = tf.gather(boxes, top_idx)
        keep = tf.image.non_max_suppression(top_boxes, top_scores, keep_top_k,
                                            iou_threshold=nms_threshold,
                                            score_threshold=select_threshold)
        all_boxes.append(tf.gather(top_boxes, keep))
        all_scores.append(tf.gather(top_scores, keep))
        all_classes.append(tf.fill(tf.shape(keep), float(c)))
    det_boxes = tf.concat(all_boxes, axis=0)
    det_scores = tf.concat(all_scores, axis=0)
    det_classes = tf.concat(all_classes, axis=0)
    count = tf.minimum(tf.shape(det_scores)[0], keep_top_k)
    det_scores, order = tf.math.top_k(det_scores, k=count)
    det_boxes = tf.gather(det_boxes, order)
    det_classes = tf.gather(det_classes, order)
    pad = keep_top_k - count
    return (tf.pad(det_boxes, [[0, pad], [0, 0]]), tf.pad(det_scores, [[0, pad]]),
            tf.pad(det_classes, [[0, pad]]), tf.cast(count, tf.float32))


def postprocess(scores, boxes, select_threshold=np_post_processing.SELECT_THRESHOLD,
                nms_threshold=np_post_processing.NMS_THRESHOLD,
                pre_nms_top_k=np_post_processing.PRE_NMS_TOP_K,
                keep_top_k=np_post_processing.KEEP_TOP_K):
    """Detections of a batch.

    Args:
      scores: float32 [B, A, C] softmax scores (column 0 background, C static).
      boxes: float32 [B, A, 4] decoded boxes yxyx.
      select_threshold: per-class score threshold (strictly greater is kept).
      nms_threshold: IoU above which NMS suppresses.
      pre_nms_top_k: candidates per class before NMS.
      keep_top_k: detections per image (K).

    Returns:
      dict: detection_boxes [B, K, 4], detection_scores [B, K], detection_classes [B, K]
      float32, num_detections [B] float32; rows past num_detections are zeros.
    """
    with tf.name_scope('postprocess'):
        scores = tf.convert_to_tensor(scores, tf.float32)
        boxes = tf.convert_to_tensor(boxes, tf.float32)

        def fn(args):
            return _postprocess_image(args[0], args[1], select_threshold, nms_threshold,
                                      pre_nms_top_k, keep_top_k)

        det_boxes, det_scores, det_classes, num = tf.map_fn(
            fn, (scores, boxes),
            fn_output_signature=(tf.TensorSpec([keep_top_k, 4], tf.float32),
                                 tf.TensorSpec([keep_top_k], tf.float32),
                                 tf.TensorSpec([keep_top_k], tf.float32),
                                 tf.TensorSpec([], tf.float32)))
        return dict(zip(fields.DETECTION_FIELDS, (det_boxes, det_scores, det_classes, num)))
