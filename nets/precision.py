"""The TensorFlow side of --precision (names and machine checks: common/precision.py).

- `session_config`: the ConfigProto turning on TensorFlow's mixed precision graph rewrite; the
  graph itself stays float32, so training, evaluation and export build the same graph for
  every precision and checkpoints do not depend on it.
- `check_machine`: refuses a precision this machine cannot run, logs the warnings.
- `keep_float32_in_training`: sets the rewrite's list variables that keep a network's
  bfloat16_training_float32_ops in float32 (training in mixed_bfloat16).
- `loss_scale_optimizer`: dynamic loss scaling for mixed_float16 training (TensorFlow's
  graph-mode MixedPrecisionLossScaleOptimizer): a step whose gradients overflow is skipped
  and the scale halved; it doubles after `increment_period` good steps.
- `dtype_op_counts`, `compare_saved_model`: what the rewrite did, from the partition graphs
  of a session run, and how much it changed a SavedModel's outputs.
"""
import collections
import logging
import os

import tensorflow as tf
from google.protobuf import text_format

from common import devices
from common import precision as precision_lib


def session_config(precision, config=None):
    """A copy of `config` with the graph rewrite of `precision` turned on.

    Args:
      precision: one of common.precision.PRECISIONS.
      config: tf.compat.v1.ConfigProto or None.

    Returns:
      tf.compat.v1.ConfigProto.
    """
    result = tf.compat.v1.ConfigProto()
    if config is not None:
        result.CopyFrom(config)
    text_format.Merge(precision_lib.session_config_text(precision), result)
    return result


def check_machine(precision):
    """Checks that this machine can run `precision` (see common.precision.check).

    Returns:
      the warnings, also logged.

    Raises:
      ValueError: the precision cannot run here; the message says why.
    """
    num_gpus = (len(tf.config.list_physical_devices('GPU'))
                if precision != precision_lib.FLOAT32 and devices.gpus_visible() else 0)
    warnings = precision_lib.check(precision, num_gpus)
    for warning in warnings:
        logging.warning('%s', warning)
    return warnings


def keep_float32_in_training(network, precision, environ=None):
    """Keeps `network.bfloat16_training_float32_ops` in float32 when training in `precision`.

    Sets the variables of common.precision.keep_float32_environment in `environ` (default
    os.environ), where TensorFlow reads them when it rewrites the graph, and logs them. Call it
    before the first session runs.

    Returns:
      dict of the variables set (empty when none).
    """
    environ = os.environ if environ is None else environ
    variables = precision_lib.keep_float32_environment(
        precision, network.bfloat16_training_float32_ops, environ)
    for name, value in sorted(variables.items()):
        environ[name] = value
        logging.info('%s: %s=%s (slower in bfloat16 than in float32 when training %s)',
                     precision, name, value, network.name)
    return variables


class _LossScaleOptimizer(tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer):
    """MixedPrecisionLossScaleOptimizer whose skipped steps still advance the global step.

    TensorFlow's leaves the global step unchanged on a skipped step; here every step run counts,
    so the learning-rate schedule, the progress log, --max_number_of_steps and
    SyncReplicasOptimizer's step tokens see one step per run.
    """

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        apply_op = super().apply_gradients(grads_and_vars, name=name)
        if global_step is None:
            return apply_op
        with tf.control_dependencies([apply_op]):
            return tf.compat.v1.assign_add(global_step, 1).op


def loss_scale_optimizer(optimizer, precision, initial_loss_scale=2 ** 15,
                         increment_period=2000):
    """Wraps `optimizer` in dynamic loss scaling when `precision` is mixed_float16.

    float16 gradients below 2**-24 flush to zero; the loss is multiplied by the loss scale
    before differentiation and the gradients divided by it after. bfloat16 has float32's
    exponent range and needs no scaling.

    Args:
      optimizer: a tf.compat.v1 optimizer.
      precision: one of common.precision.PRECISIONS.
      initial_loss_scale: first scale (TensorFlow's default 2**15).
      increment_period: good steps after which the scale doubles.

    Returns:
      (optimizer, loss scale float32 scalar tensor or None); the scale is also a scalar
      summary.
    """
    if precision != precision_lib.MIXED_FLOAT16:
        return optimizer, None
    loss_scale = tf.compat.v1.mixed_precision.DynamicLossScale(
        initial_loss_scale=initial_loss_scale, increment_period=increment_period)
    wrapped = _LossScaleOptimizer(optimizer, loss_scale)
    value = tf.identity(loss_scale(), name='loss_scale')
    tf.compat.v1.summary.scalar('loss_scale', value)
    return wrapped, value


class LossScaleLogHook(tf.compat.v1.train.SessionRunHook):
    """Logs each change of the loss scale: a lower scale means a step was skipped."""

    def __init__(self, loss_scale):
        self._loss_scale = loss_scale
        self._last = None
        self._runs = 0

    def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs(self._loss_scale)

    def after_run(self, run_context, run_values):
        value = float(run_values.results)
        self._runs += 1
        if self._last is not None and value < self._last:
            logging.info('Run %d: float16 gradients overflowed at loss scale %g, that update was '
                         'skipped; loss scale now %g', self._runs - 1, self._last, value)
        elif self._last is not None and value > self._last:
            logging.info('Loss scale raised to %g', value)
        self._last = value


def loss_scale_hooks(loss_scale):
    """[LossScaleLogHook] for the loss scale tensor of loss_scale_optimizer, [] for None."""
    return [] if loss_scale is None else [LossScaleLogHook(loss_scale)]


def dtype_op_counts(partition_graphs):
    """Ops per dtype attribute `T` of the graphs a session actually ran.

    Args:
      partition_graphs: RunMetadata.partition_graphs of a run with
        RunOptions(output_partition_graphs=True) (after Grappler's rewrites).

    Returns:
      dict dtype name (e.g. 'bfloat16') -> collections.Counter {op type: count}.
    """
    counts = collections.defaultdict(collections.Counter)
    for graph in partition_graphs:
        for node in graph.node:
            if 'T' in node.attr and node.attr['T'].type:
                counts[tf.as_dtype(node.attr['T'].type).name][node.op] += 1
    return counts


def run_graphs(session, fetches, feed_dict=None):
    """session.run(fetches, feed_dict) that also returns the partition graphs it ran.

    Returns:
      (values, list of GraphDef).
    """
    metadata = tf.compat.v1.RunMetadata()
    values = session.run(fetches, feed_dict,
                         options=tf.compat.v1.RunOptions(output_partition_graphs=True),
                         run_metadata=metadata)
    return values, list(metadata.partition_graphs)


def compare_saved_model(export_dir, precision, signature_name, inputs, tags=('serve',)):
    """Runs a SavedModel signature in float32 and in `precision` on the same inputs.

    Args:
      export_dir: the SavedModel's folder.
      precision: one of common.precision.PRECISIONS.
      signature_name: key of its signature_defs.
      inputs: dict input alias -> numpy array.
      tags: MetaGraph tags to load.

    Returns:
      (dict output alias -> largest absolute difference, dtype_op_counts of the run in
      `precision`).
    """
    values = {}
    for name in (precision_lib.FLOAT32, precision):
        with tf.Graph().as_default() as graph, tf.compat.v1.Session(
                graph=graph, config=session_config(name)) as session:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), export_dir)
            signature = meta_graph.signature_def[signature_name]
            fetches = {alias: info.name for alias, info in signature.outputs.items()}
            feed = {signature.inputs[alias].name: value for alias, value in inputs.items()}
            values[name] = run_graphs(session, fetches, feed)
    reference, (mixed, graphs) = values[precision_lib.FLOAT32][0], values[precision]
    differences = {alias: float(abs(mixed[alias].astype('float64') - reference[alias]).max())
                   for alias in reference if reference[alias].dtype.kind == 'f'}
    return differences, dtype_op_counts(graphs)

