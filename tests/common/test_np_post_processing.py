"""Tests of common/np_post_processing.py: NMS against tf.image.non_max_suppression."""
import numpy as np
import pytest
import tensorflow as tf

from common import np_post_processing


def _random_boxes(rng, n, flip=False):
    mins = rng.uniform(0.0, 0.8, [n, 2])
    boxes = np.concatenate([mins, mins + rng.uniform(0.02, 0.3, [n, 2])], axis=1)
    if flip:        # some boxes with swapped corners, which TF's NMS accepts
        swap = rng.uniform(size=n) < 0.3
        boxes[swap] = boxes[swap][:, [2, 3, 0, 1]]
    return boxes.astype(np.float32)


def test_nms_hand_case():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]],
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    np.testing.assert_array_equal(np_post_processing.nms(boxes, scores, 0.5, 10), [3, 0, 2])
    np.testing.assert_array_equal(np_post_processing.nms(boxes, scores, 0.5, 2), [3, 0])
    np.testing.assert_array_equal(np_post_processing.nms(boxes, scores, 0.95, 10), [3, 0, 1, 2])
    np.testing.assert_array_equal(np_post_processing.nms(boxes, scores, 0.5, 10, 0.8), [3, 0])
    assert np_post_processing.nms(np.zeros([0, 4]), np.zeros([0]), 0.5, 10).shape == (0,)


@pytest.mark.parametrize('seed', range(8))
def test_nms_equals_tensorflow(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300)) if seed < 6 else (40, 200)[seed - 6]
    boxes = _random_boxes(rng, n, flip=seed % 2 == 1)
    scores = rng.uniform(size=n).astype(np.float32)
    if seed >= 4:               # ties in the scores
        scores = np.round(scores, 1)
    if seed in (2, 3):          # empty boxes never suppress and are never suppressed
        boxes[::7, 2] = boxes[::7, 0]
    iou_threshold = float(rng.uniform(0.2, 0.7))
    max_output = int(rng.integers(1, n + 5))
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        expected = sess.run(tf.image.non_max_suppression(boxes, scores, max_output,
                                                         iou_threshold=iou_threshold,
                                                         score_threshold=0.3))
    got = np_post_processing.nms(boxes, scores, iou_threshold, max_output, score_threshold=0.3)
    np.testing.assert_array_equal(got, expected)


def test_postprocess_hand_case():
    scores = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.3, 0.1, 0.6], [1.0, 0.0, 0.0]],
                      np.float32)
    boxes = np.array([[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.45], [0.5, 0.5, 1, 1], [-1, -1, 2, 2]],
                     np.float32)
    det_boxes, det_scores, det_classes = np_post_processing.postprocess(scores, boxes)
    # Box 1 is suppressed by box 0 (same class, IoU 0.9); box 2 has another class.
    np.testing.assert_allclose(det_scores, [0.9, 0.6, 0.1])
    np.testing.assert_array_equal(det_classes, [1, 2, 1])
    np.testing.assert_allclose(det_boxes[0], [0, 0, 0.5, 0.5])
    det_boxes, det_scores, _ = np_post_processing.postprocess(scores, boxes, keep_top_k=1)
    np.testing.assert_allclose(det_scores, [0.9])


def test_postprocess_clips_and_handles_nothing_detected():
    scores = np.array([[0.5, 0.5]], np.float32)
    det_boxes, _, _ = np_post_processing.postprocess(scores, np.array([[-1, -1, 2, 0.5]]))
    np.testing.assert_allclose(det_boxes, [[0, 0, 1, 0.5]])
    det_boxes, det_scores, det_classes = np_post_processing.postprocess(
        np.array([[1.0, 0.0]], np.float32), np.zeros([1, 4], np.float32))
    assert det_boxes.shape == (0, 4) and det_scores.shape == (0,) and det_classes.shape == (0,)


def test_postprocess_bad_shapes():
    with pytest.raises(ValueError, match='scores'):
        np_post_processing.postprocess(np.zeros([3, 2]), np.zeros([4, 4]))
