"""Evaluates SSD checkpoints with the Pascal VOC metrics (VOC2007 11-point and VOC2010+ area).

    python eval_ssd_network.py --checkpoint_path=TRAIN --dataset_dir=DATA \\
        --dataset_name=shapes --dataset_split_name=test \\
        --model_name=ssd_300_mobilenet_v2 --eval_dir=EVAL [--num_visualizations=8]

Prints a per-class AP table; writes EVAL/metrics.json, TensorBoard summaries and
precision-recall curves (EVAL/pr_curves/*.png). With --num_visualizations=N, the
first N test images with their ground truth beside the detections go to
EVAL/visualizations/*.png and to TensorBoard's images. With --wait_for_checkpoints it
evaluates every new checkpoint of the train_dir given as --checkpoint_path.
"""
import os
import sys

import tensorflow as tf

from common import cli
from datasets import dataset_factory
from evaluation import eval_lib, pr_curves, visualization
from nets import checkpoints, nets_factory
from preprocessing import preprocessing_factory


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    run = parser.add_argument_group('checkpoint and output')
    run.add_argument('--checkpoint_path', required=True,
                     help='checkpoint file, or train_dir (its newest one)')
    run.add_argument('--eval_dir', required=True,
                     help='directory of metrics.json, summaries and pictures')
    cli.add_bool(run, 'wait_for_checkpoints', False,
                 'evaluate each new checkpoint of --checkpoint_path (a train_dir)')
    run.add_argument('--eval_interval_secs', type=int, default=60,
                     help='minimum seconds between two evaluations (default %(default)s)')
    run.add_argument('--eval_timeout_secs', type=int, default=None,
                     help='stop waiting after this many seconds without a new checkpoint '
                     '(default: wait forever)')
    data = cli.add_dataset_flags(parser, 'test')
    data.add_argument('--batch_size', type=int, default=8, help='images per batch')
    data.add_argument('--max_num_batches', type=int, default=None,
                      help='evaluate only this many batches')
    model = parser.add_argument_group('model')
    model.add_argument('--model_name', default='ssd_300_vgg', choices=nets_factory.NETWORK_NAMES,
                       help='network (default %(default)s)')
    model.add_argument('--moving_average_decay', type=float, default=None,
                       help='evaluate the moving averages of the weights')
    cli.add_post_processing_flags(parser)
    metric = parser.add_argument_group('metric')
    metric.add_argument('--matching_threshold', type=float, default=0.5,
                        help='IoU of a true positive (default %(default)s)')
    cli.add_bool(metric, 'remove_difficult', True,
                 'difficult objects are neither misses nor false positives (VOC devkit)')
    pictures = parser.add_argument_group('pictures')
    pictures.add_argument('--num_visualizations', type=int, default=0,
                          help='pictures of the first N images: ground truth beside the '
                          'detections (default %(default)s)')
    pictures.add_argument('--visualization_score_threshold', type=float,
                          default=visualization.SCORE_THRESHOLD,
                          help='lowest score of a detection in the pictures (default '
                          '%(default)s)')
    return parser


def validate_flags(args):
    """Checks the flag values before any graph is built.

    Raises:
        ValueError: a message naming the flag.
    """
    cli.check_dataset_flags(args)
    cli.positive(args, ['batch_size', 'max_num_batches', 'eval_interval_secs',
                        'eval_timeout_secs'])
    cli.non_negative(args, ['num_visualizations'])
    cli.check_post_processing(args)
    cli.in_range(args, ['matching_threshold', 'visualization_score_threshold'], 0.0, 1.0)
    cli.in_range(args, ['moving_average_decay'], 0.0, 1.0, low_open=True, high_open=True)
    if args.wait_for_checkpoints:
        if not os.path.isdir(args.checkpoint_path):
            raise ValueError('--wait_for_checkpoints needs --checkpoint_path to be a train_dir, '
                             'got %s' % args.checkpoint_path)
    else:
        try:
            checkpoints.resolve_checkpoint(args.checkpoint_path)
        except ValueError as error:
            raise ValueError('--checkpoint_path %s' % error) from None


def parse_args(argv=None):
    """Parsed and validated flags (argv without the program name); exits on bad flags."""
    return cli.parse(build_parser(), argv, validate_flags)


def _checkpoints(args):
    """The checkpoints to evaluate: one, or each new one of the train_dir."""
    if not args.wait_for_checkpoints:
        yield checkpoints.resolve_checkpoint(args.checkpoint_path)
        return
    yield from tf.compat.v1.train.checkpoints_iterator(
        args.checkpoint_path, min_interval_secs=args.eval_interval_secs,
        timeout=args.eval_timeout_secs)


def _report(args, evaluation, checkpoint, labels):
    """Writes metrics.json, summaries, PR curves and pictures; prints the table."""
    step = evaluation.step
    metrics_path = eval_lib.write_metrics(
        args.eval_dir, eval_lib.metrics_dict(evaluation.results, checkpoint,
                                             evaluation.num_images))
    written = visualization.write_pictures(
        os.path.join(args.eval_dir, 'visualizations'), evaluation.examples, labels,
        args.visualization_score_threshold, ' (step %d)' % step)
    eval_lib.write_summaries(
        args.eval_dir, evaluation.results, step,
        [(os.path.splitext(os.path.basename(path))[0], picture, png)
         for path, picture, png in written])
    pr_dir = os.path.join(args.eval_dir, 'pr_curves')
    pr_curves.write_pr_curves(pr_dir, evaluation.results['per_class'], ' (step %d)' % step)
    print('Checkpoint %s (step %d)' % (checkpoint, step))
    print(eval_lib.format_table(evaluation.results, evaluation.num_images))
    print('Wrote %s and PR curves in %s' % (metrics_path, pr_dir))
    if written:
        print('Wrote %d pictures in %s' % (len(written), os.path.dirname(written[0][0])))
    sys.stdout.flush()


def main(argv=None):
    args = parse_args(argv)
    try:
        dataset_info = dataset_factory.get_dataset(args.dataset_name, args.dataset_split_name,
                                                   args.dataset_dir)
    except ValueError as error:
        sys.exit('eval_ssd_network.py: error: %s' % error)
    cli.setup_logging()
    tf.compat.v1.disable_eager_execution()
    network = nets_factory.get_network(args.model_name, dataset_info.num_classes)
    graph = eval_lib.build_eval_graph(
        network, dataset_info,
        preprocessing_factory.get_preprocessing(args.model_name, is_training=False),
        args.batch_size, postprocess_kwargs=cli.post_processing_kwargs(args),
        moving_average_decay=args.moving_average_decay,
        num_preprocessing_threads=args.num_preprocessing_threads,
        num_visualizations=args.num_visualizations)
    os.makedirs(args.eval_dir, exist_ok=True)
    for checkpoint in _checkpoints(args):
        evaluation = eval_lib.run_evaluation(
            graph, checkpoint, dataset_info.labels, matching_threshold=args.matching_threshold,
            remove_difficult=args.remove_difficult, max_num_batches=args.max_num_batches)
        _report(args, evaluation, checkpoint, dataset_info.labels)
    return 0


if __name__ == '__main__':
    sys.exit(main())
