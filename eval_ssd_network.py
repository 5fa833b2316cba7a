"""Evaluates SSD checkpoints with the Pascal VOC metrics (VOC2007 11-point and VOC2010+ area).

    python eval_ssd_network.py --checkpoint_path=TRAIN --dataset_dir=DATA \\
        --dataset_name=shapes --dataset_split_name=test \\
        --model_name=ssd_300_mobilenet_v2 --eval_dir=EVAL

Prints a per-class AP table; writes EVAL/metrics.json, TensorBoard summaries and
precision-recall curves (EVAL/pr_curves/*.png). With --wait_for_checkpoints it
evaluates every new checkpoint of the train_dir given as --checkpoint_path.
"""
import logging
import os
import sys

import tensorflow as tf
from absl import app, flags

from datasets import dataset_factory
from deployment import flag_checks
from evaluation import eval_lib, pr_curves
from nets import checkpoints, nets_factory
from preprocessing import preprocessing_factory

# Checkpoint and output.
flags.DEFINE_string('checkpoint_path', None, 'Checkpoint file, or train_dir (its newest one).')
flags.DEFINE_string('eval_dir', None, 'Directory of metrics.json, summaries and PR curves.')
flags.DEFINE_boolean('wait_for_checkpoints', False,
                     'Evaluate each new checkpoint of --checkpoint_path (a train_dir).')
flags.DEFINE_integer('eval_interval_secs', 60, 'Minimum seconds between two evaluations.')
flags.DEFINE_integer('eval_timeout_secs', None, 'Stop waiting after this many seconds '
                     'without a new checkpoint (default: wait forever).')
# Dataset.
flags.DEFINE_string('dataset_dir', None, 'Directory of the TFRecords and labels.txt.')
flags.DEFINE_string('dataset_name', 'shapes', 'Data set name (record prefix).')
flags.DEFINE_string('dataset_split_name', 'test', 'Split to evaluate.')
flags.DEFINE_integer('batch_size', 8, 'Images per batch.')
flags.DEFINE_integer('max_num_batches', None, 'Evaluate only this many batches.')
flags.DEFINE_integer('num_preprocessing_threads', 2, 'Parallel preprocessing calls.')
# Model and post-processing.
flags.DEFINE_string('model_name', 'ssd_300_vgg', 'Network: ssd_300_vgg, ssd_512_vgg, '
                    'ssd_300_mobilenet_v2.')
flags.DEFINE_float('moving_average_decay', None, 'Evaluate the moving averages of the weights.')
flags.DEFINE_float('select_threshold', 0.01, 'Per-class score threshold.')
flags.DEFINE_float('nms_threshold', 0.45, 'NMS IoU threshold.')
flags.DEFINE_integer('pre_nms_top_k', 400, 'Candidates per class before NMS.')
flags.DEFINE_integer('keep_top_k', 200, 'Detections per image.')
# Metric.
flags.DEFINE_float('matching_threshold', 0.5, 'IoU of a true positive.')
flags.DEFINE_boolean('remove_difficult', True, 'Difficult objects are neither misses nor '
                     'false positives (VOC devkit).')

FLAGS = flags.FLAGS
def validate_flags(f):
    """Checks the flag values before any graph is built.

    Raises:
        ValueError: a message naming the flag.
    """
    flag_checks.required(f, ['checkpoint_path', 'dataset_dir', 'eval_dir'])
    flag_checks.dataset_and_model(f)
    flag_checks.positive(f, ['batch_size', 'max_num_batches', 'keep_top_k', 'pre_nms_top_k',
                             'num_preprocessing_threads', 'eval_interval_secs', 'eval_timeout_secs'])
    for name in ('select_threshold', 'nms_threshold', 'matching_threshold'):
        if not 0.0 <= getattr(f, name) <= 1.0:
            raise ValueError('--%s must be in [0, 1], got %s' % (name, getattr(f, name)))
    flag_checks.moving_average_decay(f)
    if f.wait_for_checkpoints and not os.path.isdir(f.checkpoint_path):
        raise ValueError('--wait_for_checkpoints needs --checkpoint_path to be a train_dir, '
                         'got %s' % f.checkpoint_path)
    if not f.wait_for_checkpoints:
        checkpoints.resolve_checkpoint(f.checkpoint_path)


def _checkpoints(f):
    """The checkpoints to evaluate: one, or each new one of the train_dir."""
    if not f.wait_for_checkpoints:
        yield checkpoints.resolve_checkpoint(f.checkpoint_path)
        return
    yield from tf.compat.v1.train.checkpoints_iterator(
        f.checkpoint_path, min_interval_secs=f.eval_interval_secs, timeout=f.eval_timeout_secs)


def main(argv):
    if len(argv) > 1:
        sys.exit('eval_ssd_network.py: error: unexpected arguments %s' % ' '.join(argv[1:]))
    try:
        validate_flags(FLAGS)
        dataset_info = dataset_factory.get_dataset(FLAGS.dataset_name, FLAGS.dataset_split_name,
                                                   FLAGS.dataset_dir)
    except ValueError as error:
        sys.exit('eval_ssd_network.py: error: %s' % error)
    logging.getLogger().setLevel(logging.INFO)
    tf.compat.v1.disable_eager_execution()
    network = nets_factory.get_network(FLAGS.model_name, dataset_info.num_classes)
    graph = eval_lib.build_eval_graph(
        network, dataset_info,
        preprocessing_factory.get_preprocessing(FLAGS.model_name, is_training=False),
        FLAGS.batch_size, select_threshold=FLAGS.select_threshold,
        nms_threshold=FLAGS.nms_threshold, pre_nms_top_k=FLAGS.pre_nms_top_k,
        keep_top_k=FLAGS.keep_top_k, moving_average_decay=FLAGS.moving_average_decay,
        num_preprocessing_threads=FLAGS.num_preprocessing_threads)
    os.makedirs(FLAGS.eval_dir, exist_ok=True)
    for checkpoint in _checkpoints(FLAGS):
        results, num_images, step = eval_lib.run_evaluation(
            graph, checkpoint, dataset_info.labels, matching_threshold=FLAGS.matching_threshold,
            remove_difficult=FLAGS.remove_difficult, max_num_batches=FLAGS.max_num_batches)
        metrics_path = eval_lib.write_metrics(
            FLAGS.eval_dir, eval_lib.metrics_dict(results, checkpoint, num_images))
        eval_lib.write_summaries(FLAGS.eval_dir, results, step)
        pr_curves.write_pr_curves(os.path.join(FLAGS.eval_dir, 'pr_curves'),
                                  results['per_class'], ' (step %d)' % step)
        print('Checkpoint %s (step %d)' % (checkpoint, step))
        print(eval_lib.format_table(results, num_images))
        print('Wrote %s and PR curves in %s' % (metrics_path,
                                                os.path.join(FLAGS.eval_dir, 'pr_curves')))
        sys.stdout.flush()


if __name__ == '__main__':
    app.run(main)
