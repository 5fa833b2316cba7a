"""Finds a converted data set and reads it as a tf.data pipeline.

Records are `{dataset_dir}/{name}_{split_name}_*.tfrecord`, classes come from
`{dataset_dir}/labels.txt`, the sample count from
`{dataset_dir}/{name}_{split_name}_summary.json` (records are counted when it
is missing or a custom file pattern is used).
"""
import glob
import json
import os

import tensorflow as tf

from datasets import labels as labels_lib
from datasets import record_schema as rs

_FEATURES = {
    rs.ENCODED: tf.io.FixedLenFeature([], tf.string),
    rs.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=''),
    rs.BBOX_YMIN: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    rs.BBOX_XMIN: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    rs.BBOX_YMAX: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    rs.BBOX_XMAX: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
    rs.LABEL: tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    rs.DIFFICULT: tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    rs.TRUNCATED: tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
}


class DatasetNotFoundError(ValueError):
    """No records, or no labels.txt, where the data set should be."""


def parse_record(serialized):
    """Parses and decodes one serialized tf.train.Example of the record schema.

    Args:
      serialized: string [] tensor.

    Returns:
      dict: image uint8 [H, W, 3]; shape int32 [3]; boxes float32 [N, 4]
      (ymin, xmin, ymax, xmax, normalised); labels, difficult, truncated int64 [N];
      filename string [].
    """
    features = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(features[rs.ENCODED], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    boxes = tf.stack([features[rs.BBOX_YMIN], features[rs.BBOX_XMIN],
                      features[rs.BBOX_YMAX], features[rs.BBOX_XMAX]], axis=1)
    return {
        'image': image,
        'shape': tf.shape(image, out_type=tf.int32),
        'boxes': boxes,
        'labels': features[rs.LABEL],
        'difficult': features[rs.DIFFICULT],
        'truncated': features[rs.TRUNCATED],
        'filename': features[rs.FILENAME],
    }


class DatasetInfo:
    """A converted split: its files, size and classes, and how to read it.

    Attributes:
      name, split_name: e.g. 'shapes', 'trainval'.
      files: sorted list of shard paths.
      num_samples: number of images.
      num_classes: classes including the background.
      labels: dict id -> name (0 = background).
    """

    def __init__(self, name, split_name, files, num_samples, labels):
        self.name = name
        self.split_name = split_name
        self.files = files
        self.num_samples = num_samples
        self.labels = labels
        self.num_classes = max(labels) + 1

    def read(self, shuffle=False, seed=None, num_readers=2, num_epochs=1, shuffle_buffer=1000):
        """The decoded examples as a tf.data.Dataset of parse_record dicts.

        Args:
          shuffle: shuffle the shard order every epoch and the records in a buffer.
          seed: shuffle seed; with a seed (or without shuffling) the order is deterministic.
          num_readers: shards read in parallel (interleaved record by record).
          num_epochs: passes over the data; None = forever.
          shuffle_buffer: records in the shuffle buffer (encoded, before decoding).
        """
        deterministic = not shuffle or seed is not None
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if shuffle:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        files = files.repeat(num_epochs)
        cycle_length = max(1, min(num_readers, len(self.files)))
        records = files.interleave(
            tf.data.TFRecordDataset, cycle_length=cycle_length, block_length=1,
            num_parallel_calls=cycle_length, deterministic=deterministic)
        if shuffle:
            records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return records.map(parse_record, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=deterministic)


def get_dataset(name, split_name, dataset_dir, file_pattern=None):
    """Describes the converted split `split_name` of data set `name` in `dataset_dir`.

    Args:
      name: data set name, e.g. 'shapes' or 'pascalvoc'.
      split_name: e.g. 'trainval', 'test'.
      dataset_dir: folder with the shards, labels.txt and the summary.
      file_pattern: optional glob of the shards (relative to dataset_dir; '%s' is
        replaced by split_name); default '{name}_{split_name}_*.tfrecord'.

    Returns:
      DatasetInfo.

    Raises:
      DatasetNotFoundError: no shard matches, labels.txt is missing or invalid, or the
        summary is unreadable.
    """
    output_name = '%s_%s' % (name, split_name)
    if file_pattern is None:
        file_pattern = rs.shard_glob(output_name)
    elif '%s' in file_pattern:
        file_pattern = file_pattern % split_name
    pattern = os.path.join(dataset_dir, file_pattern)
    files = sorted(glob.glob(pattern))
    if not files:
        raise DatasetNotFoundError('no TFRecord files match %s' % pattern)
    labels_path = os.path.join(dataset_dir, labels_lib.LABELS_FILENAME)
    if not os.path.isfile(labels_path):
        raise DatasetNotFoundError('%s is missing (written by tf_convert_data.py)' % labels_path)
    try:
        labels = labels_lib.read_labels(labels_path)
    except labels_lib.LabelsError as e:
        raise DatasetNotFoundError(str(e)) from e
    summary_path = os.path.join(dataset_dir, rs.summary_name(output_name))
    if pattern == os.path.join(dataset_dir, rs.shard_glob(output_name)) and os.path.isfile(
            summary_path):
        try:
            with open(summary_path, encoding='utf-8') as f:
                num_samples = int(json.load(f)['num_images'])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DatasetNotFoundError('%s: unreadable summary (%s: %s)'
                                       % (summary_path, type(e).__name__, e)) from e
    else:
        num_samples = sum(1 for path in files for _ in tf.compat.v1.io.tf_record_iterator(path))
    return DatasetInfo(name, split_name, files, num_samples, labels)
