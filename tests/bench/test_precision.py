"""bench/precision.py: reading COCO results and matching detections across precisions."""
import json

import numpy as np

from bench import precision


def test_detections_by_image_keeps_confident_ones_as_yxyx(tmp_path):
    path = tmp_path / 'detections.json'
    path.write_text(json.dumps([
        {'image_id': 1, 'category_id': 2, 'bbox': [10, 20, 30, 40], 'score': 0.9},
        {'image_id': 1, 'category_id': 3, 'bbox': [0, 0, 5, 5], 'score': 0.2},
        {'image_id': 2, 'category_id': 1, 'bbox': [1, 2, 3, 4], 'score': 0.5}]))
    found = precision.detections_by_image(str(path), 0.5)
    np.testing.assert_array_equal(found[1][0], [[20, 10, 60, 40]])
    np.testing.assert_array_equal(found[1][1], [2])
    assert sorted(found) == [1, 2]


def test_matched_share_needs_the_class_and_the_iou_and_matches_once():
    box = [0.0, 0.0, 10.0, 10.0]
    shifted = [0.0, 0.0, 10.0, 10.5]      # IoU 0.95 with box
    far = [0.0, 0.0, 10.0, 13.0]          # IoU 0.77
    reference = {1: (np.array([box, box]), np.array([1, 1])),
                 2: (np.array([box]), np.array([1])),
                 3: (np.array([box]), np.array([2]))}
    other = {1: (np.array([shifted]), np.array([1])),   # one match for two boxes
             2: (np.array([far]), np.array([1])),       # IoU too low
             3: (np.array([box]), np.array([1]))}       # other class
    assert precision.matched_share(reference, other, 0.9) == (1, 4)
    assert precision.matched_share(reference, other, 0.7) == (2, 4)
    assert precision.matched_share(other, other, 0.9) == (3, 3)
