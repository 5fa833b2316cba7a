"""Writes the synthetic shapes data set in Pascal VOC layout.

    python datasets/make_shapes_dataset.py --output_dir DIR --num_train N --num_test M --seed S

DIR/JPEGImages/<id>.jpg, DIR/Annotations/<id>.xml, DIR/ImageSets/Main/{trainval,test}.txt
and DIR/labels.txt (for `tf_convert_data.py --labels_file`). Image <id> of a
split depends only on (seed, split, index), so it is deterministic.
"""
import argparse
import functools
import logging
import os
import sys

import cv2
import numpy as np

from common import labels as labels_lib
from common import process_pool, progress
from common.files import atomic_write
from datasets import shapes, voc_xml

CLASS_NAMES = shapes.CLASS_NAMES
SPLITS = ('trainval', 'test')
# Records prefix of the shapes data set: shapes_<split>_*.tfrecord.
DATASET_NAME = 'shapes'


def image_id(split, index):
    """VOC image id of image `index` of `split`, e.g. 'trainval_000042'."""
    return '%s_%06d' % (split, index)


def write_example(output_dir, split, index, seed, side_range=(200, 500)):
    """Draws image `index` of `split` and writes its JPEG and XML.

    Returns:
      number of objects written.
    """
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    image, objects = shapes.draw_image(rng, side_range=side_range)
    name = image_id(split, index)
    quality = int(rng.integers(80, 96))
    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode('.jpg', pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('JPEG encoding failed for %s' % name)
    atomic_write(os.path.join(output_dir, 'JPEGImages', name + '.jpg'), encoded.tobytes())
    voc_objects = [voc_xml.VocObject(o.name, *(v + 1 for v in o.box), truncated=int(o.truncated),
                                     difficult=int(o.difficult), pose='Unspecified')
                   for o in objects]
    annotation = voc_xml.VocAnnotation(name + '.jpg', image.shape[1], image.shape[0],
                                       1 if image.ndim == 2 else 3, voc_objects)
    voc_xml.write_annotation(os.path.join(output_dir, 'Annotations', name + '.xml'), annotation,
                             folder='shapes', database='synthetic shapes')
    return len(objects)


def make_dataset(output_dir, num_train, num_test, seed, num_workers=1, side_range=(200, 500)):
    """Writes the whole data set; returns {split: number of images}."""
    for sub in ('JPEGImages', 'Annotations', os.path.join('ImageSets', 'Main')):
        os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
    labels_lib.write_labels(os.path.join(output_dir, labels_lib.LABELS_FILENAME),
                            dict(enumerate(CLASS_NAMES, 1)))
    counts = {'trainval': num_train, 'test': num_test}
    jobs = [(split, i) for split in SPLITS for i in range(counts[split])]
    work = functools.partial(_write_job, output_dir=output_dir, seed=seed, side_range=side_range)
    with process_pool.ordered_map(work, jobs, num_workers, chunksize=16,
                                  preload=['datasets.make_shapes_dataset']) as results:
        _log_progress(results, len(jobs))
    for split in SPLITS:
        ids = ''.join(image_id(split, i) + '\n' for i in range(counts[split]))
        atomic_write(os.path.join(output_dir, 'ImageSets', 'Main', split + '.txt'), ids)
    return counts


def _write_job(job, output_dir, seed, side_range):
    split, index = job
    return write_example(output_dir, split, index, seed, side_range)


def _log_progress(results, total):
    """Consumes the results of the image jobs, logging the progress."""
    log = progress.ProgressLog('shapes: wrote', total)
    for done, _ in enumerate(results, 1):
        log.update(done)


def make_records(work_dir, num_train, num_test, seed=0, min_side=200, max_side=500,
                 num_workers=1):
    """Draws the shapes images (VOC layout) and converts both splits to TFRecords.

    Args:
        work_dir: folder; gets `voc/` (images, XML) and `records/` (TFRecords, labels.txt).
        num_train, num_test: images of the trainval and test splits.
        seed: data seed (the images depend only on it and their index).
        min_side, max_side: image side range in pixels.
        num_workers: parallel processes.

    Returns:
        the records folder: `shapes_trainval_*.tfrecord`, `shapes_test_*.tfrecord`, labels.txt.
    """
    # Imported here: the image workers import this module, and need no TensorFlow.
    from datasets import converter, pascalvoc  # pylint: disable=import-outside-toplevel
    voc_dir = os.path.join(work_dir, 'voc')
    records_dir = os.path.join(work_dir, 'records')
    make_dataset(voc_dir, num_train, num_test, seed, num_workers, (min_side, max_side))
    labels = labels_lib.read_labels(os.path.join(voc_dir, labels_lib.LABELS_FILENAME))
    for split in SPLITS:
        result = pascalvoc.read_split(voc_dir, split, labels_lib.ids_by_name(labels))
        converter.convert(result, labels, records_dir, '%s_%s' % (DATASET_NAME, split),
                          num_workers=num_workers, seed=seed,
                          source='synthetic shapes %s' % split)
    return records_dir



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--output_dir', required=True, help='folder of the VOC layout')
    parser.add_argument('--num_train', type=int, default=2000, help='trainval images')
    parser.add_argument('--num_test', type=int, default=1000, help='test images')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--num_workers', type=int, default=1, help='parallel processes')
    parser.add_argument('--min_side', type=int, default=200, help='smallest image side, px')
    parser.add_argument('--max_side', type=int, default=500, help='largest image side, px')
    args = parser.parse_args(argv)
    for flag in ('num_train', 'num_test', 'seed'):
        if getattr(args, flag) < 0:
            parser.error('--%s must be >= 0' % flag)
    if args.num_workers < 1:
        parser.error('--num_workers must be >= 1')
    if not 64 <= args.min_side <= args.max_side:
        parser.error('--min_side/--max_side: need 64 <= min_side <= max_side')
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    counts = make_dataset(args.output_dir, args.num_train, args.num_test, args.seed,
                          args.num_workers, (args.min_side, args.max_side))
    print('wrote %d trainval + %d test images to %s'
          % (counts['trainval'], counts['test'], args.output_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
