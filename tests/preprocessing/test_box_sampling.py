"""Tests for preprocessing/box_sampling.py: hand examples and properties over many seeds."""
import numpy as np
import tensorflow as tf

from nets import box_coding
from preprocessing import box_sampling, image_ops

NUM_SEEDS = 200


def _run(tensors, feed_dict=None):
    with tf.compat.v1.Session() as sess:
        return sess.run(tensors, feed_dict)


def _over_seeds(build, num_seeds=NUM_SEEDS):
    """Builds build(seed placeholder) once and runs it for seeds (i, 7)."""
    with tf.Graph().as_default():
        seed = tf.compat.v1.placeholder(tf.int32, [2])
        outputs = build(seed)
        with tf.compat.v1.Session() as sess:
            return [sess.run(outputs, {seed: [i, 7]}) for i in range(num_seeds)]


def test_window_coordinates_hand_values():
    with tf.Graph().as_default():
        moved, composed = _run((
            box_sampling.boxes_in_window(tf.constant([[0.5, 0.5, 0.75, 1.0]]),
                                         tf.constant([0.5, 0.5, 1.0, 1.0])),
            box_sampling.compose_windows(tf.constant([-1.0, -1.0, 3.0, 3.0]),
                                         tf.constant([0.25, 0.5, 0.5, 1.0]))))
    np.testing.assert_allclose(moved, [[0.0, 0.0, 0.5, 1.0]])
    np.testing.assert_allclose(composed, [0.0, 1.0, 1.0, 3.0])


def test_crop_boxes_keeps_centres_inside_and_clips():
    with tf.Graph().as_default():
        boxes = tf.constant([[0.1, 0.1, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9], [0.2, 0.2, 0.6, 0.6]])
        cropped, kept = _run(box_sampling.crop_boxes(boxes, tf.constant([0.0, 0.0, 0.5, 0.5])))
        none, none_kept = _run(box_sampling.crop_boxes(tf.zeros([0, 4]),
                                                       tf.constant([0.0, 0.0, 0.5, 0.5])))
    np.testing.assert_allclose(cropped, [[0.2, 0.2, 0.8, 0.8], [0.4, 0.4, 1.0, 1.0]], atol=1e-6)
    np.testing.assert_array_equal(kept, [0, 2])
    assert none.shape == (0, 4) and none_kept.shape == (0,)


def test_flip_boxes_and_window():
    with tf.Graph().as_default():
        boxes, window = _run((box_sampling.flip_boxes(tf.constant([[0.1, 0.2, 0.3, 0.5]])),
                              box_sampling.flip_window(tf.constant([0.1, 0.2, 0.3, 0.5]))))
    np.testing.assert_allclose(boxes, [[0.1, 0.5, 0.3, 0.8]])
    np.testing.assert_allclose(window, [0.1, 0.5, 0.3, 0.2])


def test_zoom_out_contains_the_image_up_to_four_times_larger():
    canvases = np.array(_over_seeds(box_sampling.sample_zoom_out))
    ratio = canvases[:, 2] - canvases[:, 0]
    np.testing.assert_allclose(canvases[:, 3] - canvases[:, 1], ratio, rtol=1e-5)
    assert np.all(ratio >= 1.0) and np.all(ratio <= 4.0 + 1e-5)
    assert np.all(canvases[:, :2] <= 1e-6) and np.all(canvases[:, 2:] >= 1.0 - 1e-6)
    assert 0.35 < np.mean(ratio > 1.0) < 0.65


def test_min_iou_options_are_all_drawn():
    values = _over_seeds(box_sampling.sample_min_iou, num_seeds=300)
    expected = {box_sampling.KEEP_IMAGE, 0.0} | set(box_sampling.MIN_IOUS)
    assert {round(float(v), 3) for v in values} == {round(v, 3) for v in expected}


def _boxes():
    return tf.constant([[0.1, 0.1, 0.5, 0.4], [0.5, 0.6, 0.9, 0.95]])


def test_crop_window_meets_min_iou_scale_and_aspect():
    windows = np.array(_over_seeds(
        lambda seed: box_sampling.sample_crop_window(_boxes(), 0.5, seed)))
    cropped = windows[np.any(windows != [0.0, 0.0, 1.0, 1.0], axis=1)]
    assert len(cropped) > NUM_SEEDS // 2
    assert np.all(cropped >= 0.0) and np.all(cropped <= 1.0)
    height, width = cropped[:, 2] - cropped[:, 0], cropped[:, 3] - cropped[:, 1]
    assert np.all(height * width >= 0.3 ** 2 - 1e-5)
    assert np.all(width / height >= 0.5 - 1e-4) and np.all(width / height <= 2.0 + 1e-4)
    with tf.Graph().as_default():
        windows = tf.constant(cropped, tf.float32)
        iou, centres = _run((box_coding.iou(windows, _boxes()),
                             box_sampling.centres_inside(_boxes(), windows)))
    assert np.all(iou.max(axis=1) >= 0.5)
    assert np.all(centres.any(axis=1))


def test_crop_window_keep_image_and_no_boxes():
    def build(seed):
        empty = tf.zeros([0, 4])
        return (box_sampling.sample_crop_window(_boxes(), box_sampling.KEEP_IMAGE, seed),
                box_sampling.sample_crop_window(empty, 0.3, seed),
                box_sampling.sample_crop_window(empty, 0.0, seed))
    results = _over_seeds(build, num_seeds=50)
    for keep, constrained, free in results:
        np.testing.assert_array_equal(keep, [0.0, 0.0, 1.0, 1.0])
        np.testing.assert_array_equal(constrained, [0.0, 0.0, 1.0, 1.0])
        assert np.all(free >= 0.0) and np.all(free <= 1.0)
    assert any(np.any(free != [0.0, 0.0, 1.0, 1.0]) for _, _, free in results)


def _box_iou(a, b):
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_transformed_boxes_cover_the_same_pixels():
    """Draws one filled box per channel, augments, and compares each mask with its box."""
    size, out = 120, 96
    boxes = np.array([[0.1, 0.1, 0.6, 0.5], [0.4, 0.45, 0.95, 0.9], [0.05, 0.55, 0.35, 0.95]],
                     np.float32)
    masks = np.zeros((size, size, 3), np.float32)
    for channel, (ymin, xmin, ymax, xmax) in enumerate(np.round(boxes * size).astype(int)):
        masks[ymin:ymax, xmin:xmax, channel] = 255.0

    def build(seed):
        window, new_boxes, kept = box_sampling.sample_geometry(tf.constant(boxes), seed)
        image = image_ops.crop_and_resize_image(masks, window, (out, out), (0.0, 0.0, 0.0))
        return image, new_boxes, kept

    checked = 0
    for image, new_boxes, kept in _over_seeds(build):
        assert new_boxes.shape == (len(kept), 4)
        assert np.all(new_boxes >= 0.0) and np.all(new_boxes <= 1.0)
        for box, channel in zip(new_boxes, kept):
            side = min(box[2] - box[0], box[3] - box[1]) * out
            if side < 4:
                continue  # too few pixels for a meaningful mask
            ys, xs = np.nonzero(image[:, :, channel] > 127.5)
            mask_box = np.array([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]) / out
            # Thresholding quantises each edge to whole output pixels.
            assert np.all(np.abs(mask_box - box) * out <= 1.0), (box, mask_box)
            if side >= 20:
                assert _box_iou(mask_box, box) > 0.9, (box, mask_box)
                checked += 1
    assert checked > NUM_SEEDS
