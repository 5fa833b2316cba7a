"""Mixed precision against float32 on trained models: detections, VOC mAP, training.

    python -m bench.precision forward --checkpoint_path=TRAIN_DIR --dataset_dir=RECORDS \\
        [--model_name=ssd_300_mobilenet_v2] [--precision=mixed_bfloat16]
    python -m bench.precision train --dataset_dir=RECORDS --work_dir=DIR \\
        [--model_name=ssd_300_mobilenet_v2] [--recipe=demo|sgd] [--steps=600] [--seeds=0,1,2]
    python -m bench.precision train --dataset_dir=RECORDS --work_dir=DIR \\
        --model_name=ssd_300_vgg --recipe=vgg_finetune --checkpoint=vgg_16.ckpt --steps=200

forward: evaluates the checkpoint on the split twice, the same graph in two sessions
(float32, then the rewrite of --precision), and prints: VOC07/VOC12 mAP of each and their
difference; the share of the float32 detections with score >= --score_threshold that have a
detection of the same class with IoU >= --iou_threshold among the other precision's (and the
other way round); and the images/s of each pass (input pipeline, network and NMS).

train: for each of --seeds, trains --model_name (from scratch, or from --checkpoint for
vgg_finetune) with the same recipe and seed, first in float32, then in --precision
(train_ssd_network.py, one after the other), with one TFRecord reader and one preprocessing
thread so that both see the same batches in the same order; evaluates both checkpoints in
float32 (eval_ssd_network.py) and prints for each: steps, training time, median images/s of
the progress lines, VOC07/VOC12 mAP, and the mean logged loss of each quarter of the run; then,
over the seeds, each precision's mean mAP and the mean difference. Both print the machine.
"""
import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench import machine, record
from bench import train as bench_train
from common import np_box_ops, np_post_processing
from common import precision as precision_lib


def detections_by_image(path, score_threshold):
    """{image id: (boxes [N, 4] yxyx, classes [N])} of a COCO results file, score >= threshold."""
    with open(path, encoding='utf-8') as results:
        detections = json.load(results)
    found = {}
    for detection in detections:
        if detection['score'] < score_threshold:
            continue
        x, y, width, height = detection['bbox']
        boxes, classes = found.setdefault(detection['image_id'], ([], []))
        boxes.append([y, x, y + height, x + width])
        classes.append(detection['category_id'])
    return {image: (np.array(boxes, np.float64).reshape(-1, 4), np.array(classes))
            for image, (boxes, classes) in found.items()}


def matched_share(reference, other, iou_threshold):
    """(matched, total): reference detections with a same-class detection of `other` at
    IoU >= iou_threshold (each of `other` matched once, best IoU first)."""
    matched = total = 0
    for image, (boxes, classes) in reference.items():
        total += len(boxes)
        other_boxes, other_classes = other.get(image, (np.zeros([0, 4]), np.zeros([0])))
        if not len(other_boxes):
            continue
        iou = np_box_ops.iou(boxes, other_boxes)
        iou[classes[:, None] != other_classes[None, :]] = 0.0
        used = set()
        for i in np.argsort(-iou.max(axis=1)):
            for j in np.argsort(-iou[i]):
                if iou[i, j] < iou_threshold:
                    break
                if j not in used:
                    used.add(j)
                    matched += 1
                    break
    return matched, total


def evaluate(args, precisions, work_dir):
    """Evaluates the checkpoint in each precision; returns {precision: (Evaluation, secs)}."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from datasets import dataset_factory  # pylint: disable=import-outside-toplevel
    from evaluation import eval_lib  # pylint: disable=import-outside-toplevel
    from nets import checkpoints, nets_factory  # pylint: disable=import-outside-toplevel
    from nets import precision as nets_precision  # pylint: disable=import-outside-toplevel
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel

    tf.compat.v1.disable_eager_execution()
    dataset_info = dataset_factory.get_dataset(args.dataset_name, args.split, args.dataset_dir)
    network = nets_factory.get_network(args.model_name, dataset_info.num_classes)
    checkpoint = checkpoints.resolve_checkpoint(args.checkpoint_path)
    graph = eval_lib.build_eval_graph(
        network, dataset_info, preprocessing_factory.get_preprocessing(args.model_name, False),
        args.batch_size)
    results = {}
    for name in precisions:
        start = time.perf_counter()
        evaluation = eval_lib.run_evaluation(
            graph, checkpoint, dataset_info.labels,
            session_config=nets_precision.session_config(name),
            detections_file=os.path.join(work_dir, name + '.json'))
        results[name] = evaluation, time.perf_counter() - start
    return results


# The recipes of the train comparison (flags of train_ssd_network.py besides the model, the
# data, the seed and the steps; {checkpoint} is --checkpoint). demo: `make demo`'s (Makefile);
# sgd: the paper's SGD setting, as bench/train.py trains ssd_300_vgg from scratch; vgg_finetune:
# bench/train.py's VGG benchmark, ssd_300_vgg fine-tuned from a vgg_16.ckpt.
RECIPES = {
    'demo': ['--batch_size=8', '--optimizer=adam', '--learning_rate=0.0015',
             '--learning_rate_decay_type=cosine', '--warmup_steps=100',
             '--end_learning_rate=0.00001', '--weight_decay=0.00004'],
    'sgd': ['--batch_size=8', '--optimizer=momentum', '--momentum=0.9', '--learning_rate=0.001',
            '--warmup_steps=5', '--weight_decay=0.0005'],
    'vgg_finetune': ['--batch_size=%d' % bench_train.BATCH_SIZE] + bench_train.VGG_FINETUNE,
}
# The single-threaded input of both runs: the same batches in the same order.
SAME_BATCHES = ['--num_readers=1', '--num_preprocessing_threads=1']
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROGRESS = re.compile(r'step (\d+)(?:/\d+)?: loss ([\d.]+|nan|inf) .*?, ([\d.]+) images/s')


def progress_lines(log_text):
    """[(step, total loss, images/s)] of the progress lines of a training log."""
    return [(int(step), float(loss), float(rate))
            for step, loss, rate in _PROGRESS.findall(log_text)]


def quarter_means(progress, num_steps):
    """Mean logged loss of each quarter of a run of `num_steps` steps (NaN for an empty one)."""
    means = []
    for quarter in range(4):
        low, high = quarter * num_steps / 4.0, (quarter + 1) * num_steps / 4.0
        losses = [loss for step, loss, _ in progress if low < step <= high]
        means.append(float(np.mean(losses)) if losses else float('nan'))
    return means


def run_script(name, flags, log_path):
    """Runs a top-level script with `flags`, its output into log_path; exits when it fails.

    Returns:
      the wall seconds it took.
    """
    start = time.perf_counter()
    with open(log_path, 'w', encoding='utf-8') as log:
        code = subprocess.call([sys.executable, os.path.join(ROOT, name)] + flags, stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    if code:
        sys.exit('%s failed (exit %d); see %s' % (name, code, log_path))
    return time.perf_counter() - start


def recipe_flags(args):
    """The recipe's flags for train_ssd_network.py, --checkpoint filled in."""
    return [flag.format(checkpoint=args.checkpoint) for flag in RECIPES[args.recipe]]


def train_and_evaluate(args, seed, name):
    """Trains with `seed` in precision `name` (from scratch, or from --checkpoint), evaluates
    in float32.

    Returns:
      dict: seconds (training wall time), progress (progress_lines), metrics (metrics.json).
    """
    run_dir = os.path.join(args.work_dir, 'seed-%d' % seed, name)
    train_dir = os.path.join(run_dir, 'train')
    if os.path.exists(train_dir):
        sys.exit('%s exists: give an empty --work_dir (training would resume)' % train_dir)
    os.makedirs(run_dir, exist_ok=True)
    seconds = run_script('train_ssd_network.py', [
        '--dataset_dir=%s' % args.dataset_dir, '--dataset_name=%s' % args.dataset_name,
        '--dataset_split_name=trainval', '--model_name=%s' % args.model_name,
        '--train_dir=%s' % train_dir, '--max_number_of_steps=%d' % args.steps,
        '--log_every_n_steps=%d' % args.log_every_n_steps, '--save_interval_secs=100000',
        '--precision=%s' % name] + recipe_flags(args) + ['--seed=%d' % seed] + SAME_BATCHES,
        os.path.join(run_dir, 'train.log'))
    eval_dir = os.path.join(run_dir, 'eval')
    run_script('eval_ssd_network.py', [
        '--checkpoint_path=%s' % train_dir, '--dataset_dir=%s' % args.dataset_dir,
        '--dataset_name=%s' % args.dataset_name, '--dataset_split_name=%s' % args.split,
        '--model_name=%s' % args.model_name, '--eval_dir=%s' % eval_dir, '--metrics=voc',
        '--num_visualizations=0'], os.path.join(run_dir, 'eval.log'))
    with open(os.path.join(run_dir, 'train.log'), encoding='utf-8', errors='replace') as log:
        progress = progress_lines(log.read())
    with open(os.path.join(eval_dir, 'metrics.json'), encoding='utf-8') as metrics:
        return {'seconds': seconds, 'progress': progress, 'metrics': json.load(metrics)}


def print_run(seed, name, result, num_steps):
    """One line of a training run: seed, precision, steps, time, images/s, mAP, loss per
    quarter."""
    rates = [rate for _, _, rate in result['progress'][1:]]
    metrics = result['metrics']
    print('seed %d %-15s %d steps in %.0f s, median %.2f images/s; mAP VOC07 %.4f VOC12 %.4f; '
          'mean logged loss per quarter %s' % (
              seed, name, result['progress'][-1][0] if result['progress'] else 0,
              result['seconds'], float(np.median(rates)) if rates else float('nan'),
              metrics['mAP_voc07'], metrics['mAP_voc12'],
              ' '.join('%.3f' % m for m in quarter_means(result['progress'], num_steps))),
          flush=True)


def _mean_text(values):
    """'mean' of a 1-D array, with its sample standard deviation when there are several."""
    if len(values) < 2:
        return 'mean %.4f' % values.mean()
    return 'mean %.4f (sd %.4f)' % (values.mean(), np.std(values, ddof=1))


def print_summary(precisions, results):
    """Over the seeds: mean (and sample standard deviation) of each precision's mAP, and the
    mean difference with its standard error.

    Args:
      precisions: (float32, the mixed precision).
      results: [{precision: train_and_evaluate result}] one dict per seed.
    """
    for metric in ('mAP_voc07', 'mAP_voc12'):
        values = np.array([[result[name]['metrics'][metric] for name in precisions]
                           for result in results])  # [seeds, 2]
        differences = values[:, 1] - values[:, 0]
        error = ''
        if len(differences) > 1:
            error = ' +- %.4f (standard error)' % (np.std(differences, ddof=1) /
                                                   np.sqrt(len(differences)))
        print('%s over %d seed(s): %s; difference (%s - %s) %s, mean %+.4f%s' % (
            metric, len(values),
            '; '.join('%s %s' % (name, _mean_text(values[:, i]))
                      for i, name in enumerate(precisions)),
            precisions[1], precisions[0], ' '.join('%+.4f' % d for d in differences),
            differences.mean(), error))


def compare_training(args):
    """The train comparison: each seed in float32 then in the mixed precision; prints each
    run's figures and the summary over the seeds."""
    precisions = (precision_lib.FLOAT32, args.precision)
    print('machine: %s' % machine.describe(), flush=True)
    print('%s %s, recipe %s (%s), %d steps, seeds %s; evaluated in float32 on %s (%s/%s)'
          % (args.model_name, 'from %s' % args.checkpoint if args.checkpoint else 'from scratch',
             args.recipe, ' '.join(recipe_flags(args) + SAME_BATCHES), args.steps,
             ' '.join(map(str, args.seeds)), args.dataset_dir, args.dataset_name, args.split),
          flush=True)
    results = []
    for seed in args.seeds:
        results.append({})
        for name in precisions:
            logging.info('training %s in %s, seed %d', args.model_name, name, seed)
            results[-1][name] = train_and_evaluate(args, seed, name)
            print_run(seed, name, results[-1][name], args.steps)
        print('machine after seed %d: %s' % (seed, machine.describe()), flush=True)
    print_summary(precisions, results)


def compare_forward(args):
    """The forward comparison: prints mAP, detection matches and speed of each precision."""
    precisions = (precision_lib.FLOAT32, args.precision)
    with tempfile.TemporaryDirectory(prefix='bench_precision_') as work_dir:
        results = evaluate(args, precisions, work_dir)
        detections = {name: detections_by_image(os.path.join(work_dir, name + '.json'),
                                                args.score_threshold) for name in precisions}
    print('machine: %s' % machine.describe())
    print('%s on %s/%s, %d images' % (args.checkpoint_path, args.dataset_name, args.split,
                                      results[precisions[0]][0].num_images))
    for name in precisions:
        evaluation, seconds = results[name]
        print('%-15s mAP VOC07 %.4f  VOC12 %.4f  eval pass %.1f s (%.2f images/s)' % (
            name, evaluation.results['mAP_voc07'], evaluation.results['mAP_voc12'], seconds,
            evaluation.num_images / seconds))
    reference, mixed = (results[name][0].results for name in precisions)
    print('mAP difference (%s - float32): VOC07 %+.4f  VOC12 %+.4f' % (
        args.precision, mixed['mAP_voc07'] - reference['mAP_voc07'],
        mixed['mAP_voc12'] - reference['mAP_voc12']))
    for first, second in (precisions, precisions[::-1]):
        matched, total = matched_share(detections[first], detections[second], args.iou_threshold)
        print('%s detections (score >= %.2f) with a same-class %s detection at IoU >= %.2f: '
              '%d of %d (%.2f%%)' % (first, args.score_threshold, second, args.iou_threshold,
                                     matched, total, 100.0 * matched / max(total, 1)))


def _seeds(text):
    """argparse type of --seeds: '0,1,2' -> [0, 1, 2], distinct."""
    try:
        seeds = [int(seed) for seed in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError('not comma-separated integers: %r' % text) from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError('a seed is repeated: %r' % text)
    return seeds


def parse_args(argv=None):
    """The flags of both comparisons; exits on bad ones."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    forward = commands.add_parser('forward', help='a trained checkpoint in both precisions')
    forward.add_argument('--checkpoint_path', required=True, help='checkpoint or train dir')
    forward.add_argument('--batch_size', type=int, default=8)
    forward.add_argument('--score_threshold', type=float,
                         default=np_post_processing.DISPLAY_THRESHOLD)
    forward.add_argument('--iou_threshold', type=float, default=0.9)
    train = commands.add_parser('train', help='train from scratch in both precisions')
    train.add_argument('--work_dir', required=True, help='empty folder for both runs')
    train.add_argument('--recipe', default='demo', choices=sorted(RECIPES))
    train.add_argument('--steps', type=int, default=600)
    train.add_argument('--log_every_n_steps', type=int, default=20)
    train.add_argument('--seeds', default='0', type=_seeds,
                       help='comma-separated seeds, each trained in both precisions '
                       '(default %(default)s)')
    train.add_argument('--checkpoint', default=None,
                       help='the vgg_16.ckpt the vgg_finetune recipe starts from')
    for command in (forward, train):
        command.add_argument('--dataset_dir', required=True, help='TFRecords and labels.txt')
        command.add_argument('--dataset_name', default='shapes')
        command.add_argument('--split', default='test', help='split evaluated')
        command.add_argument('--model_name', default='ssd_300_mobilenet_v2')
        precision_lib.add_flag(command, precision_lib.MIXED_BFLOAT16,
                               precision_lib.PRECISIONS[1:], 'the precision compared with float32')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    if args.command == 'train':
        if args.steps < 1 or args.log_every_n_steps < 1:
            parser.error('--steps and --log_every_n_steps must be >= 1')
        needs_checkpoint = any('{checkpoint}' in flag for flag in RECIPES[args.recipe])
        if needs_checkpoint != bool(args.checkpoint):
            parser.error('--recipe=%s %s --checkpoint' % (
                args.recipe, 'needs' if needs_checkpoint else 'takes no'))
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    if args.command == 'train':
        compare_training(args)
    else:
        compare_forward(args)
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'precision'))
