"""Tests of nets/matching.py on hand-built cases."""
import numpy as np
import pytest
import tensorflow as tf

from common import np_box_ops
from nets import anchors as anchors_lib
from nets import matching, ssd_params

SCALING = (0.1, 0.1, 0.2, 0.2)
# Four quadrant anchors and one shifted copy of the top-left one.
ANCHORS = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5],
                    [0.5, 0.5, 1.0, 1.0], [0.0, 0.1, 0.5, 0.6]], np.float32)


def _match(anchors, boxes, labels, difficult=None, **kwargs):
    with tf.Graph().as_default():
        boxes = tf.constant(np.asarray(boxes, np.float32).reshape(-1, 4))
        labels = tf.constant(np.asarray(labels, np.int64).reshape(-1))
        if difficult is not None:
            difficult = tf.constant(np.asarray(difficult, np.int64))
        outputs = matching.match_anchors(anchors, boxes, labels, difficult, **kwargs)
        with tf.compat.v1.Session() as sess:
            return sess.run(outputs)


def test_exact_box_matches_its_anchor():
    labels, locs, iou = _match(ANCHORS, [[0.5, 0.5, 1.0, 1.0]], [7])
    np.testing.assert_array_equal(labels, [0, 0, 0, 7, 0])
    np.testing.assert_allclose(locs, np.zeros([5, 4]), atol=1e-6)
    np.testing.assert_allclose(iou, [0, 0, 0, 1, 0], atol=1e-6)


def test_two_ground_truths_competing_for_one_anchor():
    # Both boxes overlap anchor 0 most (IoU 1.0 and 0.923); the second one falls back to
    # its next best anchor 4 (IoU 0.724). The threshold is high so only forcing matches.
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.02, 0.5, 0.52]]
    labels, locs, iou = _match(ANCHORS, boxes, [1, 2], match_threshold=0.99)
    np.testing.assert_array_equal(labels, [1, 0, 0, 0, 2])
    np.testing.assert_allclose(iou[[0, 4]], [1.0, 0.21 / 0.29], atol=1e-5)
    expected = np_box_ops.encode_boxes(np.array(boxes[1:]), ANCHORS[4:], SCALING)
    np.testing.assert_allclose(locs[4], expected[0], atol=1e-5)


def test_identical_ground_truths_are_matched_deterministically():
    # Exact tie: the lower ground-truth index takes the best anchor.
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]]
    labels, _, _ = _match(ANCHORS, boxes, [3, 4], match_threshold=0.99)
    np.testing.assert_array_equal(labels, [3, 0, 0, 0, 4])
    labels, _, _ = _match(ANCHORS, boxes[::-1], [4, 3], match_threshold=0.99)
    np.testing.assert_array_equal(labels, [4, 0, 0, 0, 3])


def test_tie_between_anchors_goes_to_lowest_index():
    anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]], np.float32)
    labels, _, _ = _match(anchors, [[0.0, 0.0, 0.2, 0.5]], [5])      # IoU 0.4 with both
    np.testing.assert_array_equal(labels, [5, 0])


def test_tiny_box_is_forced_to_its_best_anchor():
    # Area 0.025 inside anchor 3 (area 0.25): IoU 0.1, below the threshold.
    box = [0.6, 0.6, 0.75, 0.7666667]
    labels, locs, iou = _match(ANCHORS, [box], [2])
    np.testing.assert_array_equal(labels, [0, 0, 0, 2, 0])
    np.testing.assert_allclose(iou[3], 0.1, atol=1e-5)
    expected = np_box_ops.encode_boxes(np.array([box]), ANCHORS[3:4], SCALING)[0]
    np.testing.assert_allclose(locs[3], expected, atol=1e-4)


def test_threshold_matches_best_ground_truth_per_anchor():
    # Box A covers anchors 0 and 4 (IoU 1 and 0.667); box B is best for anchor 1 (IoU 1)
    # and overlaps anchor 4 with IoU 0.1 / 0.4 = 0.25. Anchor 4 goes to A through the
    # threshold step.
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 0.5, 1.0]]
    labels, _, iou = _match(ANCHORS, boxes, [1, 2])
    np.testing.assert_array_equal(labels, [1, 2, 0, 0, 1])
    np.testing.assert_allclose(iou[4], 0.2 / 0.3, atol=1e-5)
    labels, _, _ = _match(ANCHORS, boxes, [1, 2], match_threshold=0.7)
    np.testing.assert_array_equal(labels, [1, 2, 0, 0, 0])


def test_no_ground_truth_gives_all_background():
    labels, locs, iou = _match(ANCHORS, np.zeros([0, 4]), np.zeros([0]))
    np.testing.assert_array_equal(labels, np.zeros(5))
    np.testing.assert_array_equal(locs, np.zeros([5, 4]))
    np.testing.assert_array_equal(iou, np.zeros(5))


def test_difficult_boxes_are_ignored_or_kept():
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]
    labels, _, _ = _match(ANCHORS, boxes, [1, 2], difficult=[0, 1])
    np.testing.assert_array_equal(labels, [1, 0, 0, -1, 1])     # anchor 4: IoU 0.667 with box 0
    labels, _, _ = _match(ANCHORS, boxes, [1, 2], difficult=[0, 1], ignore_difficult=False)
    np.testing.assert_array_equal(labels, [1, 0, 0, 2, 1])


def test_bad_threshold():
    with pytest.raises(ValueError, match='match_threshold'):
        _match(ANCHORS, [[0, 0, 1, 1]], [1], match_threshold=0.0)


def test_ssd300_targets_decode_to_ground_truth():
    anchors = anchors_lib.ssd_anchors(ssd_params.SSD_300_VGG)
    boxes = np.array([[0.1, 0.1, 0.4, 0.3], [0.5, 0.4, 0.95, 0.9], [0.02, 0.8, 0.05, 0.83]],
                     np.float32)
    labels, locs, iou = _match(anchors, boxes, [1, 2, 3])
    for label, box in zip([1, 2, 3], boxes):
        positives = labels == label
        assert positives.sum() >= 1
        decoded = np_box_ops.decode_boxes(locs[positives], anchors[positives], SCALING)
        np.testing.assert_allclose(decoded, np.tile(box, [positives.sum(), 1]), atol=1e-5)
    # Besides at most one forced anchor per box, matches have IoU >= 0.5; the tiny box
    # is matched by forcing only.
    assert (labels == 3).sum() == 1
    assert iou[labels == 3][0] < 0.5
    for label in (1, 2):
        assert np.sum(iou[labels == label] < 0.5) <= 1
    np.testing.assert_array_equal(locs[labels == 0], 0.0)


def test_inside_tf_data_map():
    anchors = ANCHORS

    def gen():
        yield np.array([[0.5, 0.5, 1.0, 1.0]], np.float32), np.array([2], np.int64)
        yield np.zeros([0, 4], np.float32), np.zeros([0], np.int64)

    with tf.Graph().as_default():
        dataset = tf.data.Dataset.from_generator(
            gen, output_signature=(tf.TensorSpec([None, 4], tf.float32),
                                   tf.TensorSpec([None], tf.int64)))
        dataset = dataset.map(lambda boxes, labels: matching.match_anchors(anchors, boxes,
                                                                            labels)[0])
        next_labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        with tf.compat.v1.Session() as sess:
            np.testing.assert_array_equal(sess.run(next_labels), [0, 0, 0, 2, 0])
            np.testing.assert_array_equal(sess.run(next_labels), [0, 0, 0, 0, 0])
