"""Tests of nets/post_processing.py: padding and equality with the numpy version."""
import numpy as np
import pytest
import tensorflow as tf

from common import np_post_processing
from nets import post_processing


def _run(scores, boxes, **kwargs):
    with tf.Graph().as_default():
        outputs = post_processing.postprocess(tf.constant(scores), tf.constant(boxes), **kwargs)
        with tf.compat.v1.Session() as sess:
            return sess.run(outputs)


def test_padding_and_counts():
    scores = np.array([[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.3, 0.1, 0.6]]], np.float32)
    boxes = np.array([[[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.45], [0.5, 0.5, 1, 1]]], np.float32)
    out = _run(np.concatenate([scores, scores * 0]), np.concatenate([boxes, boxes]),
               keep_top_k=5)
    assert out['detection_boxes'].shape == (2, 5, 4)
    np.testing.assert_array_equal(out['num_detections'], [3, 0])
    np.testing.assert_allclose(out['detection_scores'][0], [0.9, 0.6, 0.1, 0, 0])
    np.testing.assert_array_equal(out['detection_classes'][0], [1, 2, 1, 0, 0])
    np.testing.assert_array_equal(out['detection_boxes'][1], 0.0)


def _random_case(rng, batch, num_anchors, num_classes):
    logits = rng.normal(0, 2, [batch, num_anchors, num_classes])
    logits[..., 0] += 2.0
    scores = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    mins = rng.uniform(-0.1, 0.9, [batch, num_anchors, 2])
    boxes = np.concatenate([mins, mins + rng.uniform(0.02, 0.4, [batch, num_anchors, 2])], -1)
    return scores.astype(np.float32), boxes.astype(np.float32)


@pytest.mark.parametrize('seed, kwargs', [
    (0, {}),
    (1, {'select_threshold': 0.2, 'nms_threshold': 0.3}),
    (2, {'pre_nms_top_k': 20, 'keep_top_k': 30}),
    (3, {'keep_top_k': 5, 'nms_threshold': 0.6}),
    (4, {'pre_nms_top_k': 7}),          # scores rounded: ties at the top-k boundary
    (5, {'keep_top_k': 12}),
])
def test_equals_numpy(seed, kwargs):
    rng = np.random.default_rng(seed)
    scores, boxes = _random_case(rng, 2, 300, 5)
    if seed >= 4:
        scores = np.round(scores, 1)
    out = _run(scores, boxes, **kwargs)
    for b in range(2):
        det_boxes, det_scores, det_classes = np_post_processing.postprocess(
            scores[b], boxes[b], **kwargs)
        k = int(out['num_detections'][b])
        assert k == len(det_scores)
        np.testing.assert_allclose(out['detection_scores'][b, :k], det_scores, rtol=1e-6)
        np.testing.assert_array_equal(out['detection_classes'][b, :k], det_classes)
        np.testing.assert_allclose(out['detection_boxes'][b, :k], det_boxes, atol=1e-7)
        assert np.all((det_boxes >= 0) & (det_boxes <= 1))
