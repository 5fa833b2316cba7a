"""SSD loss: softmax cross-entropy with hard negative mining plus smooth L1 (Liu et al., 2016).

Per image, the negatives (label 0) with the highest cross-entropy are kept, k of them
with k = ceil(negative_ratio * positives of that image); an image without positives
keeps min_negatives negatives (default negative_ratio, as if it had one positive) so
background-only images still teach the background class. Ignored anchors (label -1)
count neither way. The sums are divided by max(1, positives in the batch), so the loss
is finite for batches without any positive.
"""
import tensorflow as tf


def smooth_l1(x):
    """Elementwise smooth L1 (Huber with delta 1)."""
    absx = tf.abs(x)
    return tf.where(absx < 1.0, 0.5 * tf.square(x), absx - 0.5)


def hard_negative_mask(neg_losses, negatives, num_negatives):
    """Selects the num_negatives[b] negatives of highest loss in each row.

    Args:
      neg_losses: float32 [B, A]; negatives: bool [B, A]; num_negatives: int32 [B].

    Returns:
      bool [B, A] (ties: lower anchor index first).
    """
    masked = tf.where(negatives, neg_losses, tf.fill(tf.shape(neg_losses), -1.0))
    order = tf.argsort(masked, axis=1, direction='DESCENDING', stable=True)
    rank = tf.argsort(order, axis=1, stable=True)
    return tf.logical_and(negatives, rank < num_negatives[:, None])


def ssd_losses(logits, locs, target_labels, target_locs, negative_ratio=3.0, loss_alpha=1.0,
               scope=None, min_negatives=None):
    """SSD multibox loss, added to the tf.compat.v1 LOSSES collection (total only).

    Args:
      logits: float32 [B, A, C].
      locs: float32 [B, A, 4] predicted offsets.
      target_labels: int [B, A] (0 background, -1 ignored).
      target_locs: float32 [B, A, 4] encoded targets.
      negative_ratio: hard negatives per positive.
      loss_alpha: weight of the localisation loss.
      scope: name scope.
      min_negatives: negatives kept for an image without positives (default
        negative_ratio).

    Returns:
      dict of float32 scalars: total, cls_pos, cls_neg, loc (each already divided by
      max(1, number of positives)).
    """
    if min_negatives is None:
        min_negatives = negative_ratio
    with tf.name_scope(scope or 'ssd_losses'):
        logits = tf.convert_to_tensor(logits, tf.float32)
        target_labels = tf.cast(target_labels, tf.int32)
        positives = target_labels > 0
        negatives = tf.equal(target_labels, 0)
        pos_f = tf.cast(positives, tf.float32)
        num_pos = tf.reduce_sum(tf.cast(positives, tf.int32), axis=1)           # [B]
        num_neg_available = tf.reduce_sum(tf.cast(negatives, tf.int32), axis=1)
        wanted = tf.cast(tf.math.ceil(negative_ratio * tf.cast(num_pos, tf.float32)), tf.int32)
        wanted = tf.where(num_pos > 0, wanted, tf.fill(tf.shape(wanted),
                                                        int(round(min_negatives))))
        num_neg = tf.minimum(wanted, num_neg_available)

        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.maximum(target_labels, 0), logits=logits)                 # [B, A]
        hard_neg = tf.stop_gradient(
            hard_negative_mask(tf.stop_gradient(cross_entropy), negatives, num_neg))
        normaliser = tf.maximum(1.0, tf.reduce_sum(pos_f))

        cls_pos = tf.reduce_sum(cross_entropy * pos_f) / normaliser
        cls_neg = tf.reduce_sum(cross_entropy * tf.cast(hard_neg, tf.float32)) / normaliser
        loc_terms = tf.reduce_sum(smooth_l1(locs - tf.cast(target_locs, tf.float32)), axis=-1)
        loc = loss_alpha * tf.reduce_sum(loc_terms * pos_f) / normaliser
        total = tf.add_n([cls_pos, cls_neg, loc], name='total')
        tf.compat.v1.losses.add_loss(total)
        return {'total': total, 'cls_pos': cls_pos, 'cls_neg': cls_neg, 'loc': loc}
