"""How many training steps of the demo recipe give boxes on the web page's default threshold.

    python -m bench.demo_steps --dataset_dir=demo_work/records --work_dir=DIR \\
        [--schedules=600] [--eval_steps=150,300,450,600] [--thresholds=0.5,0.3]

For each schedule S, trains `make demo`'s recipe (ssd_300_mobilenet_v2 from scratch, the
cosine schedule over S steps, seed 0: what `make demo DEMO_TRAIN_STEPS=S` trains) with
train_ssd_network.py, keeping the checkpoints of --eval_steps, and evaluates each on the test
split with eval_ssd_network.py. A checkpoint before the end of its schedule is what a demo
stopped early by its time limit (DEMO_TRAIN_SECS) serves. Prints per checkpoint: VOC07 mAP,
and from the detections of the test images the share of images whose highest score reaches
each threshold (0.5 is the page's default), the median highest score and the detections per
image at the first threshold; per schedule the training time. Prints the machine.
"""
import argparse
import json
import logging
import math
import os
import sys

import numpy as np

from bench import machine, record
from bench import precision as bench_precision


def highest_scores(detections_path, num_images):
    """The highest detection score of each evaluated image (0 where it has none).

    Args:
      detections_path: COCO results file of eval_ssd_network.py --detections_file.
      num_images: images evaluated (images without detections are not in the file).

    Returns:
      (float64 [num_images] highest scores, {image id: [scores]}).
    """
    with open(detections_path, encoding='utf-8') as results:
        detections = json.load(results)
    by_image = {}
    for detection in detections:
        by_image.setdefault(detection['image_id'], []).append(detection['score'])
    tops = [max(scores) for scores in by_image.values()]
    return np.array(tops + [0.0] * (num_images - len(tops)), np.float64), by_image


def summarize(tops, by_image, thresholds):
    """Figures of one run: share of images with a box at each threshold, median highest
    score, detections per image at thresholds[0]."""
    per_image = sum(sum(score >= thresholds[0] for score in scores)
                    for scores in by_image.values()) / max(len(tops), 1)
    return {'shares': {t: float(np.mean(tops >= t)) for t in thresholds},
            'median_top': float(np.median(tops)) if len(tops) else 0.0,
            'per_image': per_image}


def train(args, schedule, save_steps):
    """Trains the demo recipe over `schedule` steps, a checkpoint every `save_steps` steps.

    Returns:
      (train dir, wall seconds).
    """
    run_dir = os.path.join(args.work_dir, 'schedule-%d' % schedule)
    train_dir = os.path.join(run_dir, 'train')
    if os.path.exists(train_dir):
        sys.exit('%s exists: give an empty --work_dir (training would resume)' % train_dir)
    os.makedirs(run_dir)
    seconds = bench_precision.run_script('train_ssd_network.py', [
        '--dataset_dir=%s' % args.dataset_dir, '--dataset_name=shapes',
        '--dataset_split_name=trainval', '--model_name=ssd_300_mobilenet_v2',
        '--train_dir=%s' % train_dir, '--max_number_of_steps=%d' % schedule,
        '--log_every_n_steps=20', '--save_interval_secs=1000000',
        '--save_interval_steps=%d' % save_steps, '--max_checkpoints_to_keep=1000', '--seed=0'] +
        bench_precision.RECIPES['demo'], os.path.join(run_dir, 'train.log'))
    return train_dir, seconds


def evaluate(args, train_dir, step):
    """Evaluates checkpoint `step` of a train dir; returns its figures."""
    run_dir = os.path.dirname(train_dir)
    eval_dir = os.path.join(run_dir, 'eval-%d' % step)
    detections_path = os.path.join(eval_dir, 'detections.json')
    os.makedirs(eval_dir)
    bench_precision.run_script('eval_ssd_network.py', [
        '--checkpoint_path=%s' % os.path.join(train_dir, 'model.ckpt-%d' % step),
        '--dataset_dir=%s' % args.dataset_dir, '--dataset_name=shapes',
        '--dataset_split_name=test', '--eval_dir=%s' % eval_dir, '--metrics=voc',
        '--num_visualizations=0', '--detections_file=%s' % detections_path],
        os.path.join(eval_dir, 'eval.log'))
    with open(os.path.join(eval_dir, 'metrics.json'), encoding='utf-8') as metrics_file:
        metrics = json.load(metrics_file)
    tops, by_image = highest_scores(detections_path, metrics['num_images'])
    return dict(summarize(tops, by_image, args.thresholds), mAP=metrics['mAP_voc07'],
                num_images=metrics['num_images'])


def format_checkpoint(schedule, step, result, thresholds):
    """One printed line of a checkpoint."""
    shares = ', '.join('%.0f%% of the images have a box >= %.2f' % (100 * result['shares'][t], t)
                       for t in thresholds)
    return ('schedule %d, step %4d: VOC07 mAP %.3f; %s; median highest score %.2f; %.1f '
            'detections >= %.2f per image (%d test images)' % (
                schedule, step, result['mAP'], shares, result['median_top'],
                result['per_image'], thresholds[0], result['num_images']))


def _numbers(kind):
    def parse(text):
        try:
            values = [kind(item) for item in text.split(',')]
        except ValueError:
            raise argparse.ArgumentTypeError('not a comma-separated list: %r' % text) from None
        if not values or min(values) <= 0:
            raise argparse.ArgumentTypeError('values must be > 0: %r' % text)
        return values
    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset_dir', required=True,
                        help='the demo\'s records (shapes_trainval_*, shapes_test_*)')
    parser.add_argument('--work_dir', required=True, help='empty folder for the runs')
    parser.add_argument('--schedules', type=_numbers(int), default=[600],
                        help='schedule lengths in steps, one training each (default 600)')
    parser.add_argument('--eval_steps', type=_numbers(int), default=[150, 300, 450, 600],
                        help='checkpoints evaluated, those within each schedule and its last '
                        '(default 150,300,450,600)')
    parser.add_argument('--thresholds', type=_numbers(float), default=[0.5, 0.3],
                        help='score thresholds; the first is the page\'s default (0.5,0.3)')
    record.add_flag(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    print('machine: %s' % machine.describe(), flush=True)
    print('demo recipe (%s) on %s' % (' '.join(bench_precision.RECIPES['demo']),
                                      args.dataset_dir), flush=True)
    for schedule in args.schedules:
        steps = sorted({step for step in args.eval_steps if step < schedule} | {schedule})
        logging.info('training the demo recipe over %d steps', schedule)
        train_dir, seconds = train(args, schedule, math.gcd(*steps))
        print('schedule %d: trained in %.0f s' % (schedule, seconds), flush=True)
        for step in steps:
            print(format_checkpoint(schedule, step, evaluate(args, train_dir, step),
                                    args.thresholds), flush=True)
    print('machine after the runs: %s' % machine.describe())


if __name__ == '__main__':
    sys.exit(record.run(main, 'demo_steps'))
