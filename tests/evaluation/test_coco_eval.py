"""Tests of evaluation/coco_eval.py: hand-computed COCO metrics, the AP50 vs VOC bound."""
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from evaluation import coco_eval, voc_eval

CLASSES = {0: 'background', 1: 'circle', 2: 'square'}


def _box(y, x, size_y, size_x):
    return [y, x, y + size_y, x + size_x]


def test_to_coco_boxes_uses_the_original_image_size():
    boxes = coco_eval.to_coco_boxes([[0.1, 0.2, 0.5, 0.6]], height=200, width=100)
    np.testing.assert_allclose(boxes, [[20.0, 20.0, 40.0, 80.0]])


def test_perfect_detection_and_iou_levels():
    # One object 100x100 px; a detection shifted by 10 px in x: IoU = 90 / 110 = 0.818.
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    evaluator.add_image(1000, 1000, [_box(0.1, 0.1, 0.1, 0.1)], [1], [0],
                        [_box(0.1, 0.11, 0.1, 0.1)], [0.9], [1])
    metrics = evaluator.evaluate()
    # Matched at IoU thresholds .50 ... .80 (7 of 10): AP = 0.7, AR likewise.
    assert metrics['AP'] == pytest.approx(0.7)
    assert metrics['AP50'] == pytest.approx(1.0)
    assert metrics['AP75'] == pytest.approx(1.0)
    assert metrics['AR1'] == metrics['AR100'] == pytest.approx(0.7)
    # 100x100 = 10^4 px > 96^2: a large object; no small or medium ground truth.
    assert metrics['AP_large'] == pytest.approx(0.7)
    assert metrics['AP_small'] is None and metrics['AP_medium'] is None


def test_area_ranges_follow_the_original_pixels():
    # The same normalised box is small in a 100 px image and large in a 2000 px one.
    box = _box(0.1, 0.1, 0.1, 0.1)
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    evaluator.add_image(100, 100, [box], [1], [0], [box], [0.9], [1])      # 10x10 px
    evaluator.add_image(500, 500, [box], [1], [0], [], [], [])             # 50x50: medium, missed
    evaluator.add_image(2000, 2000, [box], [2], [0], [box], [0.8], [2])    # 200x200 px
    metrics = evaluator.evaluate()
    assert metrics['AP_small'] == pytest.approx(1.0)
    assert metrics['AP_medium'] == pytest.approx(0.0)
    assert metrics['AP_large'] == pytest.approx(1.0)
    # circle: 1 of 2 found at precision 1 -> 101-point AP 51/101; square: 1.
    assert metrics['AP50'] == pytest.approx((51 / 101 + 1.0) / 2)


def test_ar_at_one_and_ten_detections():
    # Two objects, two correct detections: one detection per image recalls half.
    gt = [_box(0.0, 0.0, 0.2, 0.2), _box(0.5, 0.5, 0.2, 0.2)]
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    evaluator.add_image(300, 300, gt, [1, 1], [0, 0], gt, [0.9, 0.8], [1, 1])
    metrics = evaluator.evaluate()
    assert metrics['AR1'] == pytest.approx(0.5)
    assert metrics['AR10'] == pytest.approx(1.0)
    assert metrics['AP'] == pytest.approx(1.0)


def test_false_positive_ranked_first_and_crowd():
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    gt = [_box(0.0, 0.0, 0.3, 0.3), _box(0.6, 0.6, 0.3, 0.3)]
    # The second object is difficult -> crowd: a detection on it is ignored.
    dets = [_box(0.3, 0.3, 0.2, 0.2), _box(0.0, 0.0, 0.3, 0.3), _box(0.6, 0.6, 0.3, 0.3)]
    evaluator.add_image(100, 100, gt, [1, 1], [0, 1], dets, [0.9, 0.8, 0.7], [1, 1, 1])
    metrics = evaluator.evaluate()
    # Ranked: FP (precision 0), TP (precision 0.5, recall 1) -> envelope 0.5 everywhere.
    assert metrics['AP50'] == pytest.approx(0.5)
    plain = coco_eval.CocoEvaluator(CLASSES, difficult_as_crowd=False)
    plain.add_image(100, 100, gt, [1, 1], [0, 1], dets, [0.9, 0.8, 0.7], [1, 1, 1])
    # Counted as an object: FP, TP, TP -> precision 1/2 at recall .5, 2/3 at recall 1.
    assert plain.evaluate()['AP50'] == pytest.approx(2 / 3)


def test_no_detections_gives_zero_not_an_error():
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    evaluator.add_image(100, 100, [_box(0.1, 0.1, 0.5, 0.5)], [1], [0], np.zeros((0, 4)), [], [])
    metrics = evaluator.evaluate()
    assert metrics['AP'] == 0.0 and metrics['AR100'] == 0.0
    assert metrics['AP_small'] is None


def test_category_and_image_ids_written_back(tmp_path):
    # Records from COCO: class 1 is COCO category 18 (dog), class 2 is 90; image ids kept.
    evaluator = coco_eval.CocoEvaluator(CLASSES, category_ids={1: 18, 2: 90})
    evaluator.add_image(480, 640, [_box(0.1, 0.1, 0.5, 0.5)], [2], [0],
                        [_box(0.1, 0.1, 0.5, 0.5)], [0.75], [2], source_id=b'139')
    evaluator.add_image(480, 640, [], [], [], [_box(0.0, 0.0, 0.5, 0.25)], [0.5], [1],
                        source_id=b'285')
    ground_truth, detections = evaluator.datasets()
    assert [image['id'] for image in ground_truth['images']] == [139, 285]
    assert ground_truth['annotations'][0]['category_id'] == 90
    assert ground_truth['annotations'][0]['bbox'] == pytest.approx([64.0, 48.0, 320.0, 240.0])
    assert ground_truth['annotations'][0]['area'] == pytest.approx(320.0 * 240.0)
    assert [d['category_id'] for d in detections] == [90, 18]
    assert detections[1] == {'image_id': 285, 'category_id': 18,
                             'bbox': [0.0, 0.0, 160.0, 240.0], 'score': 0.5}
    path = str(tmp_path / 'dets.json')
    evaluator.write_detections(path)
    coco_gt = COCO()
    coco_gt.dataset = ground_truth
    coco_gt.createIndex()
    results = coco_gt.loadRes(path)
    assert sorted(results.getImgIds()) == [139, 285]
    assert len(json.load(open(path, encoding='utf-8'))) == 2


def test_image_ids_fall_back_to_a_count():
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    for source_id in (b'000005', b'000005', b''):  # duplicates (two data sets), empty (old records)
        evaluator.add_image(10, 10, [], [], [], [], [], [], source_id=source_id)
    assert [i['id'] for i in evaluator.datasets()[0]['images']] == [1, 2, 3]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r'no COCO id for classes \[2\]'):
        coco_eval.CocoEvaluator(CLASSES, category_ids={1: 1})
    evaluator = coco_eval.CocoEvaluator(CLASSES)
    with pytest.raises(ValueError, match=r'labels \[7\]'):
        evaluator.add_image(10, 10, [_box(0, 0, 1, 1)], [7], [0], [], [], [])
    with pytest.raises(ValueError, match='not positive'):
        evaluator.add_image(0, 10, [], [], [], [], [], [])


def _random_case(rng, num_images, num_gt_max, num_classes):
    """Images with non-overlapping objects on a grid and noisy detections of distinct scores."""
    images = []
    scores = rng.permutation(10 * num_images * num_gt_max * 3)[:, None] / 1e4
    used = 0
    for _ in range(num_images):
        cells = rng.permutation(16)[:rng.integers(1, num_gt_max + 1)]
        gt = np.array([_box(c // 4 * 0.25 + 0.02, c % 4 * 0.25 + 0.02, 0.2, 0.2) for c in cells])
        labels = rng.integers(1, num_classes + 1, len(gt))
        dets, det_labels = [], []
        for box, label in zip(gt, labels):
            for _ in range(rng.integers(0, 3)):  # misses, hits, duplicates, loose boxes
                dets.append(box + rng.normal(0, 0.03, 4))
                det_labels.append(label if rng.random() < 0.8 else rng.integers(1, num_classes + 1))
        for _ in range(rng.integers(0, 3)):  # background detections
            y, x = rng.uniform(0, 0.8, 2)
            dets.append(_box(y, x, 0.1, 0.1))
            det_labels.append(rng.integers(1, num_classes + 1))
        det_scores = scores[used:used + len(dets), 0]
        used += len(dets)
        images.append((gt, labels, np.array(dets).reshape(-1, 4), det_scores,
                       np.array(det_labels, np.int64)))
    return images


@pytest.mark.parametrize('seed', range(6))
def test_ap50_agrees_with_voc_area_rule_within_the_interpolation_bound(seed):
    rng = np.random.default_rng(seed)
    classes = {0: 'background', 1: 'a', 2: 'b', 3: 'c'}
    voc = voc_eval.VOCEvaluator(classes)
    per_class = {c: coco_eval.CocoEvaluator({0: 'background', c: classes[c]}) for c in (1, 2, 3)}
    mean = coco_eval.CocoEvaluator(classes)
    for gt, labels, dets, scores, det_labels in _random_case(rng, 30, 5, 3):
        no_difficult = np.zeros(len(gt), bool)
        voc.add_image(gt, labels, no_difficult, dets, scores, det_labels)
        mean.add_image(400, 600, gt, labels, no_difficult, dets, scores, det_labels)
        for c, evaluator in per_class.items():
            g, d = labels == c, det_labels == c
            evaluator.add_image(400, 600, gt[g], labels[g], no_difficult[g], dets[d], scores[d],
                                det_labels[d])
    results = voc.evaluate()
    for c, evaluator in per_class.items():
        voc_ap = results['per_class'][classes[c]]['ap_voc12']
        assert abs(evaluator.evaluate()['AP50'] - voc_ap) <= coco_eval.AP50_VOC_BOUND + 1e-9
    assert abs(mean.evaluate()['AP50'] - results['mAP_voc12']) <= coco_eval.AP50_VOC_BOUND + 1e-9


def test_the_bound_is_nearly_reached():
    # 100 objects, only the first found (precision 1 up to recall 0.01), then nothing:
    # VOC area 0.01, COCO (q(0) + q(0.01)) / 101 = 2/101; the gap 99/10100 is just under 1/101.
    gt = np.array([_box(0.0, i * 0.01, 0.01, 0.005) for i in range(100)])
    voc = voc_eval.VOCEvaluator(CLASSES)
    coco = coco_eval.CocoEvaluator(CLASSES)
    args = (gt, np.ones(100, np.int64), np.zeros(100, bool), gt[:1], [0.9], [1])
    voc.add_image(*args)
    coco.add_image(1000, 1000, *args)
    voc_ap = voc.evaluate()['mAP_voc12']
    coco_ap = coco.evaluate()['AP50']
    assert voc_ap == pytest.approx(0.01)
    assert coco_ap == pytest.approx(2 / 101)
    assert coco_ap - voc_ap == pytest.approx(99 / 10100)
    assert coco_ap - voc_ap <= coco_eval.AP50_VOC_BOUND


def test_format_table():
    text = coco_eval.format_table({'AP': 0.5, 'AP50': None})
    assert 'AP @[IoU .50:.95]' in text and '0.5000' in text and '-' in text
