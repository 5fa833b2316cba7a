"""COCO detection metrics through pycocotools: AP@[.5:.95], AP50, AP75, AP by size, AR@1/10/100.

The evaluator collects, image by image, the ground truth and the detections of the
evaluation pass (boxes `[ymin, xmin, ymax, xmax]` normalised, as everywhere in the
project), turns them into COCO's pixel boxes `[x, y, width, height]` with the size of
the original image, and runs `pycocotools.cocoeval.COCOeval` (iouType 'bbox').

- Ground-truth areas are the areas of the boxes in pixels of the original image (the
  small / medium / large split is at 32^2 and 96^2 pixels).
- `iscrowd`: for records converted from COCO, `difficult` holds COCO's `iscrowd` and
  goes back there; for other data difficult objects are crowd regions (ignored, as the
  VOC devkit ignores them) when `difficult_as_crowd` is true, else ordinary objects.
- Category ids: the original COCO ids when the records came from COCO (`category_ids`,
  contiguous id -> COCO id), the contiguous class ids otherwise. Image ids: the records'
  source ids when every image has a distinct integer one, else 1, 2, ... in evaluation
  order.

COCO AP50 and the VOC2010+ area-rule AP (evaluation/voc_eval.ap_voc12) of the same
detections differ by the interpolation only, when no object is crowd/difficult, every
detection overlaps at most one ground truth of its class at IoU >= 0.5 (COCO matches a
detection to the best *free* ground truth, VOC to the best one), scores are distinct and
no image has more than 100 detections of a class (COCO's maxDets). With q(r) the
precision envelope (the highest precision at recall >= r, 0 beyond the last recall),
VOC's AP is the integral A of q over [0, 1] and COCO's the 101-point mean
C = (1/101) sum_k q(k/100). As q is non-increasing, the integral lies between the
Riemann sums on the 1/100 grid:
(1/100) sum_{k=1..100} q(k/100) <= A <= (1/100) sum_{k=0..99} q(k/100), so
C - A <= q(0)/101 - (1/10100) sum_{k=1..100} q(k/100) <= 1/101 and
A - C <= (1/10100) sum_{k=0..99} q(k/100) - q(1)/101 <= 1/101:
|AP50 - AP_voc12| <= 1/101 (about 0.0099) per class and for the mean over the same
classes (AP50_VOC_BOUND; tests/evaluation/test_coco_eval.py checks it).
"""
import contextlib
import io
import json

import numpy as np

from common.files import atomic_write

AP50_VOC_BOUND = 1.0 / 101.0
"""Largest |COCO AP50 - VOC area-rule AP| that 101-point interpolation explains."""

# metrics.json / TensorBoard key -> index in COCOeval.stats.
METRIC_KEYS = ('AP', 'AP50', 'AP75', 'AP_small', 'AP_medium', 'AP_large',
               'AR1', 'AR10', 'AR100', 'AR100_small', 'AR100_medium', 'AR100_large')
METRIC_LABELS = {
    'AP': 'AP @[IoU .50:.95]', 'AP50': 'AP @IoU .50', 'AP75': 'AP @IoU .75',
    'AP_small': 'AP small (< 32^2 px)', 'AP_medium': 'AP medium',
    'AP_large': 'AP large (> 96^2 px)',
    'AR1': 'AR max 1 det', 'AR10': 'AR max 10 dets', 'AR100': 'AR max 100 dets',
    'AR100_small': 'AR small', 'AR100_medium': 'AR medium', 'AR100_large': 'AR large',
}


def to_coco_boxes(boxes, height, width):
    """Normalised [ymin, xmin, ymax, xmax] -> COCO pixel [x, y, width, height].

    Args:
        boxes: [N, 4] normalised; height, width: original image size in pixels.

    Returns:
        float64 [N, 4].
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x = boxes[:, 1] * width
    y = boxes[:, 0] * height
    w = np.maximum(boxes[:, 3] * width - x, 0.0)
    h = np.maximum(boxes[:, 2] * height - y, 0.0)
    return np.stack([x, y, w, h], axis=1)


class CocoEvaluator:
    """Accumulates images; `evaluate()` runs COCOeval.

    Args:
        class_names: dict class id -> name (0 = background is left out).
        category_ids: optional dict class id -> original COCO category id (records
            converted from COCO); None: the class ids are the category ids.
        difficult_as_crowd: difficult objects become iscrowd (see the module doc).
    """

    def __init__(self, class_names, category_ids=None, difficult_as_crowd=True):
        self.class_names = {int(k): v for k, v in class_names.items() if int(k) != 0}
        if category_ids is None:
            category_ids = {c: c for c in self.class_names}
        category_ids = {int(k): int(v) for k, v in category_ids.items() if int(k) != 0}
        missing = sorted(set(self.class_names) - set(category_ids))
        if missing:
            raise ValueError('category_ids has no COCO id for classes %s' % missing)
        self.category_ids = category_ids
        self.difficult_as_crowd = difficult_as_crowd
        self._images = []        # dicts: source_id, height, width
        self._annotations = []   # COCO annotations without image id (set in `datasets`)
        self._detections = []

    @property
    def num_images(self):
        return len(self._images)

    def add_image(self, height, width, gt_boxes, gt_labels, gt_difficult, det_boxes,
                  det_scores, det_labels, source_id=None):
        """Adds one image.

        Args:
            height, width: size of the original image in pixels.
            gt_boxes: [G, 4] normalised; gt_labels: [G] int; gt_difficult: [G] or None.
            det_boxes: [D, 4] normalised; det_scores: [D]; det_labels: [D] int.
            source_id: the image's id in its data set (bytes/str), or None.

        Raises:
            ValueError: a label without a class, or a size that is not positive.
        """
        height, width = int(height), int(width)
        if height <= 0 or width <= 0:
            raise ValueError('image %s: size %dx%d is not positive' % (source_id, width, height))
        gt_labels = np.asarray(gt_labels).reshape(-1).astype(np.int64)
        det_labels = np.asarray(det_labels).reshape(-1).astype(np.int64)
        unknown = sorted(set(gt_labels.tolist()) - set(self.class_names))
        if unknown:
            raise ValueError('Ground-truth labels %s are not in the label map' % unknown)
        index = len(self._images)
        if isinstance(source_id, bytes):
            source_id = source_id.decode('utf-8', 'replace')
        self._images.append({'source_id': source_id, 'height': height, 'width': width})
        crowd = np.zeros(len(gt_labels), bool)
        if gt_difficult is not None and self.difficult_as_crowd:
            crowd = np.asarray(gt_difficult).reshape(-1).astype(bool)
        for box, label, is_crowd in zip(to_coco_boxes(gt_boxes, height, width), gt_labels, crowd):
            self._annotations.append({
                'image': index, 'category_id': self.category_ids[int(label)],
                'bbox': [float(v) for v in box], 'area': float(box[2] * box[3]),
                'iscrowd': int(is_crowd)})
        det_scores = np.asarray(det_scores, np.float64).reshape(-1)
        for box, score, label in zip(to_coco_boxes(det_boxes, height, width), det_scores,
                                     det_labels):
            if int(label) not in self.category_ids:
                continue
            self._detections.append({
                'image': index, 'category_id': self.category_ids[int(label)],
                'bbox': [round(float(v), 3) for v in box], 'score': round(float(score), 6)})

    def _image_ids(self):
        """COCO image ids: the source ids if all are distinct integers, else 1..N."""
        ids = []
        for image in self._images:
            text = image['source_id']
            if not text or not str(text).strip().isdigit():
                return list(range(1, len(self._images) + 1))
            ids.append(int(text))
        if len(set(ids)) != len(ids):
            return list(range(1, len(self._images) + 1))
        return ids

    def datasets(self):
        """(ground truth as a COCO instances dict, detections in COCO results format)."""
        image_ids = self._image_ids()
        images = [{'id': image_id, 'height': image['height'], 'width': image['width'],
                   'file_name': str(image['source_id'] or image_id)}
                  for image_id, image in zip(image_ids, self._images)]
        annotations = []
        for number, ann in enumerate(self._annotations, start=1):
            annotations.append({'id': number, 'image_id': image_ids[ann['image']],
                                **{k: v for k, v in ann.items() if k != 'image'}})
        categories = [{'id': self.category_ids[c], 'name': name}
                      for c, name in sorted(self.class_names.items())]
        detections = [{'image_id': image_ids[d['image']],
                       **{k: v for k, v in d.items() if k != 'image'}} for d in self._detections]
        return ({'images': images, 'annotations': annotations, 'categories': categories},
                detections)

    def write_detections(self, path):
        """Writes the detections atomically as a COCO results JSON (readable by COCO.loadRes)."""
        _, detections = self.datasets()
        atomic_write(path, json.dumps(detections) + '\n')

    def evaluate(self):
        """Runs COCOeval on what was added.

        Returns:
            dict METRIC_KEYS -> float, None where COCO leaves a metric undefined (no
            ground truth of that size); every AP is 0 when there is ground truth but no
            detection.
        """
        from pycocotools.coco import COCO  # pylint: disable=import-outside-toplevel
        from pycocotools.cocoeval import COCOeval  # pylint: disable=import-outside-toplevel

        ground_truth, detections = self.datasets()
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet):
            coco_gt = COCO()
            coco_gt.dataset = ground_truth
            coco_gt.createIndex()
            if detections:
                coco_dt = coco_gt.loadRes(detections)
            else:  # loadRes refuses an empty list
                coco_dt = COCO()
                coco_dt.dataset = dict(ground_truth, annotations=[])
                coco_dt.createIndex()
            evaluator = COCOeval(coco_gt, coco_dt, 'bbox')
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        return {key: (None if value < 0 else float(value))
                for key, value in zip(METRIC_KEYS, evaluator.stats)}


def format_table(metrics):
    """The COCO metrics as text lines (value or '-' when undefined)."""
    lines = ['COCO metrics (pycocotools)']
    for key in METRIC_KEYS:
        value = metrics.get(key)
        lines.append('  %-22s %s' % (METRIC_LABELS[key], '-' if value is None else '%.4f' % value))
    return '\n'.join(lines)
