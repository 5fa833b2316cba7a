"""Trains an SSD network on TFRecords, with one model clone per GPU (or CPU device).

    python train_ssd_network.py --dataset_dir=DATA --dataset_name=shapes \\
        --dataset_split_name=trainval --model_name=ssd_300_mobilenet_v2 \\
        --train_dir=TRAIN --batch_size=16 --max_number_of_steps=5000

Resumes from the newest checkpoint in --train_dir. --batch_size is per clone.
"""
import logging
import sys

import tensorflow as tf
from absl import app, flags

from datasets import dataset_factory
from deployment import flag_checks, model_deploy
from nets import checkpoints, nets_factory
from preprocessing import preprocessing_factory
from training import train_lib

# Dataset.
flags.DEFINE_string('dataset_dir', None, 'Directory of the TFRecords and labels.txt.')
flags.DEFINE_string('dataset_name', 'shapes', 'Data set name (record prefix).')
flags.DEFINE_string('dataset_split_name', 'trainval', 'Split to train on.')
flags.DEFINE_integer('num_readers', 2, 'Parallel TFRecord readers.')
flags.DEFINE_integer('num_preprocessing_threads', 2, 'Parallel preprocessing calls.')
flags.DEFINE_integer('seed', None, 'Random seed of initialisation, shuffling and augmentation.')
# Model.
flags.DEFINE_string('model_name', 'ssd_300_vgg', 'Network: ssd_300_vgg, ssd_512_vgg, '
                    'ssd_300_mobilenet_v2.')
flags.DEFINE_float('weight_decay', 0.0005, 'L2 weight decay.')
# Deployment.
flags.DEFINE_integer('num_clones', 1, 'Model clones (one per GPU, or per CPU device).')
flags.DEFINE_boolean('clone_on_cpu', False, 'Place the clones on CPU devices.')
flags.DEFINE_integer('worker_replicas', 1, 'Number of worker replicas.')
flags.DEFINE_integer('num_ps_tasks', 0, 'Parameter-server tasks (0: variables on this worker).')
flags.DEFINE_integer('task', 0, 'Task id of this worker replica.')
flags.DEFINE_string('master', '', 'Session target of a distributed run.')
# Optimisation.
flags.DEFINE_enum('optimizer', 'momentum', ['sgd', 'momentum', 'adam', 'rmsprop'], 'Optimizer.')
flags.DEFINE_float('momentum', 0.9, 'Momentum (momentum and rmsprop).')
flags.DEFINE_float('adam_beta1', 0.9, 'Adam beta1.')
flags.DEFINE_float('adam_beta2', 0.999, 'Adam beta2.')
flags.DEFINE_float('rmsprop_decay', 0.9, 'RMSProp decay.')
flags.DEFINE_float('opt_epsilon', 1e-8, 'Adam / RMSProp epsilon.')
flags.DEFINE_float('learning_rate', 0.001, 'Initial learning rate.')
flags.DEFINE_enum('learning_rate_decay_type', 'fixed',
                  ['fixed', 'exponential', 'polynomial', 'piecewise', 'cosine'],
                  'Learning rate schedule.')
flags.DEFINE_integer('learning_rate_decay_steps', None, 'Steps per decay (exponential) or of '
                     'the whole decay (polynomial, cosine; default: max_number_of_steps '
                     'minus warmup).')
flags.DEFINE_float('learning_rate_decay_factor', 0.1, 'Exponential decay factor.')
flags.DEFINE_float('end_learning_rate', 0.0, 'Final rate of polynomial and cosine decay.')
flags.DEFINE_list('learning_rate_boundaries', [], 'Piecewise: steps where the rate changes.')
flags.DEFINE_list('learning_rate_values', [], 'Piecewise: len(boundaries) + 1 rates.')
flags.DEFINE_integer('warmup_steps', 0, 'Linear warmup steps.')
flags.DEFINE_float('moving_average_decay', None, 'Keep moving averages of the weights.')
# Loss.
flags.DEFINE_float('match_threshold', 0.5, 'IoU for an anchor to match a ground truth.')
flags.DEFINE_float('negative_ratio', 3.0, 'Hard negatives per positive.')
flags.DEFINE_float('loss_alpha', 1.0, 'Weight of the localisation loss.')
# Fine-tuning.
flags.DEFINE_string('checkpoint_path', None, 'Checkpoint (file or directory) to start from.')
flags.DEFINE_string('checkpoint_model_scope', None, 'Model scope in the checkpoint, e.g. vgg_16.')
flags.DEFINE_list('checkpoint_exclude_scopes', [], 'Scopes not restored from the checkpoint.')
flags.DEFINE_list('trainable_scopes', [], 'Scopes to train (default: all).')
flags.DEFINE_boolean('ignore_missing_vars', False, 'Skip variables missing from the checkpoint.')
# Run length and logging.
flags.DEFINE_string('train_dir', None, 'Directory of checkpoints and summaries.')
flags.DEFINE_integer('batch_size', 32, 'Images per clone and step.')
flags.DEFINE_integer('max_number_of_steps', None, 'Last global step (default: no limit).')
flags.DEFINE_integer('max_train_secs', None, 'Stop after this many seconds of training.')
flags.DEFINE_integer('log_every_n_steps', 10, 'Progress log period in steps.')
flags.DEFINE_integer('save_interval_secs', 600, 'Checkpoint period in seconds.')
flags.DEFINE_integer('save_interval_steps', None, 'Checkpoint period in steps (overrides secs).')
flags.DEFINE_integer('save_summaries_secs', 60, 'Summary period in seconds.')
flags.DEFINE_integer('max_checkpoints_to_keep', 5, 'Checkpoints kept in train_dir.')

FLAGS = flags.FLAGS


def _piecewise(f):
    """Parsed (boundaries, values) of the piecewise schedule."""
    try:
        boundaries = [int(b) for b in f.learning_rate_boundaries]
    except ValueError:
        raise ValueError('--learning_rate_boundaries must be integers, got %s'
                         % ','.join(f.learning_rate_boundaries)) from None
    try:
        values = [float(v) for v in f.learning_rate_values]
    except ValueError:
        raise ValueError('--learning_rate_values must be numbers, got %s'
                         % ','.join(f.learning_rate_values)) from None
    return boundaries, values


def validate_flags(f):
    """Checks the flag values before any graph is built.

    Raises:
        ValueError: a message naming the flag.
    """
    flag_checks.required(f, ['dataset_dir', 'train_dir'])
    flag_checks.dataset_and_model(f)
    flag_checks.positive(f, ['batch_size', 'num_clones', 'learning_rate', 'max_number_of_steps',
                  'max_train_secs',
                  'log_every_n_steps', 'save_interval_secs', 'save_interval_steps',
                  'save_summaries_secs', 'num_readers', 'num_preprocessing_threads',
                  'worker_replicas', 'negative_ratio', 'max_checkpoints_to_keep',
                  'learning_rate_decay_steps', 'opt_epsilon'])
    flag_checks.non_negative(f, ['weight_decay', 'loss_alpha', 'warmup_steps', 'num_ps_tasks',
                                 'end_learning_rate', 'momentum'])
    if not 0.0 < f.match_threshold <= 1.0:
        raise ValueError('--match_threshold must be in (0, 1], got %s' % f.match_threshold)
    flag_checks.moving_average_decay(f)
    for name in ('adam_beta1', 'adam_beta2', 'rmsprop_decay'):
        if not 0.0 <= getattr(f, name) < 1.0:
            raise ValueError('--%s must be in [0, 1), got %s' % (name, getattr(f, name)))
    decay = f.learning_rate_decay_type
    if decay == 'exponential' and not f.learning_rate_decay_steps:
        raise ValueError('--learning_rate_decay_type=exponential needs --learning_rate_decay_steps')
    if decay in ('polynomial', 'cosine'):
        if not (f.learning_rate_decay_steps or f.max_number_of_steps):
            raise ValueError('--learning_rate_decay_type=%s needs --learning_rate_decay_steps '
                             'or --max_number_of_steps' % decay)
        if (not f.learning_rate_decay_steps and f.max_number_of_steps <= f.warmup_steps):
            raise ValueError('--warmup_steps must be < --max_number_of_steps')
    boundaries, values = _piecewise(f)
    if decay == 'piecewise':
        if len(values) != len(boundaries) + 1:
            raise ValueError('--learning_rate_values needs len(--learning_rate_boundaries) + 1 '
                             '= %d values, got %d' % (len(boundaries) + 1, len(values)))
        if boundaries != sorted(set(boundaries)) or any(b <= 0 for b in boundaries):
            raise ValueError('--learning_rate_boundaries must be increasing positive steps')
    elif boundaries or values:
        raise ValueError('--learning_rate_boundaries/--learning_rate_values need '
                         '--learning_rate_decay_type=piecewise')
    if not f.checkpoint_path:
        for name in ('checkpoint_model_scope', 'checkpoint_exclude_scopes', 'ignore_missing_vars'):
            if getattr(f, name):
                raise ValueError('--%s needs --checkpoint_path' % name)
    if f.worker_replicas > 1 and f.num_ps_tasks < 1:
        raise ValueError('--worker_replicas > 1 needs --num_ps_tasks >= 1')
    if not 0 <= f.task < f.worker_replicas:
        raise ValueError('--task must be in [0, --worker_replicas), got %d' % f.task)


def _learning_rate_kwargs(f):
    boundaries, values = _piecewise(f)
    decay_steps = f.learning_rate_decay_steps
    if not decay_steps and f.max_number_of_steps:
        decay_steps = max(f.max_number_of_steps - f.warmup_steps, 1)
    return dict(decay_type=f.learning_rate_decay_type, learning_rate=f.learning_rate,
                decay_steps=decay_steps, decay_factor=f.learning_rate_decay_factor,
                end_learning_rate=f.end_learning_rate, boundaries=boundaries, values=values,
                warmup_steps=f.warmup_steps)


def main(argv):
    if len(argv) > 1:
        sys.exit('train_ssd_network.py: error: unexpected arguments %s' % ' '.join(argv[1:]))
    try:
        validate_flags(FLAGS)
    except ValueError as error:
        sys.exit('train_ssd_network.py: error: %s' % error)
    logging.getLogger().setLevel(logging.INFO)
    tf.compat.v1.disable_eager_execution()
    try:
        if FLAGS.checkpoint_path:
            checkpoints.resolve_checkpoint(FLAGS.checkpoint_path)
        dataset_info = dataset_factory.get_dataset(FLAGS.dataset_name, FLAGS.dataset_split_name,
                                                   FLAGS.dataset_dir)
        network = nets_factory.get_network(FLAGS.model_name, dataset_info.num_classes)
        deploy_config = model_deploy.DeploymentConfig(
            num_clones=FLAGS.num_clones, clone_on_cpu=FLAGS.clone_on_cpu,
            replica_id=FLAGS.task, num_replicas=FLAGS.worker_replicas,
            num_ps_tasks=FLAGS.num_ps_tasks)
        graph = train_lib.build_train_graph(
            network, dataset_info,
            preprocessing_factory.get_preprocessing(FLAGS.model_name, is_training=True),
            deploy_config, FLAGS.batch_size, _learning_rate_kwargs(FLAGS),
            dict(name=FLAGS.optimizer, momentum=FLAGS.momentum, adam_beta1=FLAGS.adam_beta1,
                 adam_beta2=FLAGS.adam_beta2, rmsprop_decay=FLAGS.rmsprop_decay,
                 epsilon=FLAGS.opt_epsilon),
            weight_decay=FLAGS.weight_decay, match_threshold=FLAGS.match_threshold,
            negative_ratio=FLAGS.negative_ratio, loss_alpha=FLAGS.loss_alpha,
            moving_average_decay=FLAGS.moving_average_decay,
            fine_tune_kwargs=dict(checkpoint_path=FLAGS.checkpoint_path,
                                  checkpoint_model_scope=FLAGS.checkpoint_model_scope,
                                  exclude_scopes=FLAGS.checkpoint_exclude_scopes,
                                  ignore_missing_vars=FLAGS.ignore_missing_vars),
            trainable_scopes=FLAGS.trainable_scopes, num_readers=FLAGS.num_readers,
            num_preprocessing_threads=FLAGS.num_preprocessing_threads, seed=FLAGS.seed)
    except ValueError as error:
        sys.exit('train_ssd_network.py: error: %s' % error)
    session_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if FLAGS.clone_on_cpu:
        session_config.device_count['CPU'] = FLAGS.num_clones
    try:
        train_lib.train(graph, FLAGS.train_dir, max_number_of_steps=FLAGS.max_number_of_steps,
                        log_every_n_steps=FLAGS.log_every_n_steps,
                        save_interval_secs=FLAGS.save_interval_secs,
                        save_interval_steps=FLAGS.save_interval_steps,
                        save_summaries_secs=FLAGS.save_summaries_secs,
                        max_checkpoints_to_keep=FLAGS.max_checkpoints_to_keep,
                        session_config=session_config, master=FLAGS.master,
                        max_train_secs=FLAGS.max_train_secs)
    except train_lib.TrainingDivergedError as error:
        logging.error('%s', error)
        sys.exit(1)


if __name__ == '__main__':
    app.run(main)
