"""Trains an SSD network on TFRecords, with one model clone per GPU (or CPU device).

    python train_ssd_network.py --dataset_dir=DATA --dataset_name=shapes \\
        --dataset_split_name=trainval --model_name=ssd_300_mobilenet_v2 \\
        --train_dir=TRAIN --batch_size=16 --max_number_of_steps=5000

Resumes from the newest checkpoint in --train_dir. --batch_size is per clone. Writes
--train_dir/labels.txt and train_info.json (network, input, data sets) at start, or stops
when those of an earlier run disagree. --dataset_name may list several data sets
(voc2007,voc2012 or voc2007:trainval,voc2012:trainval), mixed in proportion to their sizes.

In a cluster (TF_CONFIG, or --ps_hosts/--worker_hosts/--job_name/--task) the same command
runs every task: a ps task serves variables until SIGTERM, the chief and the workers train
(--sync_replicas for synchronous updates), an evaluator task evaluates the chief's
checkpoints. `python -m deployment.local_cluster` starts such a cluster on this machine.
"""
from common import tf_logs

if __name__ == '__main__':
    tf_logs.filter_stderr()  # first: TensorFlow's import prints its banner

import argparse
import logging
import os
import sys

import tensorflow as tf

from common import cli, precision
from datasets import dataset_factory, record_check
from datasets import train_dir as train_dir_lib
from deployment import cluster, model_deploy, servers
from nets import checkpoint_state, checkpoints, nets_factory
from nets import precision as nets_precision
from preprocessing import preprocessing_factory
from training import optimization, train_hooks, train_lib

# DeploymentConfig argument -> flag (the config checks them; errors name the flags).
DEPLOYMENT_FLAGS = {'num_clones': 'num_clones', 'clone_on_cpu': 'clone_on_cpu',
                    'replica_id': 'task', 'num_replicas': 'worker_replicas',
                    'num_ps_tasks': 'num_ps_tasks', 'ps_strategy': 'ps_strategy'}


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    data = cli.add_dataset_flags(parser, 'trainval')
    data.add_argument('--num_readers', type=int, default=2, help='parallel TFRecord readers')
    data.add_argument('--seed', type=int, default=None,
                      help='random seed of initialisation, shuffling and augmentation')
    model = parser.add_argument_group('model')
    model.add_argument('--model_name', default='ssd_300_vgg', choices=nets_factory.NETWORK_NAMES,
                       help='network (default %(default)s)')
    model.add_argument('--weight_decay', type=float, default=0.0005, help='L2 weight decay')
    precision.add_flag(model)
    deploy = parser.add_argument_group('deployment')
    deploy.add_argument('--num_clones', type=int, default=1,
                        help='model clones (one per GPU, or per CPU device)')
    cli.add_bool(deploy, 'clone_on_cpu', False, 'place the clones on CPU devices')
    deploy.add_argument('--worker_replicas', type=int, default=None,
                        help='number of worker replicas (default 1, or the cluster\'s)')
    deploy.add_argument('--num_ps_tasks', type=int, default=None,
                        help='parameter-server tasks (default 0: variables on this worker, or '
                        'the cluster\'s)')
    deploy.add_argument('--task', type=int, default=None,
                        help='index of this task in its job (default 0, or TF_CONFIG\'s)')
    deploy.add_argument('--master', default='',
                        help='session target of a distributed run whose servers run elsewhere')
    cluster.add_flags(parser, sorted(model_deploy.PS_STRATEGIES))
    opt = parser.add_argument_group('optimisation')
    opt.add_argument('--optimizer', default='momentum', choices=optimization.OPTIMIZERS,
                     help='optimizer (default %(default)s)')
    opt.add_argument('--momentum', type=float, default=0.9, help='momentum (momentum, rmsprop)')
    opt.add_argument('--adam_beta1', type=float, default=0.9, help='Adam beta1')
    opt.add_argument('--adam_beta2', type=float, default=0.999, help='Adam beta2')
    opt.add_argument('--rmsprop_decay', type=float, default=0.9, help='RMSProp decay')
    opt.add_argument('--opt_epsilon', type=float, default=1e-8, help='Adam / RMSProp epsilon')
    opt.add_argument('--learning_rate', type=float, default=0.001, help='initial learning rate')
    opt.add_argument('--learning_rate_decay_type', default='fixed',
                     choices=optimization.DECAY_TYPES, help='schedule (default %(default)s)')
    opt.add_argument('--learning_rate_decay_steps', type=int, default=None,
                     help='steps per decay (exponential) or of the whole decay (polynomial, '
                     'cosine; default: max_number_of_steps minus warmup)')
    opt.add_argument('--learning_rate_decay_factor', type=float, default=0.1,
                     help='exponential decay factor')
    opt.add_argument('--end_learning_rate', type=float, default=0.0,
                     help='final rate of polynomial and cosine decay')
    opt.add_argument('--learning_rate_boundaries', type=cli.comma_list, default=(),
                     help='piecewise: steps where the rate changes (comma separated)')
    opt.add_argument('--learning_rate_values', type=cli.comma_list, default=(),
                     help='piecewise: len(boundaries) + 1 rates (comma separated)')
    opt.add_argument('--warmup_steps', type=int, default=0, help='linear warmup steps')
    opt.add_argument('--moving_average_decay', type=float, default=None,
                     help='keep moving averages of the weights with this decay')
    loss = parser.add_argument_group('loss')
    loss.add_argument('--match_threshold', type=float, default=0.5,
                      help='IoU for an anchor to match a ground truth')
    loss.add_argument('--negative_ratio', type=float, default=3.0,
                      help='hard negatives per positive')
    loss.add_argument('--loss_alpha', type=float, default=1.0,
                      help='weight of the localisation loss')
    tune = parser.add_argument_group('fine-tuning')
    tune.add_argument('--checkpoint_path', default=None,
                      help='checkpoint (file or directory) to start from')
    tune.add_argument('--checkpoint_model_scope', default=None,
                      help='model scope in the checkpoint, e.g. vgg_16')
    tune.add_argument('--checkpoint_exclude_scopes', type=cli.comma_list, default=(),
                      help='scopes not restored from the checkpoint (comma separated)')
    tune.add_argument('--trainable_scopes', type=cli.comma_list, default=(),
                      help='scopes to train (default: all; comma separated)')
    cli.add_bool(tune, 'ignore_missing_vars', False, 'skip variables missing from the checkpoint')
    run = parser.add_argument_group('run')
    run.add_argument('--train_dir', required=True, help='directory of checkpoints and summaries')
    run.add_argument('--batch_size', type=int, default=32, help='images per clone and step')
    run.add_argument('--max_number_of_steps', type=int, default=None,
                     help='last global step (default: no limit)')
    run.add_argument('--max_train_secs', type=int, default=None,
                     help='stop after this many seconds of training')
    run.add_argument('--log_every_n_steps', type=int, default=10, help='progress log period')
    run.add_argument('--save_interval_secs', type=int, default=600,
                     help='checkpoint period in seconds')
    run.add_argument('--save_interval_steps', type=int, default=None,
                     help='checkpoint period in steps (overrides secs)')
    run.add_argument('--save_summaries_steps', type=int, default=None,
                     help='scalar summary period in steps (default: %d points over '
                     '--max_number_of_steps, or every %d steps without it)'
                     % (train_hooks.SUMMARY_POINTS, train_hooks.SUMMARY_POINTS))
    run.add_argument('--save_summaries_secs', type=int, default=60,
                     help='image summary period in seconds')
    run.add_argument('--max_checkpoints_to_keep', type=int, default=5,
                     help='checkpoints kept in train_dir')
    return parser


def _piecewise(args):
    """Parsed (boundaries, values) of the piecewise schedule."""
    try:
        boundaries = [int(b) for b in args.learning_rate_boundaries]
    except ValueError:
        raise ValueError('--learning_rate_boundaries must be integers, got %s'
                         % ','.join(args.learning_rate_boundaries)) from None
    try:
        values = [float(v) for v in args.learning_rate_values]
    except ValueError:
        raise ValueError('--learning_rate_values must be numbers, got %s'
                         % ','.join(args.learning_rate_values)) from None
    return boundaries, values


def _check_schedule(args):
    decay = args.learning_rate_decay_type
    if decay == 'exponential' and not args.learning_rate_decay_steps:
        raise ValueError('--learning_rate_decay_type=exponential needs --learning_rate_decay_steps')
    if decay in ('polynomial', 'cosine'):
        if not (args.learning_rate_decay_steps or args.max_number_of_steps):
            raise ValueError('--learning_rate_decay_type=%s needs --learning_rate_decay_steps '
                             'or --max_number_of_steps' % decay)
        if not args.learning_rate_decay_steps and args.max_number_of_steps <= args.warmup_steps:
            raise ValueError('--warmup_steps must be < --max_number_of_steps')
    boundaries, values = _piecewise(args)
    if decay == 'piecewise':
        if len(values) != len(boundaries) + 1:
            raise ValueError('--learning_rate_values needs len(--learning_rate_boundaries) + 1 '
                             '= %d values, got %d' % (len(boundaries) + 1, len(values)))
        if boundaries != sorted(set(boundaries)) or any(b <= 0 for b in boundaries):
            raise ValueError('--learning_rate_boundaries must be increasing positive steps')
    elif boundaries or values:
        raise ValueError('--learning_rate_boundaries/--learning_rate_values need '
                         '--learning_rate_decay_type=piecewise')


def validate_flags(args):
    """Checks the flag values before any graph is built.

    Raises:
        ValueError: a message naming the flag.
    """
    cli.check_dataset_flags(args)
    cli.positive(args, ['batch_size', 'learning_rate', 'max_number_of_steps', 'max_train_secs',
                        'log_every_n_steps', 'save_interval_secs', 'save_interval_steps',
                        'save_summaries_steps', 'save_summaries_secs', 'num_readers',
                        'negative_ratio', 'max_checkpoints_to_keep', 'learning_rate_decay_steps',
                        'opt_epsilon', 'cluster_wait_secs', 'operation_timeout_secs'])
    cli.non_negative(args, ['weight_decay', 'loss_alpha', 'warmup_steps', 'end_learning_rate',
                            'momentum'])
    cli.in_range(args, ['match_threshold'], 0.0, 1.0, low_open=True)
    cli.in_range(args, ['moving_average_decay'], 0.0, 1.0, low_open=True, high_open=True)
    cli.in_range(args, ['adam_beta1', 'adam_beta2', 'rmsprop_decay'], 0.0, 1.0, high_open=True)
    _check_schedule(args)
    if not args.checkpoint_path:
        for name in ('checkpoint_model_scope', 'checkpoint_exclude_scopes', 'ignore_missing_vars'):
            if getattr(args, name):
                raise ValueError('--%s needs --checkpoint_path' % name)
    deployment_config(args)
    nets_precision.check_machine(args.precision)


def cluster_of(args, environ=None):
    """The cluster.Cluster of TF_CONFIG (in `environ`, default os.environ) and the cluster
    flags, or None for a single machine.

    Raises:
        cluster.ClusterError: naming TF_CONFIG or the flag.
    """
    found = cluster.resolve(os.environ if environ is None else environ, args.ps_hosts,
                            args.worker_hosts, args.job_name, args.task)
    cluster.check_training_flags(found, args.sync_replicas, args.replicas_to_aggregate,
                                 args.worker_replicas, args.num_ps_tasks, args.master)
    return found


def deployment_config(args, environ=None):
    """The model_deploy.DeploymentConfig of the deployment and cluster flags (None for a ps
    or evaluator task)."""
    found = cluster_of(args, environ)
    if found is None:
        flags = argparse.Namespace(**dict(vars(args), task=args.task or 0,
                                          worker_replicas=args.worker_replicas or 1,
                                          num_ps_tasks=args.num_ps_tasks or 0))
        return cli.call_with_flags(model_deploy.DeploymentConfig, flags, DEPLOYMENT_FLAGS)
    if not found.is_replica:
        return None
    return model_deploy.DeploymentConfig(
        num_clones=args.num_clones, clone_on_cpu=args.clone_on_cpu, replica_id=found.replica_id,
        num_replicas=found.num_replicas, num_ps_tasks=found.num_ps,
        worker_job_name=found.task_type, worker_task=found.task_index,
        ps_strategy=args.ps_strategy, sync_replicas=args.sync_replicas,
        replicas_to_aggregate=args.replicas_to_aggregate)


def parse_args(argv=None):
    """Parsed and validated flags (argv without the program name); exits on bad flags."""
    return cli.parse(build_parser(), argv, validate_flags)


def _learning_rate_kwargs(args):
    boundaries, values = _piecewise(args)
    decay_steps = args.learning_rate_decay_steps
    if not decay_steps and args.max_number_of_steps:
        decay_steps = max(args.max_number_of_steps - args.warmup_steps, 1)
    return dict(decay_type=args.learning_rate_decay_type, learning_rate=args.learning_rate,
                decay_steps=decay_steps, decay_factor=args.learning_rate_decay_factor,
                end_learning_rate=args.end_learning_rate, boundaries=boundaries, values=values,
                warmup_steps=args.warmup_steps)


def _build_graph(args, deploy_config):
    """The training graph of the flags (in the default graph)."""
    if args.checkpoint_path:
        checkpoints.resolve_checkpoint(args.checkpoint_path)
    if deploy_config.is_chief:
        checkpoint_state.listed(args.train_dir)  # refuses another dir's checkpoints now
    dataset_info = dataset_factory.get_dataset(args.dataset_name, args.dataset_split_name,
                                               args.dataset_dir)
    network = nets_factory.get_network(args.model_name, dataset_info.num_classes)
    nets_precision.keep_float32_in_training(network, args.precision)
    train_dir_lib.write_or_check(
        args.train_dir, train_dir_lib.describe(args.model_name, network.params, dataset_info),
        dataset_info.labels, is_chief=deploy_config.is_chief)
    return train_lib.build_train_graph(
        network, dataset_info,
        preprocessing_factory.get_preprocessing(args.model_name, is_training=True),
        deploy_config, args.batch_size, _learning_rate_kwargs(args),
        dict(name=args.optimizer, momentum=args.momentum, adam_beta1=args.adam_beta1,
             adam_beta2=args.adam_beta2, rmsprop_decay=args.rmsprop_decay,
             epsilon=args.opt_epsilon),
        weight_decay=args.weight_decay, match_threshold=args.match_threshold,
        negative_ratio=args.negative_ratio, loss_alpha=args.loss_alpha,
        moving_average_decay=args.moving_average_decay,
        fine_tune_kwargs=dict(checkpoint_path=args.checkpoint_path,
                              checkpoint_model_scope=args.checkpoint_model_scope,
                              exclude_scopes=args.checkpoint_exclude_scopes,
                              ignore_missing_vars=args.ignore_missing_vars),
        trainable_scopes=args.trainable_scopes, num_readers=args.num_readers,
        num_preprocessing_threads=args.num_preprocessing_threads, seed=args.seed,
        precision=args.precision)


def _evaluate(args):
    """The evaluator task: eval_ssd_network.py --wait_for_checkpoints on the train_dir."""
    import eval_ssd_network  # only the evaluator task needs the evaluation stack
    os.makedirs(args.train_dir, exist_ok=True)
    argv = ['--checkpoint_path=%s' % args.train_dir, '--wait_for_checkpoints',
            '--eval_dir=%s' % (args.eval_dir or os.path.join(args.train_dir, 'eval')),
            '--dataset_dir=%s' % args.dataset_dir,
            '--dataset_name=%s' % (args.eval_dataset_name or args.dataset_name),
            '--dataset_split_name=%s' % args.eval_split_name, '--model_name=%s' % args.model_name,
            '--num_preprocessing_threads=%d' % args.num_preprocessing_threads,
            '--precision=%s' % args.precision]
    if args.moving_average_decay:
        argv.append('--moving_average_decay=%r' % args.moving_average_decay)
    return eval_ssd_network.main(argv)


def _replica_kwargs(args, task, server, deploy_config, images_per_step):
    """train_lib.train's arguments of this replica (of a cluster if `task`)."""
    if task is None:
        return dict(master=args.master, is_chief=deploy_config.is_chief)
    per_global_step = images_per_step * (
        deploy_config.replicas_to_aggregate if deploy_config.sync_replicas else 1)
    return dict(master=server.target, is_chief=task.is_chief, wait_for=task.tasks([cluster.PS]),
                wait_secs=args.cluster_wait_secs,
                cluster_images_per_step=per_global_step if task.is_chief else None,
                operation_timeout_secs=args.operation_timeout_secs, peers=task.peers())


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging()
    task = cluster_of(args)
    if task is not None and task.task_type == cluster.PS:
        servers.serve(task)
        return 0
    if task is not None and task.task_type == cluster.EVALUATOR:
        return _evaluate(args)
    tf.compat.v1.disable_eager_execution()
    deploy_config = deployment_config(args)
    server = None
    if task is not None:
        logging.info('%s of the cluster %s', task.task_name, task.training_jobs())
        server = servers.start_server(task, servers.server_config(
            args.num_clones if args.clone_on_cpu else None))
    try:
        if task is not None:
            cluster.wait_for_tasks(task.peers(), args.cluster_wait_secs, log=logging.info)
        graph = _build_graph(args, deploy_config)
    except (ValueError, cluster.HostUnreachableError) as error:
        sys.exit('train_ssd_network.py: error: %s' % error)
    session_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if args.clone_on_cpu:
        session_config.device_count['CPU'] = args.num_clones
    if task is not None:
        session_config = servers.session_config(task, session_config,
                                                args.operation_timeout_secs)
    session_config = nets_precision.session_config(args.precision, session_config)
    replica_kwargs = _replica_kwargs(args, task, server, deploy_config, graph.images_per_step)
    try:
        train_lib.train(graph, args.train_dir, max_number_of_steps=args.max_number_of_steps,
                        log_every_n_steps=args.log_every_n_steps,
                        save_interval_secs=args.save_interval_secs,
                        save_interval_steps=args.save_interval_steps,
                        save_summaries_steps=args.save_summaries_steps,
                        save_summaries_secs=args.save_summaries_secs,
                        max_checkpoints_to_keep=args.max_checkpoints_to_keep,
                        session_config=session_config, max_train_secs=args.max_train_secs,
                        **replica_kwargs)
    except train_lib.TrainingDivergedError as error:
        logging.error('%s', error)
        return 1
    except (cluster.HostUnreachableError, checkpoint_state.CheckpointError,
            record_check.CorruptRecordError) as error:
        sys.exit('train_ssd_network.py: error: %s' % error)
    return 0


if __name__ == '__main__':
    sys.exit(main())
