"""Finds converted data sets and reads them as a tf.data pipeline.

Records are `{dataset_dir}/{name}_{split_name}_*.tfrecord`, classes come from
`{dataset_dir}/labels.txt`, the sample count from
`{dataset_dir}/{name}_{split_name}_summary.json` (records are counted when it
is missing or a custom file pattern is used).

Several data sets read as one (the SSD paper's VOC07+12 training): `name` lists them,
comma separated, each optionally with its own split (`voc2007,voc2012` with one
`split_name`, or `voc2007:trainval,voc2012:trainval`); `dataset_dir` is one folder for
all or one per data set (comma separated). Their labels.txt must agree. Training mixes
them in proportion to their sizes; a pass without shuffling reads them one after the
other.
"""
import glob
import json
import os

import tensorflow as tf

from common import fields
from common import labels as labels_lib
from datasets import record_schema as rs

_FEATURES = {
    rs.ENCODED: tf.io.FixedLenFeature([], tf.string),
    rs.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=''),
    rs.SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=''),
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
      filename, source_id string [] (source_id '' in records written before it existed).
    """
    features = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(features[rs.ENCODED], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    boxes = tf.stack([features[rs.BBOX_YMIN], features[rs.BBOX_XMIN],
                      features[rs.BBOX_YMAX], features[rs.BBOX_XMAX]], axis=1)
    return {
        fields.IMAGE: image,
        fields.SHAPE: tf.shape(image, out_type=tf.int32),
        fields.BOXES: boxes,
        fields.LABELS: features[rs.LABEL],
        fields.DIFFICULT: features[rs.DIFFICULT],
        fields.TRUNCATED: features[rs.TRUNCATED],
        fields.FILENAME: features[rs.FILENAME],
        fields.SOURCE_ID: features[rs.SOURCE_ID],
    }


class DatasetInfo:
    """A converted split (or several read as one): files, size and classes, and how to read it.

    Attributes:
      name, split_name: e.g. 'shapes', 'trainval' (several: 'voc2007,voc2012' and
        'trainval,trainval').
      files: sorted list of shard paths (of all parts).
      num_samples: number of images.
      num_classes: classes including the background.
      labels: dict id -> name (0 = background).
      labels_path: the labels.txt the classes come from.
      category_ids: dict class id -> original COCO category id for records converted from
        COCO (from the conversion summary), else None.
      parts: the DatasetInfo of each data set when several are read as one, else ().
    """

    def __init__(self, name, split_name, files, num_samples, labels, labels_path=None,
                 category_ids=None, parts=()):
        self.name = name
        self.split_name = split_name
        self.files = files
        self.num_samples = num_samples
        self.labels = labels
        self.num_classes = max(labels) + 1
        self.labels_path = labels_path
        self.category_ids = category_ids
        self.parts = tuple(parts)

    def read(self, shuffle=False, seed=None, num_readers=2, num_epochs=1, shuffle_buffer=1000,
             num_shards=1, shard_index=0):
        """The decoded examples as a tf.data.Dataset of parse_record dicts.

        Args:
          shuffle: shuffle the shard order every epoch and the records in a buffer;
            several data sets are sampled in proportion to their sizes.
          seed: shuffle seed; with a seed (or without shuffling) the order is deterministic.
          num_readers: shards read in parallel (interleaved record by record).
          num_epochs: passes over the data; None = forever.
          shuffle_buffer: records in the shuffle buffer (encoded, before decoding).
          num_shards, shard_index: read only part `shard_index` of `num_shards` disjoint
            parts (a worker of a cluster): every num_shards-th file when there are at least
            as many files as shards, else every num_shards-th record.
        """
        if not 0 <= shard_index < num_shards:
            raise ValueError('shard_index must be in [0, %d), got %d' % (num_shards, shard_index))
        if self.parts:
            return self._read_parts(shuffle, seed, num_readers, num_epochs, shuffle_buffer,
                                    num_shards, shard_index)
        deterministic = not shuffle or seed is not None
        files = tf.data.Dataset.from_tensor_slices(self.files)
        cycle_length = max(1, min(num_readers, len(self.files)))
        if num_shards > len(self.files):
            # Fewer files than shards: each reader keeps every num_shards-th record of one
            # pass in file order (the same order everywhere, so the parts are disjoint).
            records = files.interleave(
                tf.data.TFRecordDataset, cycle_length=cycle_length, block_length=1,
                num_parallel_calls=cycle_length, deterministic=True)
            records = records.shard(num_shards, shard_index).repeat(num_epochs)
        else:
            if num_shards > 1:
                files = files.shard(num_shards, shard_index)
            if shuffle:
                files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
            files = files.repeat(num_epochs)
            records = files.interleave(
                tf.data.TFRecordDataset, cycle_length=cycle_length, block_length=1,
                num_parallel_calls=cycle_length, deterministic=deterministic)
        if shuffle:
            records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return records.map(parse_record, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=deterministic)

    def _read_parts(self, shuffle, seed, num_readers, num_epochs, shuffle_buffer, num_shards,
                    shard_index):
        """Several data sets: sampled by size when shuffling, else one after the other."""
        datasets = [part.read(shuffle, None if seed is None else seed + index, num_readers,
                              num_epochs, shuffle_buffer, num_shards, shard_index)
                    for index, part in enumerate(self.parts)]
        if not shuffle:
            combined = datasets[0]
            for dataset in datasets[1:]:
                combined = combined.concatenate(dataset)
            return combined
        weights = [part.num_samples / float(self.num_samples) for part in self.parts]
        return tf.data.Dataset.sample_from_datasets(datasets, weights, seed=seed,
                                                    stop_on_empty_dataset=False)


def parse_dataset_specs(name, split_name, dataset_dir):
    """The (name, split, folder) of each data set named by the flags.

    Args:
      name: 'voc2007' or a comma-separated list, each entry 'name' or 'name:split'.
      split_name: split of the entries without one.
      dataset_dir: one folder, or a comma-separated list with one folder per entry.

    Returns:
      list of (name, split_name, dataset_dir) triples.

    Raises:
      ValueError: empty entries, repeated entries, or a folder count that does not match.
    """
    entries = [entry.strip() for entry in str(name).split(',')]
    if not all(entries):
        raise ValueError('dataset name %r has an empty entry' % name)
    dirs = [d.strip() for d in str(dataset_dir).split(',')] if ',' in str(dataset_dir) else [
        dataset_dir]
    if len(dirs) not in (1, len(entries)):
        raise ValueError('%d dataset folders (%s) for %d data sets (%s): give one folder, or '
                         'one per data set' % (len(dirs), dataset_dir, len(entries), name))
    specs = []
    for index, entry in enumerate(entries):
        set_name, _, set_split = entry.partition(':')
        set_name, set_split = set_name.strip(), (set_split.strip() or split_name)
        if not set_name or not set_split:
            raise ValueError('dataset entry %r needs a name and a split' % entry)
        specs.append((set_name, set_split, dirs[index if len(dirs) > 1 else 0]))
    seen = set()
    for spec in specs:
        if spec in seen:
            raise ValueError('data set %s:%s in %s is listed twice' % spec)
        seen.add(spec)
    return specs


def get_dataset(name, split_name, dataset_dir, file_pattern=None):
    """Describes the converted split `split_name` of data set `name` in `dataset_dir`.

    Args:
      name: data set name, e.g. 'shapes' or 'pascalvoc'; or several (parse_dataset_specs).
      split_name: e.g. 'trainval', 'test'.
      dataset_dir: folder with the shards, labels.txt and the summary (several: one, or
        one per data set, comma separated).
      file_pattern: optional glob of the shards (relative to dataset_dir; '%s' is
        replaced by split_name); default '{name}_{split_name}_*.tfrecord'. One data set only.

    Returns:
      DatasetInfo.

    Raises:
      DatasetNotFoundError: no shard matches, labels.txt is missing or invalid, the
        summary is unreadable, or the labels.txt of several data sets disagree.
    """
    try:
        specs = parse_dataset_specs(name, split_name, dataset_dir)
    except ValueError as e:
        raise DatasetNotFoundError(str(e)) from e
    if len(specs) == 1:
        return _get_one(*specs[0], file_pattern=file_pattern)
    if file_pattern is not None:
        raise DatasetNotFoundError('a custom file pattern reads one data set, got %s' % name)
    parts = [_get_one(*spec) for spec in specs]
    first = parts[0]
    for part in parts[1:]:
        if part.labels != first.labels:
            raise DatasetNotFoundError(
                'the classes of %s:%s (%s) and %s:%s (%s) disagree: %s; convert both with '
                'the same labels file' % (first.name, first.split_name, first.labels_path,
                                          part.name, part.split_name, part.labels_path,
                                          _label_difference(first.labels, part.labels)))
    category_ids = first.category_ids
    if any(part.category_ids != category_ids for part in parts):
        category_ids = None
    return DatasetInfo(','.join(p.name for p in parts), ','.join(p.split_name for p in parts),
                       [f for p in parts for f in p.files], sum(p.num_samples for p in parts),
                       first.labels, first.labels_path, category_ids, parts)


def _label_difference(a, b):
    """A short description of the first ids where two labels dicts differ."""
    ids = sorted(i for i in set(a) | set(b) if a.get(i) != b.get(i))
    return ', '.join('id %d is %r vs %r' % (i, a.get(i), b.get(i)) for i in ids[:3])


def _get_one(name, split_name, dataset_dir, file_pattern=None):
    """get_dataset of one data set."""
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
    category_ids = None
    if pattern == os.path.join(dataset_dir, rs.shard_glob(output_name)) and os.path.isfile(
            summary_path):
        try:
            with open(summary_path, encoding='utf-8') as f:
                summary = json.load(f)
            num_samples = int(summary['num_images'])
            if summary.get('category_ids'):
                category_ids = {int(k): int(v) for k, v in summary['category_ids'].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise DatasetNotFoundError('%s: unreadable summary (%s: %s)'
                                       % (summary_path, type(e).__name__, e)) from e
    else:
        num_samples = sum(1 for path in files for _ in tf.compat.v1.io.tf_record_iterator(path))
    return DatasetInfo(name, split_name, files, num_samples, labels, labels_path, category_ids)
