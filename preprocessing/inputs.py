"""tf.data input pipelines of training (augment + match anchors) and evaluation."""
import functools

import tensorflow as tf

from common import fields
from nets import matching

# Per-box fields of evaluation batches, padded to the largest count in the batch.
_EVAL_BOX_FIELDS = (fields.BOXES, fields.LABELS, fields.DIFFICULT)


def _prepare_train_sample(sample, preprocess_fn, anchors, match_threshold, prior_scaling):
    """Augments one sample and matches its boxes to the anchors (fixed shapes [A])."""
    sample = preprocess_fn(sample)
    target_labels, target_locs, _ = matching.match_anchors(
        anchors, sample[fields.BOXES], sample[fields.LABELS], sample.get(fields.DIFFICULT),
        match_threshold=match_threshold, ignore_difficult=True, prior_scaling=prior_scaling)
    return {
        fields.IMAGE: sample[fields.IMAGE],
        fields.TARGET_LABELS: target_labels,
        fields.TARGET_LOCS: target_locs,
        fields.BOXES: tf.reshape(sample[fields.BOXES], [-1, 4]),
    }


def train_dataset(dataset_info, preprocess_fn, anchors, prior_scaling, batch_size,
                  match_threshold=0.5, shuffle_buffer=1000, num_readers=2,
                  num_preprocessing_threads=2, seed=None, num_shards=1, shard_index=0,
                  autotune=True):
    """Endless training batches.

    Args:
        dataset_info: from dataset_factory.get_dataset.
        preprocess_fn: training preprocessing of one sample dict.
        anchors: float32 numpy [A, 4] of the network.
        prior_scaling: box coding variances (4 floats).
        batch_size: images per batch.
        match_threshold: IoU for an anchor to match a ground truth.
        shuffle_buffer: records in the shuffle buffer.
        num_readers: parallel TFRecord readers.
        num_preprocessing_threads: parallel map calls.
        seed: shuffle seed.
        num_shards, shard_index: read part `shard_index` of `num_shards` disjoint parts of
            the data (one per worker of a cluster; DatasetInfo.read).
        autotune: let tf.data tune its parallelism in a background thread. Destroying the
            iterator waits for that thread's next wake-up, up to about a minute, which a
            cluster's replica pays at every session close and recovery; without it, the
            AUTOTUNE parallelism is fixed (tf.data's default: the number of cores).

    Returns:
        tf.data.Dataset of dicts: `image` float32 [B, S, S, 3], `target_labels` int64
        [B, A] (-1 ignored), `target_locs` float32 [B, A, 4], `boxes` float32 [B, N, 4]
        (zero padded, for summaries).
    """
    num_readers = max(1, min(num_readers, len(dataset_info.files)))
    dataset = dataset_info.read(shuffle=True, seed=seed, num_readers=num_readers,
                                num_epochs=None, shuffle_buffer=shuffle_buffer,
                                num_shards=num_shards, shard_index=shard_index)
    prepare = functools.partial(_prepare_train_sample, preprocess_fn=preprocess_fn,
                                anchors=tf.constant(anchors, tf.float32),
                                match_threshold=match_threshold, prior_scaling=prior_scaling)
    dataset = dataset.map(prepare, num_parallel_calls=num_preprocessing_threads)
    dataset = dataset.padded_batch(batch_size, drop_remainder=True)
    if not autotune:
        options = tf.data.Options()
        options.autotune.enabled = False
        dataset = dataset.with_options(options)
    return dataset.prefetch(2)


def _prepare_eval_sample(sample, preprocess_fn):
    output = preprocess_fn(sample)
    result = {fields.IMAGE: output[fields.IMAGE], fields.FILENAME: sample[fields.FILENAME],
              fields.SOURCE_ID: sample[fields.SOURCE_ID], fields.SHAPE: sample[fields.SHAPE],
              fields.NUM_BOXES: tf.shape(sample[fields.BOXES])[0]}
    for key in _EVAL_BOX_FIELDS:
        result[key] = sample[key]
    return result


def eval_dataset(dataset_info, preprocess_fn, batch_size, num_preprocessing_threads=2):
    """One pass over the split in file order.

    Returns:
        tf.data.Dataset of dicts: `image` float32 [B, S, S, 3], `boxes` [B, N, 4],
        `labels` [B, N], `difficult` [B, N] (zero padded), `num_boxes` int32 [B],
        `filename`, `source_id` string [B], `shape` int32 [B, 3] (of the original
        image); the last batch may be smaller.
    """
    dataset = dataset_info.read(shuffle=False, num_epochs=1, num_readers=1)
    dataset = dataset.map(functools.partial(_prepare_eval_sample, preprocess_fn=preprocess_fn),
                          num_parallel_calls=num_preprocessing_threads)
    return dataset.padded_batch(batch_size).prefetch(2)
