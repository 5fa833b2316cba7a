"""Tests of common/np_box_ops.py (numpy box coding and IoU)."""
import subprocess
import sys

import numpy as np

from common import np_box_ops
from tests import helpers

SCALING = (0.1, 0.1, 0.2, 0.2)


def test_iou_hand_computed():
    a = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    b = np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 1.0, 1.0]])
    expected = [[1.0, 0.0625 / (0.25 + 0.25 - 0.0625), 0.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(np_box_ops.iou(a, b), expected, atol=1e-6)


def test_encode_hand_computed():
    anchors = np.array([[0.0, 0.0, 1.0, 1.0]])
    boxes = np.array([[0.1, 0.2, 0.5, 0.6]])        # centre (0.3, 0.4), size 0.4 x 0.4
    expected = [[-2.0, -1.0, np.log(0.4) / 0.2, np.log(0.4) / 0.2]]
    np.testing.assert_allclose(np_box_ops.encode_boxes(boxes, anchors, SCALING), expected,
                               atol=1e-5)


def test_round_trip():
    rng = np.random.default_rng(0)
    anchors = helpers.random_boxes(rng, [50])
    boxes = helpers.random_boxes(rng, [3, 50])
    locs = np_box_ops.encode_boxes(boxes, anchors, SCALING)
    np.testing.assert_allclose(np_box_ops.decode_boxes(locs, anchors, SCALING), boxes, atol=1e-5)


def test_empty_box_encodes_finite_and_decode_is_capped():
    anchors = np.array([[0.0, 0.0, 0.5, 0.5]])
    assert np.all(np.isfinite(np_box_ops.encode_boxes(np.zeros([1, 4]), anchors, SCALING)))
    boxes = np_box_ops.decode_boxes(np.array([[0.0, 0.0, 1e4, 1e4]]), anchors, SCALING)
    np.testing.assert_allclose(boxes[0, 2] - boxes[0, 0], 0.5 * 1000 / 16, rtol=1e-5)


def test_numpy_modules_import_without_tensorflow():
    code = ('import sys; import common.np_box_ops, common.np_post_processing, nets.anchors, '
            'nets.ssd_params; assert "tensorflow" not in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True)
