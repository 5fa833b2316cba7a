"""Pascal VOC detection metrics in numpy: per-class precision/recall, AP and mAP.

Follows the VOC devkit (Everingham et al.): detections of a class are ranked by score
over the whole test set; a detection is a true positive when its best-overlapping
ground truth of the same class and image (IoU >= threshold) was not matched before;
a second detection of that object is a false positive (duplicate). Matches to a
difficult object count neither as true nor as false positive, and difficult objects
are not counted as misses. AP is the 11-point interpolated average (VOC2007) or the
area under the monotone precision envelope (VOC2010 onwards, "voc12" here). A class
without ground truth is left out of the mean; a class with ground truth but no
detections has AP 0.

Boxes are [ymin, xmin, ymax, xmax] in any consistent unit (normalised here, so there
is no +1 pixel convention).
"""
import numpy as np

from common import np_box_ops


def match_image(det_boxes, det_scores, gt_boxes, gt_difficult, iou_threshold=0.5):
    """Marks one image's detections of one class as true/false positive or ignored.

    Detections are taken by decreasing score (stable for ties), as the devkit does
    after its global sort; each ground truth is matched at most once.

    Args:
        det_boxes: [D, 4]; det_scores: [D].
        gt_boxes: [G, 4]; gt_difficult: [G] bool.
        iou_threshold: minimum IoU of a match (devkit: >= 0.5).

    Returns:
        int8 [D] in input order: 1 true positive, 0 false positive, -1 ignored
        (its best match is a difficult object).
    """
    det_scores = np.asarray(det_scores, np.float64).reshape(-1)
    flags = np.zeros(len(det_scores), np.int8)
    gt_difficult = np.asarray(gt_difficult, bool).reshape(-1)
    if len(det_scores) == 0 or len(gt_difficult) == 0:
        return flags
    overlaps = np_box_ops.iou(det_boxes, gt_boxes, np.float64)  # float64: IoU 0.5 stays 0.5
    taken = np.zeros(len(gt_difficult), bool)
    for d in np.argsort(-det_scores, kind='stable'):
        best = int(np.argmax(overlaps[d]))
        if overlaps[d, best] < iou_threshold:
            continue
        if gt_difficult[best]:
            flags[d] = -1
        elif not taken[best]:
            flags[d] = 1
            taken[best] = True
    return flags


def precision_recall(scores, flags, num_gt):
    """Precision and recall along the detections ranked by score.

    Args:
        scores: [D] detection scores of one class over all images.
        flags: [D] from `match_image` (ignored detections are dropped).
        num_gt: number of non-difficult ground-truth objects.

    Returns:
        (precision [D'], recall [D']) float64; recall is all NaN when num_gt is 0.
    """
    scores = np.asarray(scores, np.float64)
    flags = np.asarray(flags)
    keep = flags >= 0
    order = np.argsort(-scores[keep], kind='stable')
    tp = np.cumsum(flags[keep][order] == 1)
    fp = np.cumsum(flags[keep][order] == 0)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    recall = tp / num_gt if num_gt > 0 else np.full(len(tp), np.nan)
    return precision, recall


def ap_voc07(precision, recall):
    """VOC2007 11-point AP: mean over t in {0, 0.1, ..., 1} of max precision at recall >= t."""
    total = 0.0
    for t in np.linspace(0.0, 1.0, 11):
        above = precision[recall >= t - 1e-12]
        total += above.max() if above.size else 0.0
    return total / 11.0


def ap_voc12(precision, recall):
    """VOC2010+ AP: area under the precision envelope (precision made non-increasing)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


class VOCEvaluator:
    """Accumulates detections and ground truth image by image; computes AP per class.

    Args:
        class_names: dict id -> name of the object classes (background excluded).
        iou_threshold: minimum IoU of a true positive.
        remove_difficult: devkit rule (difficult objects ignored); False counts them
            as ordinary objects.
    """

    def __init__(self, class_names, iou_threshold=0.5, remove_difficult=True):
        self.class_names = {int(k): v for k, v in class_names.items() if int(k) != 0}
        self.iou_threshold = iou_threshold
        self.remove_difficult = remove_difficult
        self.num_images = 0
        self._num_gt = {c: 0 for c in self.class_names}
        self._scores = {c: [] for c in self.class_names}
        self._flags = {c: [] for c in self.class_names}

    def add_image(self, gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels):
        """Adds one image.

        Args:
            gt_boxes: [G, 4]; gt_labels: [G] int; gt_difficult: [G] (or None).
            det_boxes: [D, 4]; det_scores: [D]; det_labels: [D] int.
        """
        gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        gt_labels = np.asarray(gt_labels).reshape(-1).astype(np.int64)
        if gt_difficult is None or not self.remove_difficult:
            gt_difficult = np.zeros(len(gt_labels), bool)
        gt_difficult = np.asarray(gt_difficult).reshape(-1).astype(bool)
        det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
        det_scores = np.asarray(det_scores, np.float64).reshape(-1)
        det_labels = np.asarray(det_labels).reshape(-1).astype(np.int64)
        unknown = set(np.unique(gt_labels).tolist()) - set(self.class_names)
        if unknown:
            raise ValueError('Ground-truth labels %s are not in the label map' % sorted(unknown))
        self.num_images += 1
        for c in self.class_names:
            gt_mask = gt_labels == c
            det_mask = det_labels == c
            self._num_gt[c] += int(np.sum(gt_mask & ~gt_difficult))
            if not det_mask.any():
                continue
            flags = match_image(det_boxes[det_mask], det_scores[det_mask], gt_boxes[gt_mask],
                                gt_difficult[gt_mask], self.iou_threshold)
            self._scores[c].append(det_scores[det_mask])
            self._flags[c].append(flags)

    def class_results(self, class_id):
        """dict(num_gt, precision [D], recall [D], ap_voc07, ap_voc12) of one class.

        The APs are None when the class has no (non-difficult) ground truth.
        """
        num_gt = self._num_gt[class_id]
        scores = np.concatenate(self._scores[class_id]) if self._scores[class_id] else np.zeros(0)
        flags = np.concatenate(self._flags[class_id]) if self._flags[class_id] else np.zeros(0)
        precision, recall = precision_recall(scores, flags, num_gt)
        result = {'num_gt': num_gt, 'precision': precision, 'recall': recall,
                  'ap_voc07': None, 'ap_voc12': None}
        if num_gt > 0:
            result['ap_voc07'] = float(ap_voc07(precision, recall))
            result['ap_voc12'] = float(ap_voc12(precision, recall))
        return result

    def evaluate(self):
        """Per-class results and the means.

        Returns:
            dict(per_class={name: class_results}, mAP_voc07, mAP_voc12); the means are
            over classes with ground truth (None when there is none).
        """
        per_class = {self.class_names[c]: self.class_results(c) for c in sorted(self.class_names)}
        counted = [r for r in per_class.values() if r['num_gt'] > 0]
        means = {}
        for key in ('ap_voc07', 'ap_voc12'):
            means[key] = float(np.mean([r[key] for r in counted])) if counted else None
        return {'per_class': per_class, 'mAP_voc07': means['ap_voc07'],
                'mAP_voc12': means['ap_voc12']}
