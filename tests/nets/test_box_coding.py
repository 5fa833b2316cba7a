"""Tests of nets/box_coding.py against hand numbers and the numpy twins."""
import numpy as np
import tensorflow as tf

from common import np_box_ops
from nets import anchors as anchors_lib
from nets import box_coding, ssd_params
from tests import helpers

SCALING = (0.1, 0.1, 0.2, 0.2)


def _run(tensors):
    with tf.compat.v1.Session() as sess:
        return sess.run(tensors)


def test_encode_hand_computed():
    with tf.Graph().as_default():
        locs = box_coding.encode_boxes([[0.1, 0.2, 0.5, 0.6]], np.array([[0.0, 0.0, 1.0, 1.0]]),
                                       SCALING)
        np.testing.assert_allclose(_run(locs), [[-2.0, -1.0, np.log(0.4) / 0.2,
                                                 np.log(0.4) / 0.2]], atol=1e-5)


def test_round_trip_on_ssd300_anchors():
    anchors = anchors_lib.ssd_anchors(ssd_params.SSD_300_VGG)
    rng = np.random.default_rng(1)
    boxes = helpers.random_boxes(rng, [2, len(anchors)])
    with tf.Graph().as_default():
        locs = box_coding.encode_boxes(boxes, anchors, SCALING)
        decoded = box_coding.decode_boxes(locs, anchors, SCALING)
        locs_v, decoded_v = _run([locs, decoded])
    np.testing.assert_allclose(decoded_v, boxes, atol=1e-5)
    np.testing.assert_allclose(locs_v, np_box_ops.encode_boxes(boxes, anchors, SCALING),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np_box_ops.decode_boxes(locs_v, anchors, SCALING), boxes,
                               atol=1e-5)


def test_iou_matches_numpy():
    rng = np.random.default_rng(2)
    a = helpers.random_boxes(rng, [7])
    b = helpers.random_boxes(rng, [5])
    with tf.Graph().as_default():
        got = _run(box_coding.iou(a, b))
    np.testing.assert_allclose(got, np_box_ops.iou(a, b), atol=1e-6)


def test_decode_caps_large_offsets():
    with tf.Graph().as_default():
        boxes = _run(box_coding.decode_boxes([[0.0, 0.0, 1e4, 1e4]], [[0.0, 0.0, 0.5, 0.5]],
                                             SCALING))
    assert np.all(np.isfinite(boxes))
    np.testing.assert_allclose(boxes[0, 2] - boxes[0, 0], 0.5 * 1000 / 16, rtol=1e-5)
