"""Tests for evaluation/voc_eval.py against hand-worked VOC AP values."""
import numpy as np
import pytest

from common import np_box_ops
from evaluation import voc_eval

NAMES = {0: 'background', 1: 'circle', 2: 'square', 3: 'star'}
A = [0.25, 0.25, 0.75, 0.75]
B = [0.5, 0.5, 0.9, 0.9]
D = [0.1, 0.6, 0.3, 0.9]
FAR = [0.0, 0.0, 0.05, 0.05]


def _evaluate(images, remove_difficult=True):
    ev = voc_eval.VOCEvaluator(NAMES, remove_difficult=remove_difficult)
    for gt, dets in images:
        gt_boxes = [g[0] for g in gt]
        gt_labels = [g[1] for g in gt]
        gt_difficult = [g[2] if len(g) > 2 else 0 for g in gt]
        ev.add_image(gt_boxes, gt_labels, gt_difficult,
                     [d[0] for d in dets], [d[2] for d in dets], [d[1] for d in dets])
    return ev.evaluate()


def test_iou_hand_computed_in_float64():
    got = np_box_ops.iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], np.float64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [[1 / 7, 1.0, 0.0]])
    assert np_box_ops.iou([[0, 0, 2, 2]], [], np.float64).shape == (1, 0)


def test_perfect_detector_gives_one():
    result = _evaluate([
        ([(A, 1), (B, 2)], [(A, 1, 0.9), (B, 2, 0.8)]),
        ([(B, 1)], [(B, 1, 0.7)]),
    ])
    assert result['mAP_voc07'] == pytest.approx(1.0)
    assert result['mAP_voc12'] == pytest.approx(1.0)
    assert result['per_class']['circle']['num_gt'] == 2
    assert result['per_class']['square']['ap_voc12'] == pytest.approx(1.0)


def test_duplicate_is_false_positive():
    # Ranked: A (TP), A again (FP, duplicate), B (TP); 2 objects.
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # VOC12: 0.5 * 1 + 0.5 * 2/3 = 5/6.  VOC07: (6 * 1 + 5 * 2/3) / 11 = 28/33.
    result = _evaluate([([(A, 1), (B, 1)], [(A, 1, 0.9), (A, 1, 0.8), (B, 1, 0.7)])])
    circle = result['per_class']['circle']
    np.testing.assert_allclose(circle['precision'], [1, 0.5, 2 / 3])
    np.testing.assert_allclose(circle['recall'], [0.5, 0.5, 1])
    assert circle['ap_voc12'] == pytest.approx(5 / 6)
    assert circle['ap_voc07'] == pytest.approx(28 / 33)


def test_difficult_objects_are_ignored_like_the_devkit():
    gt = [(A, 1), (D, 1, 1)]
    # A detection of the difficult object is neither a TP nor an FP; the difficult
    # object missed is not a miss: ranked A (TP), FAR (FP) -> AP 1.
    with_det = _evaluate([(gt, [(D, 1, 0.95), (A, 1, 0.9), (FAR, 1, 0.8)])])
    assert with_det['per_class']['circle']['num_gt'] == 1
    assert with_det['per_class']['circle']['ap_voc12'] == pytest.approx(1.0)
    # Counting difficult objects: 2 objects, A (TP), FAR (FP): recall 1/2 at precision 1.
    counted = _evaluate([(gt, [(A, 1, 0.9), (FAR, 1, 0.8)])], remove_difficult=False)
    assert counted['per_class']['circle']['num_gt'] == 2
    assert counted['per_class']['circle']['ap_voc12'] == pytest.approx(0.5)
    assert counted['per_class']['circle']['ap_voc07'] == pytest.approx(6 / 11)


def test_class_without_detections_is_zero_and_without_gt_left_out():
    # circle perfect (1.0), square has an object but no detection (0.0), star has a
    # detection but no ground truth (left out of the mean) -> mAP 0.5.
    result = _evaluate([([(A, 1), (B, 2)], [(A, 1, 0.9), (D, 3, 0.8)])])
    assert result['per_class']['square']['ap_voc07'] == 0.0
    assert result['per_class']['square']['ap_voc12'] == 0.0
    assert result['per_class']['star']['num_gt'] == 0
    assert result['per_class']['star']['ap_voc07'] is None
    assert result['mAP_voc07'] == pytest.approx(0.5)
    assert result['mAP_voc12'] == pytest.approx(0.5)


def test_ranking_is_global_over_images():
    # Ranked: FAR (FP, img 2, .9), A (TP, img 1, .6), B (TP, img 2, .3); 2 objects.
    # precision 0, 1/2, 2/3 at recall 0, 1/2, 1: envelope 2/3 everywhere -> AP 2/3.
    result = _evaluate([
        ([(A, 1)], [(A, 1, 0.6)]),
        ([(B, 1)], [(FAR, 1, 0.9), (B, 1, 0.3)]),
    ])
    circle = result['per_class']['circle']
    np.testing.assert_allclose(circle['precision'], [0, 0.5, 2 / 3])
    assert circle['ap_voc12'] == pytest.approx(2 / 3)
    assert circle['ap_voc07'] == pytest.approx(2 / 3)


def test_iou_threshold_and_wrong_class():
    # IoU exactly 0.5 is a match (devkit: ov >= 0.5); a right box with the wrong
    # class is a false positive of that class.
    half = [0.25, 0.25, 0.75, 0.5]  # half of A
    result = _evaluate([([(A, 1), (B, 2)], [(half, 1, 0.9), (B, 1, 0.8), (B, 2, 0.7)])])
    circle = result['per_class']['circle']
    np.testing.assert_allclose(circle['precision'], [1, 0.5])
    assert circle['ap_voc12'] == pytest.approx(1.0)
    assert result['per_class']['square']['ap_voc12'] == pytest.approx(1.0)


def test_voc07_and_voc12_differ_on_partial_recall():
    # One of three objects found first, then a FP, then a second: precision 1, 1/2, 2/3
    # at recall 1/3, 1/3, 2/3. VOC12: 1/3 * 1 + 1/3 * 2/3 = 5/9.
    # VOC07: t = 0..0.3 -> 1 (4 points), t = 0.4..0.6 -> 2/3 (3 points), rest 0 -> 6/11.
    precision = np.array([1, 0.5, 2 / 3])
    recall = np.array([1 / 3, 1 / 3, 2 / 3])
    assert voc_eval.ap_voc12(precision, recall) == pytest.approx(5 / 9)
    assert voc_eval.ap_voc07(precision, recall) == pytest.approx(6 / 11)


def test_unknown_ground_truth_label_is_an_error():
    ev = voc_eval.VOCEvaluator(NAMES)
    with pytest.raises(ValueError, match='label map'):
        ev.add_image([A], [7], [0], [], [], [])
