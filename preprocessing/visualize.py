"""Draws a grid of augmented training samples with their boxes and class names.

    python -m preprocessing.visualize --dataset_dir OUT --dataset_name shapes \
        --split trainval --num 16 --output grid.png [--network ssd_300_vgg] [--seed 0]

Shows what the network sees: the output of the training preprocessing of
`--network`, denormalised for display.
"""
from common import tf_logs

if __name__ == '__main__':
    tf_logs.filter_stderr()  # first: TensorFlow's import prints its banner

import argparse
import io
import logging
import math
import os
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from common import cli, drawing, fields, np_preprocessing, progress
from common.files import atomic_write
from datasets import dataset_factory
from nets import nets_factory
from preprocessing import preprocessing_factory

MAX_NUM = 64
TILE_SIDE = 300  # pixels; smaller samples are scaled up
GAP = 6  # pixels between tiles


def augmented_samples(dataset, preprocess_fn, num):
    """Runs `preprocess_fn` over the first `num` samples of a dataset (graph mode).

    Args:
      dataset: tf.data.Dataset of sample dicts (dataset_factory's `read()`).
      preprocess_fn: fn(sample) -> sample, e.g. from preprocessing_factory.
      num: number of samples.
    Returns:
      list of dicts of numpy arrays with `image`, `boxes`, `labels`.
    """
    keys = (fields.IMAGE, fields.BOXES, fields.LABELS)
    dataset = dataset.map(preprocess_fn).map(lambda s: {k: s[k] for k in keys}).take(num)
    next_sample = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    samples = []
    with tf.compat.v1.Session() as sess:
        for _ in range(num):
            try:
                samples.append(sess.run(next_sample))
            except tf.errors.OutOfRangeError:
                break
    return samples


def draw_grid(samples, class_names, normalization, output_path, columns=4):
    """Writes a PNG grid of images with boxes and class names (atomically).

    Each image is shown at least TILE_SIDE pixels wide and high (scaled up, so the labels
    drawn by common.drawing stay legible), on a white grid.

    Args:
      samples: list of dicts with `image` float [H, W, 3] normalised,
        `boxes` [N, 4] normalised yxyx, `labels` [N] ints.
      class_names: dict id -> name.
      normalization: how `image` was normalised (common.normalization.Normalization or its name).
      output_path: PNG file to write.
      columns: images per row.
    """
    if not samples:
        raise ValueError('no samples to draw')
    tiles = [_tile(sample, class_names, normalization) for sample in samples]
    columns = min(columns, len(tiles))
    rows = int(math.ceil(len(tiles) / columns))
    height = max(tile.shape[0] for tile in tiles)
    width = max(tile.shape[1] for tile in tiles)
    grid = np.full((rows * (height + GAP) + GAP, columns * (width + GAP) + GAP, 3), 255, np.uint8)
    for index, tile in enumerate(tiles):
        top = GAP + (index // columns) * (height + GAP)
        left = GAP + (index % columns) * (width + GAP)
        grid[top:top + tile.shape[0], left:left + tile.shape[1]] = tile
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, 'PNG')
    atomic_write(output_path, buffer.getvalue())


def _tile(sample, class_names, normalization):
    """One denormalised sample, scaled up to TILE_SIDE, with its boxes: uint8 [h, w, 3]."""
    pixels = np.clip(np_preprocessing.denormalize(sample[fields.IMAGE], normalization), 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8))
    scale = max(1.0, TILE_SIDE / min(image.size))
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.BILINEAR)
    boxes = np.reshape(sample[fields.BOXES], (-1, 4))[:, [1, 0, 3, 2]]
    labels = [int(label) for label in sample[fields.LABELS]]
    return drawing.draw_boxes(
        np.asarray(image), boxes * [image.width, image.height, image.width, image.height],
        labels, [class_names.get(label, str(label)) for label in labels])


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    data = parser.add_argument_group('data')
    data.add_argument('--dataset_dir', required=True, help='folder of the TFRecords and labels.txt')
    data.add_argument('--dataset_name', required=True, help='record prefix, e.g. shapes or voc2007')
    data.add_argument('--split', default='trainval', help='split name, e.g. trainval')
    data.add_argument('--seed', type=int, default=0, help='shuffle seed')
    drawing = parser.add_argument_group('drawing')
    drawing.add_argument('--network', default='ssd_300_vgg', choices=nets_factory.NETWORK_NAMES,
                         help='network whose training preprocessing is shown')
    drawing.add_argument('--num', type=int, default=16, help='number of samples (1-%d)' % MAX_NUM)
    drawing.add_argument('--output', required=True, help='PNG file to write')
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dataset_dir):
        parser.error('--dataset_dir: not a folder: %r' % args.dataset_dir)
    if not 1 <= args.num <= MAX_NUM:
        parser.error('--num: must be in 1..%d, got %d' % (MAX_NUM, args.num))
    if not args.output.lower().endswith('.png'):
        parser.error('--output: must end with .png, got %r' % args.output)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        parser.error('--output: folder does not exist: %r' % os.path.dirname(args.output))
    return args


def main(argv=None):
    args = _parse_args(argv)
    cli.setup_logging()
    tf.compat.v1.disable_eager_execution()
    try:
        info = dataset_factory.get_dataset(args.dataset_name, args.split, args.dataset_dir)
    except (ValueError, OSError) as error:
        sys.exit('error: %s' % error)
    preprocess_fn = preprocessing_factory.get_preprocessing(args.network, is_training=True)
    dataset = info.read(shuffle=True, seed=args.seed, num_readers=min(2, len(info.files)))
    samples = augmented_samples(dataset, preprocess_fn, args.num)
    _, normalization = preprocessing_factory.network_input(args.network)
    logging.info('drawing %d augmented samples of %s', len(samples), ', '.join(info.files[:3]))
    draw_grid(samples, info.labels, normalization, args.output)
    print('wrote %s (%s)' % (args.output, progress.counted(len(samples), 'sample')))


if __name__ == '__main__':
    main()
