"""Input pipeline throughput: read + decode + augment + batch at the network size.

    python -m bench.input_pipeline [--dataset_dir DIR --dataset_name NAME] [--network ssd_300_vgg]

Without --dataset_dir it writes a temporary synthetic shapes data set (VOC-like
images of 200-500 px sides, JPEG) and converts it to TFRecords first. Two
figures: the SSD augmentation alone (preprocessing_factory, parallel map,
padded batch, prefetch), and the full training input of
preprocessing.inputs.train_dataset (the same plus anchor matching).
"""
import argparse
import logging
import os
import sys
import tempfile
import time

import tensorflow as tf

import tf_convert_data
from bench import machine, record
from common import fields
from datasets import dataset_factory, make_shapes_dataset
from nets import nets_factory
from preprocessing import inputs, preprocessing_factory


def _make_shapes_records(work_dir, num_images):
    voc_dir, records_dir = os.path.join(work_dir, 'voc'), os.path.join(work_dir, 'records')
    make_shapes_dataset.make_dataset(voc_dir, num_train=num_images, num_test=0, seed=0,
                                     num_workers=2)
    status = tf_convert_data.main([
        '--dataset_name=pascalvoc', '--dataset_dir=%s' % voc_dir, '--split_name=trainval',
        '--labels_file=%s' % os.path.join(voc_dir, 'labels.txt'), '--output_dir=%s' % records_dir,
        '--output_name=shapes_trainval', '--samples_per_shard=%d' % max(1, num_images // 2)])
    if status:
        raise RuntimeError('converting the synthetic data set failed')
    return records_dir


def augment_dataset(info, preprocess_fn, batch_size, num_threads):
    """Read + decode + augment + padded batch + prefetch, endless."""
    dataset = info.read(shuffle=True, seed=0, num_readers=min(2, len(info.files)), num_epochs=None)
    dataset = dataset.map(lambda s: {k: s[k] for k in (fields.IMAGE, fields.BOXES, fields.LABELS)})
    dataset = dataset.map(preprocess_fn, num_parallel_calls=num_threads)
    return dataset.padded_batch(batch_size, drop_remainder=True).prefetch(2)


def images_per_second(dataset, batch_size, num_batches, warmup):
    """Pulls batches in a session; returns images/s after `warmup` batches."""
    with tf.compat.v1.Session() as sess:
        next_batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        image = next_batch[fields.IMAGE]
        for _ in range(warmup):
            sess.run(image.op)
        start = time.perf_counter()
        for _ in range(num_batches):
            sess.run(image.op)
        return num_batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset_dir', help='converted records; default: a temporary shapes set')
    parser.add_argument('--dataset_name', default='shapes', help='record prefix')
    parser.add_argument('--split', default='trainval', help='split name')
    parser.add_argument('--num_images', type=int, default=200, help='size of the temporary set')
    parser.add_argument('--network', default='ssd_300_mobilenet_v2',
                        choices=nets_factory.NETWORK_NAMES, help='preprocessing and anchors')
    parser.add_argument('--batch_size', type=int, default=32, help='images per batch')
    parser.add_argument('--num_batches', type=int, default=20, help='timed batches')
    parser.add_argument('--warmup', type=int, default=3, help='untimed batches first')
    parser.add_argument('--num_threads', type=int, default=2,
                        help='parallel map calls (as training)')
    record.add_flag(parser)
    args = parser.parse_args()
    if args.dataset_dir and not os.path.isdir(args.dataset_dir):
        parser.error('--dataset_dir: not a folder: %r' % args.dataset_dir)
    for flag in ('num_images', 'batch_size', 'num_batches', 'num_threads'):
        if getattr(args, flag) < 1:
            parser.error('--%s must be >= 1' % flag)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    tf.compat.v1.disable_eager_execution()

    with tempfile.TemporaryDirectory(prefix='input_bench_') as work_dir:
        dataset_dir = args.dataset_dir or _make_shapes_records(work_dir, args.num_images)
        info = dataset_factory.get_dataset(args.dataset_name, args.split, dataset_dir)
        preprocess_fn = preprocessing_factory.get_preprocessing(args.network, is_training=True)
        network = nets_factory.get_network(args.network, num_classes=info.num_classes)
        figures = {}
        with tf.Graph().as_default():
            dataset = augment_dataset(info, preprocess_fn, args.batch_size, args.num_threads)
            figures['augment'] = images_per_second(dataset, args.batch_size, args.num_batches,
                                                   args.warmup)
        with tf.Graph().as_default():
            dataset = inputs.train_dataset(info, preprocess_fn, network.anchors(),
                                           network.params.prior_scaling, args.batch_size,
                                           num_preprocessing_threads=args.num_threads, seed=0)
            figures['train'] = images_per_second(dataset, args.batch_size, args.num_batches,
                                                 args.warmup)

    out_h, out_w = network.params.img_shape[:2]
    print('input pipeline, %s %dx%d, batch %d, %d parallel map calls, %s images'
          % (args.network, out_h, out_w, args.batch_size, args.num_threads,
             'given' if args.dataset_dir else 'synthetic shapes 200-500 px JPEG'))
    print('  read + decode + augment + batch:                  %7.1f images/s' % figures['augment'])
    print('  same + anchor matching (preprocessing.inputs):    %7.1f images/s' % figures['train'])
    print('  machine: %s' % machine.describe())
    record.figure('input_pipeline_matching', round(figures['train'], 1), 'images/s',
                  'Input pipeline with augmentation and anchor matching, batch %d'
                  % args.batch_size)


if __name__ == '__main__':
    sys.exit(record.run(main, 'input_pipeline'))
