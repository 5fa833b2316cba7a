"""Evaluates SSD checkpoints with the Pascal VOC metrics (VOC2007 11-point and VOC2010+ area)
and the COCO metrics (pycocotools: AP@[.5:.95], AP50, AP75, AP by size, AR@1/10/100).

    python eval_ssd_network.py --checkpoint_path=TRAIN --dataset_dir=DATA \\
        --dataset_name=shapes --dataset_split_name=test --eval_dir=EVAL \\
        [--metrics=voc,coco] [--detections_file=dets.json] [--num_visualizations=8]

The network (and the classes, checked against the data) come from TRAIN/train_info.json
when the trainer wrote one; --model_name overrides it (checked). Prints a per-class AP
table and the COCO metrics; writes EVAL/metrics.json, TensorBoard summaries and
precision-recall curves (EVAL/pr_curves/*.png); --detections_file writes the detections
in COCO results format. With --num_visualizations=N, the
first N test images with their ground truth beside the detections go to
EVAL/visualizations/*.png and to TensorBoard's images. With --wait_for_checkpoints it
evaluates every new checkpoint of the train_dir given as --checkpoint_path.
"""
from common import tf_logs

if __name__ == '__main__':
    tf_logs.filter_stderr()  # first: TensorFlow's import prints its banner

import logging
import os
import sys

import tensorflow as tf

from common import cli, precision, progress
from datasets import dataset_factory, record_check
from datasets import train_dir as train_dir_lib
from evaluation import coco_eval, eval_lib, pr_curves, visualization
from nets import checkpoint_state, checkpoints, nets_factory
from nets import precision as nets_precision
from preprocessing import preprocessing_factory

METRICS = ('voc', 'coco')


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
    model.add_argument('--model_name', default=None, choices=nets_factory.NETWORK_NAMES,
                       help='network (default: the one of the train dir\'s train_info.json, '
                       'else %s)' % nets_factory.DEFAULT_NETWORK)
    model.add_argument('--moving_average_decay', type=float, default=None,
                       help='evaluate the moving averages of the weights')
    precision.add_flag(model)
    cli.add_post_processing_flags(parser)
    metric = parser.add_argument_group('metric')
    metric.add_argument('--matching_threshold', type=float, default=0.5,
                        help='IoU of a true positive (default %(default)s)')
    cli.add_bool(metric, 'remove_difficult', True,
                 'difficult objects are neither misses nor false positives (VOC devkit)')
    metric.add_argument('--metrics', type=cli.comma_list, default=list(METRICS),
                        help='metrics to report, comma separated: voc (always computed), coco '
                        '(default %s)' % ','.join(METRICS))
    metric.add_argument('--detections_file', default=None,
                        help='write the detections in COCO results format to this JSON file')
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
    nets_precision.check_machine(args.precision)
    if args.wait_for_checkpoints:
        if not os.path.isdir(args.checkpoint_path):
            raise ValueError('--wait_for_checkpoints needs --checkpoint_path to be a train_dir, '
                             'got %s' % args.checkpoint_path)
        try:
            checkpoint_state.listed(args.checkpoint_path)
        except ValueError as error:
            raise ValueError('--checkpoint_path %s' % error) from None
    else:
        try:
            checkpoints.resolve_checkpoint(args.checkpoint_path)
        except ValueError as error:
            raise ValueError('--checkpoint_path %s' % error) from None
    unknown = sorted(set(args.metrics) - set(METRICS))
    if unknown or not args.metrics:
        raise ValueError('--metrics: choose from %s, got %s' % (', '.join(METRICS),
                                                               ','.join(args.metrics) or '""'))
    if args.detections_file and not os.path.isdir(
            os.path.dirname(os.path.abspath(args.detections_file))):
        raise ValueError('--detections_file %s: its folder does not exist' % args.detections_file)
    folder = train_dir_lib.folder_of(args.checkpoint_path)
    args.model_name = train_dir_lib.network_name(folder, train_dir_lib.read(folder),
                                                 args.model_name, nets_factory.DEFAULT_NETWORK)


def parse_args(argv=None):
    """Parsed and validated flags (argv without the program name); exits on bad flags."""
    return cli.parse(build_parser(), argv, validate_flags)


def _checkpoints(args):
    """The checkpoints to evaluate: one, or each new one of the train_dir that loads (the
    others skipped with a warning).

    Raises:
        checkpoint_state.CheckpointError: the one checkpoint does not load.
    """
    if not args.wait_for_checkpoints:
        checkpoint = checkpoints.resolve_checkpoint(args.checkpoint_path)
        checkpoint_state.check_loads(checkpoint)
        yield checkpoint
        return
    for checkpoint in tf.compat.v1.train.checkpoints_iterator(
            args.checkpoint_path, min_interval_secs=args.eval_interval_secs,
            timeout=args.eval_timeout_secs):
        problem = checkpoint_state.load_problem(checkpoint)
        if problem:
            logging.warning('Skipping checkpoint %s: %s', checkpoint, problem)
            continue
        yield checkpoint


def _report(args, evaluation, checkpoint, labels):
    """Writes metrics.json, summaries, PR curves and pictures; prints the table."""
    step = evaluation.step
    metrics_path = eval_lib.write_metrics(
        args.eval_dir, eval_lib.metrics_dict(evaluation.results, checkpoint,
                                             evaluation.num_images, evaluation.coco))
    written = visualization.write_pictures(
        os.path.join(args.eval_dir, 'visualizations'), evaluation.examples, labels,
        args.visualization_score_threshold, ' (step %d)' % step)
    eval_lib.write_summaries(
        args.eval_dir, evaluation.results, step,
        [(os.path.splitext(os.path.basename(path))[0], picture, png)
         for path, picture, png in written], coco=evaluation.coco)
    pr_dir = os.path.join(args.eval_dir, 'pr_curves')
    pr_curves.write_pr_curves(pr_dir, evaluation.results['per_class'], ' (step %d)' % step)
    print('Checkpoint %s (step %d)' % (checkpoint, step))
    print(eval_lib.format_table(evaluation.results, evaluation.num_images))
    if evaluation.coco is not None:
        print(coco_eval.format_table(evaluation.coco))
    print('Wrote %s and PR curves in %s' % (metrics_path, pr_dir))
    if written:
        print('Wrote %s in %s' % (progress.counted(len(written), 'picture'),
                                  os.path.dirname(written[0][0])))
    sys.stdout.flush()


def main(argv=None):
    args = parse_args(argv)
    try:
        dataset_info = dataset_factory.get_dataset(args.dataset_name, args.dataset_split_name,
                                                   args.dataset_dir)
        folder = train_dir_lib.folder_of(args.checkpoint_path)
        described = train_dir_lib.read(folder)
        if described is not None:
            train_dir_lib.check_labels(folder, described[1], dataset_info.labels,
                                       dataset_info.labels_path)
    except ValueError as error:
        sys.exit('eval_ssd_network.py: error: %s' % error)
    cli.setup_logging()
    tf.compat.v1.disable_eager_execution()
    network = nets_factory.get_network(args.model_name, dataset_info.num_classes)
    graph = eval_lib.build_eval_graph(
        network, dataset_info,
        preprocessing_factory.get_preprocessing(args.model_name, is_training=False),
        args.batch_size,
        postprocess_kwargs={**network.post_processing, **cli.post_processing_kwargs(args)},
        moving_average_decay=args.moving_average_decay,
        num_preprocessing_threads=args.num_preprocessing_threads,
        num_visualizations=args.num_visualizations)
    os.makedirs(args.eval_dir, exist_ok=True)
    try:
        for checkpoint in _checkpoints(args):
            evaluation = eval_lib.run_evaluation(
                graph, checkpoint, dataset_info.labels,
                matching_threshold=args.matching_threshold,
                remove_difficult=args.remove_difficult, max_num_batches=args.max_num_batches,
                coco_metrics='coco' in args.metrics, category_ids=dataset_info.category_ids,
                difficult_as_crowd=dataset_info.category_ids is not None or args.remove_difficult,
                detections_file=args.detections_file,
                session_config=nets_precision.session_config(args.precision))
            _report(args, evaluation, checkpoint, dataset_info.labels)
    except (checkpoint_state.CheckpointError, record_check.CorruptRecordError) as error:
        sys.exit('eval_ssd_network.py: error: %s' % error)
    return 0


if __name__ == '__main__':
    sys.exit(main())
