"""SSD training: the graph (clones, losses, summaries, fine-tuning) and the loop."""
import collections
import contextlib
import logging

import numpy as np
import tensorflow as tf
import tf_slim as slim

from common import fields, np_preprocessing
from datasets import record_check
from deployment import cluster, model_deploy, servers
from deployment import watchdog as watchdog_lib
from nets import checkpoint_state, checkpoints
from nets import losses as losses_lib
from nets import precision as nets_precision
from preprocessing import inputs
from training import optimization, train_hooks

TrainGraph = collections.namedtuple('TrainGraph', [
    'train_op',        # runs one step; its value is the total loss.
    'global_step',
    'log_tensors',     # dict name -> scalar: total, loss parts, learning_rate.
    'init_fn',         # fn(scaffold, session) restoring a fine-tuning checkpoint, or None.
    'images_per_step',
    'hooks',           # session hooks the train_op needs (synchronous replicas), or ().
    'input_files',     # the TFRecord shards read (named when one holds a bad record), or ().
], defaults=((), ()))


class TrainingDivergedError(RuntimeError):
    """The loss or the gradients became NaN or Inf; no update of that step was applied."""


def _image_summary(images, boxes, normalization, max_images):
    """Adds `max_images` training images with their ground-truth boxes to the summaries."""
    images = images[:max_images]
    pixels = tf.numpy_function(
        lambda x: np.clip(np_preprocessing.denormalize(x, normalization) / 255.0, 0, 1),
        [images], tf.float32, stateful=False)
    pixels.set_shape(images.shape)
    drawn = tf.image.draw_bounding_boxes(pixels, boxes[:max_images],
                                         tf.constant([[1.0, 0.2, 0.2]], tf.float32))
    tf.compat.v1.summary.image('train_images_with_boxes', drawn, max_outputs=max_images,
                               collections=[train_hooks.IMAGE_SUMMARIES])


def build_train_graph(network, dataset_info, preprocess_fn, deploy_config, batch_size,
                      learning_rate_kwargs, optimizer_kwargs, weight_decay=0.0005,
                      match_threshold=0.5, negative_ratio=3.0, loss_alpha=1.0,
                      moving_average_decay=None, fine_tune_kwargs=None, trainable_scopes=None,
                      num_readers=2, num_preprocessing_threads=2, seed=None,
                      num_summary_images=3, precision='float32'):
    """Builds the training graph in the default graph.

    Args:
        network: nets_factory SSDNet (its num_classes matches the data set).
        dataset_info: dataset_factory DatasetInfo of the training split.
        preprocess_fn: training preprocessing of one sample.
        deploy_config: model_deploy.DeploymentConfig.
        batch_size: images per clone and step.
        learning_rate_kwargs: arguments of optimization.learning_rate_schedule.
        optimizer_kwargs: arguments of optimization.make_optimizer (without the rate).
        weight_decay: L2 weight decay of the network's arg scope.
        match_threshold, negative_ratio, loss_alpha: matching and loss settings.
        moving_average_decay: keep exponential moving averages of the model variables.
        fine_tune_kwargs: arguments of checkpoints.variables_to_restore besides the
            variables and model scope (checkpoint_path, checkpoint_model_scope,
            exclude_scopes, ignore_missing_vars), or None to start from scratch.
        trainable_scopes: train only these scopes (default all).
        num_readers, num_preprocessing_threads, seed: input pipeline settings.
        num_summary_images: training images shown in TensorBoard.
        precision: common.precision name; mixed_float16 adds dynamic loss scaling (the
            graph rewrite itself is an option of the session: nets.precision.session_config).

    Returns:
        TrainGraph.
    """
    if seed is not None:
        tf.compat.v1.set_random_seed(seed)
    with tf.compat.v1.device(deploy_config.variables_device()):
        global_step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.device(deploy_config.inputs_device()):
        dataset = inputs.train_dataset(
            dataset_info, preprocess_fn, network.anchors(), network.params.prior_scaling,
            batch_size, match_threshold=match_threshold, num_readers=num_readers,
            num_preprocessing_threads=num_preprocessing_threads, seed=seed,
            num_shards=deploy_config.num_replicas, shard_index=deploy_config.replica_id,
            autotune=not deploy_config.num_ps_tasks)
        iterator = tf.compat.v1.data.make_one_shot_iterator(dataset)

    def clone_fn():
        with tf.compat.v1.device(deploy_config.inputs_device()):
            batch = iterator.get_next()
        logits, locs, _ = network.net(batch[fields.IMAGE], is_training=True,
                                      weight_decay=weight_decay)
        parts = losses_lib.ssd_losses(logits, locs, batch[fields.TARGET_LABELS],
                                      batch[fields.TARGET_LOCS], negative_ratio=negative_ratio,
                                      loss_alpha=loss_alpha)
        return {'losses': parts, 'batch': batch}

    clones = model_deploy.create_clones(deploy_config, clone_fn)
    model_variables = slim.get_model_variables(network.name)
    with tf.compat.v1.device(deploy_config.optimizer_device()):
        learning_rate = optimization.learning_rate_schedule(global_step, **learning_rate_kwargs)
        optimizer = optimization.make_optimizer(learning_rate=learning_rate, **optimizer_kwargs)
        optimizer, loss_scale = nets_precision.loss_scale_optimizer(optimizer, precision)
    ema = None
    if moving_average_decay:
        ema = tf.compat.v1.train.ExponentialMovingAverage(moving_average_decay, global_step)
    train_step = model_deploy.build_train_op(
        deploy_config, clones, optimizer, global_step,
        var_list=checkpoints.trainable_variables(trainable_scopes), variable_averages=ema,
        variables_to_average=model_variables, loss_scale=loss_scale)
    train_op = train_step.train_op

    log_tensors = _loss_summaries(clones, train_step.total_loss, learning_rate,
                                  train_step.gradient_norm)
    first_batch = clones[0].outputs['batch']
    _image_summary(first_batch[fields.IMAGE], first_batch[fields.BOXES],
                   network.params.normalization, num_summary_images)
    init_fn = None
    if fine_tune_kwargs and fine_tune_kwargs.get('checkpoint_path'):
        kwargs = dict(fine_tune_kwargs)
        path = checkpoints.resolve_checkpoint(kwargs.pop('checkpoint_path'))
        restore_map = checkpoints.variables_to_restore(model_variables, path, network.name,
                                                     **kwargs)
        init_fn = checkpoints.make_init_fn(restore_map, path)
    return TrainGraph(train_op, global_step, log_tensors, init_fn,
                      batch_size * deploy_config.num_clones,
                      list(train_step.hooks) + nets_precision.loss_scale_hooks(loss_scale),
                      tuple(dataset_info.files))


def _loss_summaries(clones, total_loss, learning_rate, grad_norm):
    """Scalar summaries; returns the tensors of the progress log line."""
    log_tensors = {'total': total_loss, 'learning_rate': learning_rate}
    for key in clones[0].outputs['losses']:
        if key == 'total':
            continue
        log_tensors[key] = tf.add_n([c.outputs['losses'][key] for c in clones]) / len(clones)
    regularization = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
    if regularization:
        log_tensors['regularization'] = tf.add_n(regularization)
    for name, tensor in log_tensors.items():
        tag = name if name == 'learning_rate' else 'losses/' + name
        tf.compat.v1.summary.scalar(tag, tensor)
    tf.compat.v1.summary.scalar('gradient_norm', grad_norm)
    return log_tensors


def train(train_graph, train_dir, max_number_of_steps=None, log_every_n_steps=10,
          save_interval_secs=600, save_interval_steps=None, save_summaries_secs=60,
          max_checkpoints_to_keep=5, session_config=None, master='', max_train_secs=None,
          save_summaries_steps=None, is_chief=True, wait_for=(),
          wait_secs=cluster.DEFAULT_WAIT_SECS, cluster_images_per_step=None,
          operation_timeout_secs=None, peers=()):
    """Runs the training loop; resumes from the newest checkpoint in `train_dir` that loads
    (checkpoint_state.newest_loadable: the broken ones skipped and logged).

    In a cluster (`master` = this replica's server target), only the chief (`is_chief`)
    initialises or restores, and writes checkpoints and summaries; the others wait for it.
    Each session (re)creation first waits up to `wait_secs` for the `wait_for` tasks
    (cluster.Task list: the ps tasks). The progress line shows the global step and this
    replica's images/s, and the cluster's with `cluster_images_per_step` (images per
    global step). With `operation_timeout_secs`, each step, session creation and closing is
    bounded: a step that TensorFlow times out stops training with the `peers` (cluster.Task
    list: the other tasks) that do not answer named, and a call that TensorFlow cannot time
    out ends the process with the same message (watchdog.Watchdog).

    Stops at `max_number_of_steps` or after `max_train_secs` of training (if given).
    Checkpoints are written every `save_interval_secs` (or `save_interval_steps`) and
    at the end. Scalar summaries are written every `save_summaries_steps` (default
    train_hooks.summary_steps: about 100 points per curve), image summaries every
    `save_summaries_secs`. A NaN/Inf loss or gradient stops training before that
    step's update; no checkpoint is written then, so the newest one in train_dir is
    the last good one.

    The `checkpoint` file lists the checkpoints relative to `train_dir`, so a copy of the
    dir resumes from its own files.

    Returns:
        the final global step.

    Raises:
        TrainingDivergedError: NaN or Inf.
        checkpoint_state.CheckpointError: checkpoints are listed but none loads, or they lie
            outside `train_dir`.
        record_check.CorruptRecordError: a bad record in one of the input files (the message
            names the file and the byte offset).
        cluster.HostUnreachableError: a cluster operation timed out (the message names the
            tasks that do not answer).
    """
    progress = train_hooks.ProgressLogHook(train_graph.log_tensors, train_graph.global_step,
                                           log_every_n_steps, train_graph.images_per_step,
                                           max_number_of_steps, distributed=bool(master),
                                           cluster_images_per_step=cluster_images_per_step)
    hooks = [progress] + list(train_graph.hooks)
    chief_hooks = train_hooks.summary_hooks(
        train_dir, save_summaries_steps or train_hooks.summary_steps(max_number_of_steps),
        save_summaries_secs) if is_chief else []
    if max_train_secs:
        hooks.append(train_hooks.StopAfterSecondsHook(max_train_secs))
    if max_number_of_steps:
        hooks.append(servers.StopAtGlobalStepHook(max_number_of_steps) if master else
                     tf.compat.v1.train.StopAtStepHook(last_step=max_number_of_steps))
    scaffold = tf.compat.v1.train.Scaffold(
        init_fn=train_graph.init_fn,
        saver=tf.compat.v1.train.Saver(max_to_keep=max_checkpoints_to_keep,
                                       save_relative_paths=True))
    watchdog = None
    if master and operation_timeout_secs:
        watchdog = watchdog_lib.Watchdog(peers)
    try:
        with watchdog or contextlib.nullcontext(), servers.monitored_session(
                master=master, is_chief=is_chief, checkpoint_dir=train_dir, scaffold=scaffold,
                hooks=hooks, chief_only_hooks=chief_hooks,
                save_checkpoint_secs=None if save_interval_steps else save_interval_secs,
                save_checkpoint_steps=save_interval_steps, config=session_config,
                wait_for=wait_for, wait_secs=wait_secs,
                choose_checkpoint=checkpoint_state.newest_loadable, watchdog=watchdog,
                operation_timeout_secs=operation_timeout_secs) as session:
            try:
                while not session.should_stop():
                    with watchdog_lib.bounded(watchdog, 'A training step', operation_timeout_secs):
                        session.run(train_graph.train_op)
            finally:
                if watchdog is not None:  # bounds the close when the block ends
                    watchdog.begin('Closing the session', operation_timeout_secs)
    except tf.errors.DeadlineExceededError as error:
        if watchdog is None:
            raise
        raise cluster.HostUnreachableError(
            'Training stopped at step %d: a cluster operation took longer than %g s '
            '(--operation_timeout_secs): %s. The last checkpoint is %s' % (
                progress.step, operation_timeout_secs,
                watchdog_lib.describe_unresponsive(peers) or 'every other task answers (%s)'
                % error.message.strip().split('\n', 1)[0],
                tf.train.latest_checkpoint(train_dir))) from None
    except tf.errors.DataLossError as error:
        line = record_check.describe_data_loss(error.message, train_graph.input_files)
        if line is None:
            raise
        raise record_check.CorruptRecordError(
            'Training stopped at step %d: %s' % (progress.step, line)) from None
    except tf.errors.InvalidArgumentError as error:
        if model_deploy.NAN_MESSAGE not in error.message:
            raise
        reason = next(line for line in error.message.splitlines()
                      if model_deploy.NAN_MESSAGE in line)
        raise TrainingDivergedError(
            'Training stopped at step %d: %s. No update of that step was applied or saved; '
            'the last good checkpoint is %s' % (progress.step, reason.strip(),
                                                tf.train.latest_checkpoint(train_dir))) from None
    logging.info('Training finished at step %d; checkpoints in %s', progress.step, train_dir)
    return progress.step
