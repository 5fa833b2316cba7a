"""Converts ExampleSpecs into sharded TFRecords, in parallel, deterministically.

The examples are shuffled with the seed and cut into contiguous shards before
any image is read, so shard order and contents depend only on the input and
the seed (not on --num_workers). Workers read and check the images and build
the serialized tf.train.Example; the main process writes the shards in order
under temporary names and renames them all only when every shard is complete.
"""
import collections
import glob
import json
import math
import os

import numpy as np
import tensorflow as tf

from common import labels as labels_lib
from common import process_pool, progress
from common.files import atomic_write
from datasets import image_bytes, specs
from datasets import record_schema as rs

_LOG_EVERY_SECONDS = 5.0

Encoded = collections.namedtuple('Encoded', ['serialized', 'report'])


def shard_assignment(num_examples, num_shards, seed):
    """Deterministic order and shard of every example.

    Returns:
      list of num_shards lists of example indices (shuffled with `seed`).
    """
    order = np.random.default_rng(seed).permutation(num_examples)
    bounds = [num_examples * k // num_shards for k in range(num_shards + 1)]
    return [order[bounds[k]:bounds[k + 1]].tolist() for k in range(num_shards)]


def encode_example(spec):
    """Reads one image and builds its serialized tf.train.Example.

    Boxes are normalised by the real image size, clipped to the image (counted)
    and dropped when empty after clipping (counted as degenerate).

    Args:
      spec: specs.ExampleSpec.

    Returns:
      Encoded(serialized bytes or None when skipped, report dict).
    """
    report = {'filename': spec.filename, 'clipped': 0, 'degenerate': 0}
    try:
        with open(spec.image_path, 'rb') as f:
            info = image_bytes.inspect_image(f.read())
    except OSError as e:
        report['skipped'] = 'cannot read image %s (%s)' % (spec.image_path, e.strerror or e)
        return Encoded(None, report)
    except image_bytes.ImageError as e:
        report['skipped'] = '%s: %s' % (spec.image_path, e)
        return Encoded(None, report)
    if info.converted:
        report['converted'] = info.converted
    if (spec.width, spec.height) not in ((None, None), (info.width, info.height)):
        report['size_mismatch'] = 'annotated %sx%s, image %dx%d' % (
            spec.width, spec.height, info.width, info.height)
    boxes, kept = [], []
    for obj in spec.objects:
        xmin, ymin, xmax, ymax = obj.box
        clipped = (max(xmin, 0.0), max(ymin, 0.0), min(xmax, info.width), min(ymax, info.height))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            report['degenerate'] += 1
            continue
        report['clipped'] += clipped != (xmin, ymin, xmax, ymax)
        boxes.append((clipped[1] / info.height, clipped[0] / info.width,
                      clipped[3] / info.height, clipped[2] / info.width))
        kept.append(obj)
    report['objects'] = [(obj.label_text, obj.difficult, obj.truncated) for obj in kept]
    source_id = spec.source_id if spec.source_id is not None else os.path.splitext(
        spec.filename)[0]
    example = _make_example(spec.filename, source_id, info, boxes, kept)
    return Encoded(example.SerializeToString(deterministic=True), report)


def _make_example(filename, source_id, info, boxes, objects):
    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def strings(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    columns = list(zip(*boxes)) if boxes else [(), (), (), ()]
    return tf.train.Example(features=tf.train.Features(feature={
        rs.ENCODED: strings([info.encoded]),
        rs.FORMAT: strings([info.format.encode()]),
        rs.FILENAME: strings([filename.encode('utf-8')]),
        rs.SOURCE_ID: strings([source_id.encode('utf-8')]),
        rs.HEIGHT: ints([info.height]),
        rs.WIDTH: ints([info.width]),
        rs.CHANNELS: ints([info.channels]),
        rs.SHAPE: ints([info.height, info.width, info.channels]),
        rs.BBOX_YMIN: floats(columns[0]),
        rs.BBOX_XMIN: floats(columns[1]),
        rs.BBOX_YMAX: floats(columns[2]),
        rs.BBOX_XMAX: floats(columns[3]),
        rs.LABEL: ints([obj.label for obj in objects]),
        rs.LABEL_TEXT: strings([obj.label_text.encode('utf-8') for obj in objects]),
        rs.DIFFICULT: ints([obj.difficult for obj in objects]),
        rs.TRUNCATED: ints([obj.truncated for obj in objects]),
    }))


def convert(read_result, labels, output_dir, output_name, num_shards=None,
            samples_per_shard=500, num_workers=1, seed=0, source=''):
    """Writes shards, labels.txt and the summary JSON.

    Args:
      read_result: specs.ReadResult of a reader.
      labels: dict id -> name (0 = background).
      output_dir: output folder (created).
      output_name: shard prefix, e.g. 'shapes_trainval'.
      num_shards: number of shards; None = ceil(examples / samples_per_shard).
      samples_per_shard: used when num_shards is None.
      num_workers: worker processes reading images (1 = in this process).
      seed: shuffle seed of the example order.
      source: description of the input for the summary.

    Returns:
      the summary dict (also written to OUTPUT_DIR/OUTPUT_NAME_summary.json); it has
      `category_ids` ({"class id": COCO category id}) when the reader gave them.

    Raises:
      specs.DatasetError: labels.txt exists in output_dir with other classes.
    """
    examples = read_result.examples
    os.makedirs(output_dir, exist_ok=True)
    _write_labels(output_dir, labels)
    if num_shards is None:
        num_shards = max(1, math.ceil(len(examples) / samples_per_shard))
    shards = shard_assignment(len(examples), num_shards, seed)
    ordered = [examples[i] for shard in shards for i in shard]
    names = [rs.shard_name(output_name, k, num_shards) for k in range(num_shards)]
    temps = [os.path.join(output_dir, '.%s.tmp-%d' % (name, os.getpid())) for name in names]
    stats = _Stats(labels)
    log = progress.ProgressLog('converted', len(ordered), every_seconds=_LOG_EVERY_SECONDS)
    try:
        with process_pool.ordered_map(encode_example, ordered, num_workers, chunksize=8,
                                      preload=['datasets.converter']) as results:
            for k, shard in enumerate(shards):
                with tf.io.TFRecordWriter(temps[k]) as writer:
                    for _ in shard:
                        encoded = next(results)
                        if encoded.serialized is not None:
                            writer.write(encoded.serialized)
                        stats.add(encoded.report, k)
                        log.update(stats.done)
        for stale in glob.glob(os.path.join(output_dir, rs.shard_glob(output_name))):
            os.remove(stale)
        for temp, name in zip(temps, names):
            os.replace(temp, os.path.join(output_dir, name))
    finally:
        for temp in temps:
            if os.path.exists(temp):
                os.remove(temp)
    seconds = log.elapsed
    summary = stats.summary(read_result, names, source, output_name, seed, num_workers, seconds)
    if read_result.category_ids:
        summary['category_ids'] = {str(k): int(v)
                                   for k, v in sorted(read_result.category_ids.items())}
    atomic_write(os.path.join(output_dir, rs.summary_name(output_name)),
                 json.dumps(summary, indent=2, sort_keys=True) + '\n')
    return summary


def _write_labels(output_dir, labels):
    path = os.path.join(output_dir, labels_lib.LABELS_FILENAME)
    if os.path.exists(path):
        try:
            existing = labels_lib.read_labels(path)
        except labels_lib.LabelsError as e:
            raise specs.DatasetError(str(e)) from e
        if existing != labels:
            raise specs.DatasetError(
                '%s exists with other classes (%d vs %d); convert into another '
                               '--output_dir' % (path, len(existing) - 1, len(labels) - 1))
        return
    labels_lib.write_labels(path, labels)


class _Stats:
    """Counts of a conversion run."""

    def __init__(self, labels):
        self.done = 0
        self.written = 0
        self.per_shard = collections.Counter()
        self.per_class = collections.Counter({name: 0 for i, name in labels.items() if i})
        self.counts = collections.Counter()
        self.skipped, self.converted, self.mismatched = [], [], []

    def add(self, report, shard):
        self.done += 1
        self.counts['boxes_clipped'] += report['clipped']
        self.counts['boxes_degenerate_skipped'] += report['degenerate']
        if 'skipped' in report:
            self.skipped.append({'item': report['filename'], 'reason': report['skipped']})
            return
        self.written += 1
        self.per_shard[shard] += 1
        if 'converted' in report:
            self.converted.append({'item': report['filename'], 'reason': report['converted']})
        if 'size_mismatch' in report:
            self.mismatched.append({'item': report['filename'], 'reason': report['size_mismatch']})
        objects = report['objects']
        self.counts['images_without_objects'] += not objects
        for name, difficult, truncated in objects:
            self.per_class[name] += 1
            self.counts['difficult'] += difficult
            self.counts['truncated'] += truncated

    def summary(self, read_result, names, source, output_name, seed, num_workers, seconds):
        return {
            'output_name': output_name,
            'source': source,
            'num_images': self.written,
            'num_objects': sum(self.per_class.values()),
            'objects_per_class': dict(self.per_class),
            'difficult': self.counts['difficult'],
            'truncated': self.counts['truncated'],
            'images_without_objects': self.counts['images_without_objects'],
            'boxes_clipped': self.counts['boxes_clipped'],
            'boxes_degenerate_skipped': self.counts['boxes_degenerate_skipped'],
            'unknown_class_objects_skipped': read_result.unknown_class_objects,
            'skipped': read_result.skipped + self.skipped,
            'converted': self.converted,
            'size_mismatches': self.mismatched,
            'shards': [{'file': name, 'num_images': self.per_shard[k]}
                       for k, name in enumerate(names)],
            'seed': seed,
            'num_workers': num_workers,
            'seconds': round(seconds, 3),
            'images_per_second': round(self.done / max(seconds, 1e-6), 1),
        }
