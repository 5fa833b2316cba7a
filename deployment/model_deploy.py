"""Deploy a model as clones on several devices (TF-slim style).

A `DeploymentConfig` says where things live:

* variables: the CPU of the worker, or round-robin over parameter-server tasks;
* the input pipeline and the optimizer: the CPU of the worker;
* clone `i`: `/device:GPU:i`, or `/device:CPU:i` with `clone_on_cpu` (one clone per
  CPU device; a session with `ConfigProto(device_count={'CPU': n})` has n of them).

`create_clones` builds the model once per clone (variables shared), `optimize_clones`
computes each clone's loss and gradients on the clone's device and sums the
gradients of all clones; each clone's loss is divided by the number of clones so the
sum equals the gradient of the mean loss over the whole batch, and regularisation
losses are added once. `build_train_op` applies the summed gradients in one op.

Typical use (training/train_lib.py)::

    config = DeploymentConfig(num_clones=2)
    with tf.compat.v1.device(config.variables_device()):
        global_step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.device(config.inputs_device()):
        batch = ...
    clones = create_clones(config, model_fn, [batch])
    with tf.compat.v1.device(config.optimizer_device()):
        optimizer = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    step = build_train_op(config, clones, optimizer, global_step)
"""
import collections
import contextlib

import tensorflow as tf

Clone = collections.namedtuple('Clone', ['outputs', 'scope', 'device'])
"""One copy of the model: `outputs` of model_fn, its name `scope` and `device`."""

TrainStep = collections.namedtuple('TrainStep',
                                   ['train_op', 'total_loss', 'grads_and_vars', 'gradient_norm'])
"""The ops of one step of all clones (`build_train_op`)."""

NAN_MESSAGE = 'NaN or Inf'
"""In the InvalidArgumentError of a non-finite loss or gradient (with check_numerics)."""

_VARIABLE_OPS = frozenset(['Variable', 'VariableV2', 'VarHandleOp', 'AutoReloadVariable'])


class DeploymentConfig:
    """Where variables, inputs, optimizer and clones are placed.

    Args:
        num_clones: model copies per replica (one per GPU, or per CPU device).
        clone_on_cpu: put the clones on CPU devices instead of GPUs.
        replica_id: index of this worker (replica) in a multi-worker job.
        num_replicas: number of workers.
        num_ps_tasks: number of parameter-server tasks (0: variables stay on the worker).
        worker_job_name: job name of the workers.
        ps_job_name: job name of the parameter servers.
    """

    def __init__(self, num_clones=1, clone_on_cpu=False, replica_id=0, num_replicas=1,
                 num_ps_tasks=0, worker_job_name='worker', ps_job_name='ps'):
        if num_clones < 1:
            raise ValueError('num_clones must be >= 1, got %d' % num_clones)
        if num_replicas < 1:
            raise ValueError('num_replicas must be >= 1, got %d' % num_replicas)
        if num_ps_tasks < 0:
            raise ValueError('num_ps_tasks must be >= 0, got %d' % num_ps_tasks)
        if num_replicas > 1 and num_ps_tasks < 1:
            raise ValueError('num_replicas > 1 needs num_ps_tasks >= 1')
        if not 0 <= replica_id < num_replicas:
            raise ValueError('replica_id must be in [0, %d), got %d' % (num_replicas, replica_id))
        self.num_clones = num_clones
        self.clone_on_cpu = clone_on_cpu
        self.replica_id = replica_id
        self.num_replicas = num_replicas
        self.num_ps_tasks = num_ps_tasks
        self._worker = '/job:%s/task:%d' % (worker_job_name, replica_id) if num_ps_tasks else ''
        self._ps_job = '/job:' + ps_job_name

    def worker_device(self):
        """Prefix of every device of this worker ('' for a single machine)."""
        return self._worker

    def clone_device(self, clone_index):
        """Device of clone `clone_index`: '/device:GPU:i' or '/device:CPU:i'."""
        if not 0 <= clone_index < self.num_clones:
            raise ValueError('clone_index must be in [0, %d), got %d'
                             % (self.num_clones, clone_index))
        kind = 'CPU' if self.clone_on_cpu else 'GPU'
        return '%s/device:%s:%d' % (self._worker, kind, clone_index)

    def clone_scope(self, clone_index):
        """Name scope of a clone: '' for a single clone, else 'clone_i'."""
        return 'clone_%d' % clone_index if self.num_clones > 1 else ''

    def optimizer_device(self):
        """Device of the optimizer's ops (the worker's CPU)."""
        return self._worker + '/device:CPU:0'

    def inputs_device(self):
        """Device of the input pipeline (the worker's CPU)."""
        return self._worker + '/device:CPU:0'

    def variables_device(self):
        """Device or device function for variables (worker CPU or round-robin ps tasks)."""
        if not self.num_ps_tasks:
            return '/device:CPU:0'
        return _RoundRobinPs(self._ps_job, self.num_ps_tasks)


class _RoundRobinPs:
    """Device function putting each new variable on the next parameter-server task."""

    def __init__(self, ps_job, num_tasks):
        self._ps_job = ps_job
        self._num_tasks = num_tasks
        self._next = 0

    def __call__(self, op):
        if op.device:
            return op.device
        if op.type not in _VARIABLE_OPS:
            return ''
        task = self._next
        self._next = (self._next + 1) % self._num_tasks
        return '%s/task:%d/device:CPU:0' % (self._ps_job, task)


def _name_scope(name):
    """Enters name scope `name` ('' or None: stays in the current scope)."""
    return tf.compat.v1.name_scope(name) if name else contextlib.nullcontext('')


def _clone_device_fn(variables_device, clone_device):
    """Device function: variables on `variables_device`, other ops on the clone.

    Ops under an inner explicit device scope (e.g. the input pipeline's
    `iterator.get_next()` on `inputs_device()`) keep that device.
    """

    def device_fn(op):
        if op.type in _VARIABLE_OPS:
            if callable(variables_device):
                return variables_device(op)
            return variables_device
        return op.device or clone_device

    return device_fn


def create_clones(config, model_fn, args=None, kwargs=None):
    """Calls `model_fn(*args, **kwargs)` once per clone, sharing variables.

    Each call runs under the clone's name scope and device; variables created inside
    go to `config.variables_device()`. Losses model_fn adds to the LOSSES collection
    are later found by the clone's scope.

    Returns:
        list of `Clone`.
    """
    args = args or []
    kwargs = kwargs or {}
    clones = []
    for i in range(config.num_clones):
        device = config.clone_device(i)
        with _name_scope(config.clone_scope(i)) as scope:
            with tf.compat.v1.device(_clone_device_fn(config.variables_device(), device)):
                with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(),
                                                 reuse=True if i > 0 else None):
                    outputs = model_fn(*args, **kwargs)
        clones.append(Clone(outputs, scope or '', device))
    return clones


def _clone_loss(clone, num_clones, regularization_losses):
    """Sum of a clone's losses (divided by num_clones) plus the given regularisation."""
    losses = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES, clone.scope or None)
    parts = []
    if losses:
        loss = tf.add_n(losses, name='clone_loss')
        if num_clones > 1:
            loss = tf.math.divide(loss, float(num_clones), name='scaled_clone_loss')
        parts.append(loss)
    if regularization_losses:
        parts.append(tf.add_n(regularization_losses, name='regularization_loss'))
    if not parts:
        return None
    return tf.add_n(parts) if len(parts) > 1 else parts[0]


def optimize_clones(clones, optimizer, regularization_losses=None, var_list=None,
                    check_numerics=True):
    """Computes each clone's loss and gradients on its device; sums the gradients.

    Args:
        clones: list of `Clone` from `create_clones`.
        optimizer: a tf.compat.v1 optimizer.
        regularization_losses: added to the first clone only; default: the
            REGULARIZATION_LOSSES collection.
        var_list: variables to differentiate (default: all trainable).
        check_numerics: fail (InvalidArgumentError 'NaN or Inf') when a clone's loss
            is not finite, before any gradient can be applied.

    Returns:
        (total_loss scalar, list of (summed gradient, variable)).
    """
    num_clones = len(clones)
    if regularization_losses is None:
        regularization_losses = tf.compat.v1.get_collection(
            tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
    clone_losses = []
    clone_grads = []
    for i, clone in enumerate(clones):
        with _name_scope(clone.scope), tf.compat.v1.device(clone.device):
            loss = _clone_loss(clone, num_clones, regularization_losses if i == 0 else None)
            if loss is None:
                continue
            if check_numerics:
                loss = tf.debugging.check_numerics(
                    loss, 'Loss of clone %d is %s' % (i, NAN_MESSAGE))
            clone_losses.append(loss)
            clone_grads.append(optimizer.compute_gradients(loss, var_list=var_list))
    if not clone_losses:
        raise ValueError('No losses found in the LOSSES or REGULARIZATION_LOSSES collections')
    total_loss = tf.add_n(clone_losses, name='total_loss')
    return total_loss, sum_clone_gradients(clone_grads)


def sum_clone_gradients(clone_grads):
    """Sums the gradients of each variable over the clones.

    Args:
        clone_grads: one list of (gradient, variable) per clone, same variable order.

    Returns:
        list of (gradient, variable); variables without any gradient are dropped.
    """
    summed = []
    for grads_and_vars in zip(*clone_grads):
        var = grads_and_vars[0][1]
        grads = [g for g, _ in grads_and_vars if g is not None]
        if not grads:
            continue
        if len(grads) == 1:
            summed.append((grads[0], var))
            continue
        with tf.compat.v1.name_scope(var.op.name + '/sum_grads'):
            if isinstance(grads[0], tf.IndexedSlices):
                grad = tf.IndexedSlices(tf.concat([g.values for g in grads], 0),
                                        tf.concat([g.indices for g in grads], 0),
                                        grads[0].dense_shape)
            else:
                grad = tf.add_n(grads)
        summed.append((grad, var))
    return summed


def build_train_op(config, clones, optimizer, global_step, var_list=None, update_ops=None,
                   check_numerics=True):
    """One training step of all clones: their summed gradients applied once.

    Args:
        config: `DeploymentConfig`.
        clones: list of `Clone` from `create_clones`.
        optimizer: tf.compat.v1 optimizer (built on `config.optimizer_device()`).
        global_step: incremented by the step.
        var_list: variables to train (default: all trainable).
        update_ops: ops to run with every step (default: the first clone's UPDATE_OPS,
            e.g. batch-norm moving averages).
        check_numerics: fail (InvalidArgumentError 'NaN or Inf') before any update when a
            clone's loss or the gradient norm is not finite.

    Returns:
        `TrainStep`; its train_op's value is the total loss.
    """
    total_loss, grads_and_vars = optimize_clones(clones, optimizer, var_list=var_list,
                                                 check_numerics=check_numerics)
    gradient_norm = tf.linalg.global_norm([g for g, _ in grads_and_vars])
    if check_numerics:
        gradient_norm = tf.debugging.check_numerics(gradient_norm,
                                                    'Gradient norm is ' + NAN_MESSAGE)
    if update_ops is None:
        update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                                                 clones[0].scope or None)
    with tf.compat.v1.device(config.optimizer_device()):
        with tf.control_dependencies([gradient_norm]):
            apply_op = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
        with tf.control_dependencies([apply_op] + list(update_ops)):
            train_op = tf.identity(total_loss, name='train_op')
    return TrainStep(train_op, total_loss, grads_and_vars, gradient_norm)
