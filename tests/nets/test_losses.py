"""Tests of nets/losses.py: hand-computed loss, hard negatives, normalisation, no NaN."""
import numpy as np
import tensorflow as tf

from nets import losses


def _logits(z):
    """Two-class logits [0, z] for each z (shape [..., 2])."""
    z = np.asarray(z, np.float32)
    return np.stack([np.zeros_like(z), z], axis=-1)


def _softplus(z):
    return np.log1p(np.exp(z))


def _run(logits, locs, labels, target_locs, **kwargs):
    with tf.Graph().as_default():
        logits = tf.constant(logits, tf.float32)
        result = losses.ssd_losses(logits, tf.constant(locs, tf.float32),
                                   tf.constant(labels), tf.constant(target_locs, tf.float32),
                                   **kwargs)
        collected = tf.compat.v1.losses.get_losses()
        assert collected == [result['total']]
        grad = tf.gradients(result['total'], logits)[0]
        with tf.compat.v1.Session() as sess:
            return sess.run((result, grad))


def test_hand_computed_loss():
    # Anchor 0 positive (z=0), anchors 1-3 negatives with CE softplus(2), softplus(0),
    # softplus(1); anchor 4 ignored. negative_ratio 2 keeps anchors 1 and 3.
    logits = _logits([[0.0, 2.0, 0.0, 1.0, 10.0]])
    locs = np.array([[[0.5, -2.0, 0.0, 0.0]] + [[5.0, 5.0, 5.0, 5.0]] * 4], np.float32)
    labels = np.array([[1, 0, 0, 0, -1]])
    result, grad = _run(logits, locs, labels, np.zeros([1, 5, 4]), negative_ratio=2.0,
                        loss_alpha=2.0)
    np.testing.assert_allclose(result['cls_pos'], np.log(2.0), rtol=1e-5)
    np.testing.assert_allclose(result['cls_neg'], _softplus(2.0) + _softplus(1.0), rtol=1e-5)
    np.testing.assert_allclose(result['loc'], 2.0 * (0.125 + 1.5), rtol=1e-5)
    np.testing.assert_allclose(result['total'], result['cls_pos'] + result['cls_neg'] +
                               result['loc'], rtol=1e-6)
    # No gradient reaches the ignored anchor or the easy negative that was not mined.
    np.testing.assert_array_equal(grad[0, 4], 0.0)
    np.testing.assert_array_equal(grad[0, 2], 0.0)
    assert np.all(grad[0, [0, 1, 3]] != 0.0)


def test_per_image_mining_and_batch_normalisation():
    # Image 0: 2 positives -> ceil(1.5 * 2) = 3 negatives; image 1: no positive ->
    # min_negatives 1. The sum is divided by the 2 positives of the batch.
    z = np.array([[0.0, 0.0, 4.0, 3.0, 2.0, 1.0], [5.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    labels = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    result, _ = _run(_logits(z), np.zeros([2, 6, 4]), labels, np.zeros([2, 6, 4]),
                     negative_ratio=1.5, min_negatives=1)
    np.testing.assert_allclose(result['cls_pos'], 2 * np.log(2.0) / 2, rtol=1e-5)
    expected_neg = (_softplus(4.0) + _softplus(3.0) + _softplus(2.0) + _softplus(5.0)) / 2
    np.testing.assert_allclose(result['cls_neg'], expected_neg, rtol=1e-5)
    np.testing.assert_allclose(result['loc'], 0.0, atol=1e-7)


def test_batch_without_positives_is_finite():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, [2, 50, 4]).astype(np.float32)
    labels = np.zeros([2, 50], np.int64)
    labels[1, :10] = -1
    result, grad = _run(logits, rng.normal(0, 1, [2, 50, 4]), labels, np.zeros([2, 50, 4]))
    assert all(np.isfinite(v) for v in result.values())
    assert np.all(np.isfinite(grad))
    assert result['cls_pos'] == 0.0 and result['loc'] == 0.0
    assert result['cls_neg'] > 0.0          # 3 mined negatives per image, divided by 1


def test_all_anchors_ignored_is_zero_not_nan():
    result, grad = _run(_logits([[1.0, 2.0]]), np.zeros([1, 2, 4]), np.array([[-1, -1]]),
                        np.zeros([1, 2, 4]))
    assert result['total'] == 0.0
    np.testing.assert_array_equal(grad, 0.0)


def test_negatives_capped_by_available():
    # 1 positive wants 3 negatives but only 1 exists.
    result, _ = _run(_logits([[0.0, 1.0]]), np.zeros([1, 2, 4]), np.array([[1, 0]]),
                     np.zeros([1, 2, 4]))
    np.testing.assert_allclose(result['cls_neg'], _softplus(1.0), rtol=1e-5)


def test_smooth_l1():
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        got = sess.run(losses.smooth_l1(tf.constant([-3.0, -0.5, 0.0, 0.5, 2.0])))
    np.testing.assert_allclose(got, [2.5, 0.125, 0.0, 0.125, 1.5])
