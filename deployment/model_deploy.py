"""Deploy a model as clones on several devices (TF-slim style).

A `DeploymentConfig` says where things live:

* variables: the CPU of the worker, or the parameter-server tasks of a cluster (round-robin,
  or balanced by size: `ps_strategy`);
* the input pipeline and the optimizer: the CPU of the worker;
* clone `i`: `/device:GPU:i`, or `/device:CPU:i` with `clone_on_cpu` (one clone per
  CPU device; a session with `ConfigProto(device_count={'CPU': n})` has n of them).

`create_clones` builds the model once per clone (variables shared), `optimize_clones`
computes each clone's loss and gradients on the clone's device and sums the
gradients of all clones; each clone's loss is divided by the number of clones so the
sum equals the gradient of the mean loss over the whole batch, and regularisation
losses are added once. `build_train_op` applies the summed gradients in one op; with
several replicas, each applies its own (asynchronous) or a SyncReplicasOptimizer averages
the replicas' gradients into one update per global step (`sync_replicas`).

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

TrainStep = collections.namedtuple(
    'TrainStep', ['train_op', 'total_loss', 'grads_and_vars', 'gradient_norm', 'hooks'])
"""The ops of one step of all clones (`build_train_op`), and the session hooks they need
(SyncReplicasOptimizer's token queue and chief queue runner; empty otherwise)."""

NAN_MESSAGE = 'NaN or Inf'
"""In the InvalidArgumentError of a non-finite loss or gradient (with check_numerics)."""

_VARIABLE_OPS = frozenset(['Variable', 'VariableV2', 'VarHandleOp', 'AutoReloadVariable'])


class DeploymentConfig:
    """Where variables, inputs, optimizer and clones are placed, and how replicas update.

    Args:
        num_clones: model copies per replica (one per GPU, or per CPU device).
        clone_on_cpu: put the clones on CPU devices instead of GPUs.
        replica_id: index of this worker (replica) in a multi-worker job; replica 0 is the
            chief.
        num_replicas: number of workers.
        num_ps_tasks: number of parameter-server tasks (0: variables stay on the worker).
        worker_job_name: job name of this replica ('worker', or 'chief').
        ps_job_name: job name of the parameter servers.
        worker_task: this replica's task index in its job (default: replica_id).
        ps_strategy: how variables are spread over the ps tasks: 'round_robin' (in
            creation order) or 'size' (each to the least loaded task in bytes).
        sync_replicas: aggregate the gradients of the replicas before each update
            (SyncReplicasOptimizer); else each replica updates on its own (asynchronous).
        replicas_to_aggregate: gradients per synchronous update (default num_replicas).
    """

    def __init__(self, num_clones=1, clone_on_cpu=False, replica_id=0, num_replicas=1,
                 num_ps_tasks=0, worker_job_name='worker', ps_job_name='ps', worker_task=None,
                 ps_strategy='round_robin', sync_replicas=False, replicas_to_aggregate=None):
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
        if ps_strategy not in PS_STRATEGIES:
            raise ValueError('ps_strategy must be one of %s, got %r'
                             % (', '.join(PS_STRATEGIES), ps_strategy))
        if sync_replicas and num_ps_tasks < 1:
            raise ValueError('sync_replicas needs num_ps_tasks >= 1')
        if replicas_to_aggregate is not None and replicas_to_aggregate < 1:
            raise ValueError('replicas_to_aggregate must be >= 1, got %d'
                             % replicas_to_aggregate)
        self.num_clones = num_clones
        self.clone_on_cpu = clone_on_cpu
        self.replica_id = replica_id
        self.num_replicas = num_replicas
        self.num_ps_tasks = num_ps_tasks
        self.sync_replicas = sync_replicas
        self.replicas_to_aggregate = replicas_to_aggregate or num_replicas
        task = replica_id if worker_task is None else worker_task
        self._worker = '/job:%s/task:%d' % (worker_job_name, task) if num_ps_tasks else ''
        self._variables_device = '/device:CPU:0'
        if num_ps_tasks:
            self._variables_device = tf.compat.v1.train.replica_device_setter(
                ps_tasks=num_ps_tasks, ps_device='/job:%s/device:CPU:0' % ps_job_name,
                worker_device=self._worker + '/device:CPU:0',
                ps_strategy=PS_STRATEGIES[ps_strategy](num_ps_tasks))

    @property
    def is_chief(self):
        """Replica 0 initialises, restores and saves."""
        return self.replica_id == 0

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
        """Device or device function for variables: the worker's CPU, or the ps tasks
        (tf.compat.v1.train.replica_device_setter with the ps strategy; one placement state
        for the whole graph, so every call continues the same spreading)."""
        return self._variables_device


def _variable_bytes(op):
    """Bytes of the variable a VariableV2 / VarHandleOp op creates (0 if its shape is unknown)."""
    attrs = op.node_def.attr
    shape = tf.TensorShape(attrs['shape'].shape)
    elements = shape.num_elements() if shape.is_fully_defined() else 0
    return elements * tf.as_dtype(attrs['dtype'].type).size


class RoundRobinPsStrategy:
    """ps_strategy of replica_device_setter: the variables go to the ps tasks in turn.

    An op asked about twice keeps its task.
    """

    def __init__(self, num_tasks):
        self._num_tasks = num_tasks
        self._tasks = {}

    def __call__(self, op):
        if op.name not in self._tasks:
            self._tasks[op.name] = len(self._tasks) % self._num_tasks
        return self._tasks[op.name]


class ByteSizePsStrategy:
    """ps_strategy of replica_device_setter: each variable goes to the ps task holding the
    fewest bytes so far (greedy balancing by size, the rule of TF 1.x's
    tf.contrib.training.GreedyLoadBalancingStrategy with byte_size_load_fn, which TF 2
    no longer has).

    Attributes:
        loads: bytes placed on each task.
    """

    def __init__(self, num_tasks):
        self.loads = [0] * num_tasks
        self._tasks = {}

    def __call__(self, op):
        if op.name not in self._tasks:
            task = min(range(len(self.loads)), key=lambda i: (self.loads[i], i))
            self.loads[task] += _variable_bytes(op)
            self._tasks[op.name] = task
        return self._tasks[op.name]


PS_STRATEGIES = {'round_robin': RoundRobinPsStrategy, 'size': ByteSizePsStrategy}
"""--ps_strategy name -> strategy class (called with the number of ps tasks)."""


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


class _RegularizerOnWorker:
    """custom_getter running a new variable's `regularizer` on the worker's cached copy.

    get_variable builds the regularizer colocated with the variable, i.e. on its ps task: it
    would read the worker's cached copy, so the weights would travel back to the ps every
    step. Here it runs where the copy is, once per variable (when created), and its loss
    goes to REGULARIZATION_LOSSES as get_variable's would.
    """

    def __call__(self, getter, name, *args, **kwargs):
        regularizer = kwargs.pop('regularizer', None)
        existing = {id(v) for v in tf.compat.v1.global_variables()}
        variable = getter(name, *args, **kwargs)
        if regularizer is not None and id(variable) not in existing:
            with tf.compat.v1.name_scope(name + '/Regularizer/'):
                loss = regularizer(variable)
            if loss is not None:
                tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES,
                                               loss)
        return variable


def create_clones(config, model_fn, args=None, kwargs=None):
    """Calls `model_fn(*args, **kwargs)` once per clone, sharing variables.

    Each call runs under the clone's name scope and device; variables created inside
    go to `config.variables_device()`. Losses model_fn adds to the LOSSES collection
    are later found by the clone's scope.

    With variables on ps tasks, each variable is read once per step into the worker's CPU
    (`caching_device`) and every use on the worker takes that copy. Each read of a remote
    variable is its own transfer, and TensorFlow sends a tensor once to each device that
    consumes it: without the cache the forward pass, the weight decay and its gradient each
    pull the weights (2 to 3 transfers per step), and clones on k GPUs k times that.

    Returns:
        list of `Clone`.
    """
    args = args or []
    kwargs = kwargs or {}
    caching_device = custom_getter = None
    if config.num_ps_tasks:
        caching_device = config.inputs_device()
        custom_getter = _RegularizerOnWorker()
    clones = []
    for i in range(config.num_clones):
        device = config.clone_device(i)
        with _name_scope(config.clone_scope(i)) as scope:
            with tf.compat.v1.device(_clone_device_fn(config.variables_device(), device)):
                with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(),
                                                 reuse=True if i > 0 else None,
                                                 caching_device=caching_device,
                                                 custom_getter=custom_getter):
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


class SyncReplicasHook(tf.compat.v1.train.SessionRunHook):
    """Runs a SyncReplicasOptimizer: the steps of TensorFlow's own hook
    (`make_session_run_hook`), except that the chief's queue runner ends quietly when the
    session closes.

    After each session (re)creation: every replica sets its local step to the global step;
    the chief also sets the accumulators' step, puts the first tokens in the token queue and
    starts the queue runner that applies each aggregated update. At the end of a run that
    runner is blocked waiting for gradients no replica will send; closing the session
    cancels it, which TensorFlow's hook reports as an error in its thread.

    Args:
        sync_optimizer: a SyncReplicasOptimizer whose apply_gradients was built.
        is_chief: this replica is the chief.
    """

    def __init__(self, sync_optimizer, is_chief):
        self._optimizer = sync_optimizer
        self._is_chief = is_chief
        self._local_init_op = None
        self._init_tokens_op = None
        self._queue_runner = None

    def begin(self):
        optimizer = self._optimizer
        if not self._is_chief:
            self._local_init_op = optimizer.local_step_init_op
            return
        self._local_init_op = optimizer.chief_init_op
        self._init_tokens_op = optimizer.get_init_tokens_op()
        runner = optimizer.get_chief_queue_runner()
        self._queue_runner = tf.compat.v1.train.QueueRunner(
            runner.queue, runner.enqueue_ops,
            queue_closed_exception_types=(tf.errors.OutOfRangeError, tf.errors.CancelledError))

    def after_create_session(self, session, coord):
        uninitialized = session.run(self._optimizer.ready_for_local_init_op)
        if len(uninitialized):
            raise RuntimeError('SyncReplicasOptimizer: variables not initialised: %s'
                               % ', '.join(name.decode() for name in uninitialized))
        session.run(self._local_init_op)
        if self._init_tokens_op is not None:
            session.run(self._init_tokens_op)
        if self._queue_runner is not None:
            self._queue_runner.create_threads(session, coord=coord, daemon=True, start=True)


def _sync_optimizer(config, optimizer, variable_averages, variables_to_average):
    """`optimizer` wrapped to aggregate `config.replicas_to_aggregate` replicas' gradients."""
    return tf.compat.v1.train.SyncReplicasOptimizer(
        optimizer, replicas_to_aggregate=config.replicas_to_aggregate,
        total_num_replicas=config.num_replicas, variable_averages=variable_averages,
        variables_to_average=variables_to_average)


def _checked_gradient_norm(gradient_norm, loss_scale=None):
    """`gradient_norm`, failing ('NaN or Inf') when it is not finite, with loss scaling only
    at loss scale 1 (above, the loss-scale optimizer skips the step and lowers the scale)."""
    message = 'Gradient norm is ' + NAN_MESSAGE
    if loss_scale is None:
        return tf.debugging.check_numerics(gradient_norm, message)
    finite = tf.logical_or(tf.math.is_finite(gradient_norm), loss_scale > 1.0)
    with tf.control_dependencies([tf.debugging.Assert(finite, [message + ' at loss scale 1'])]):
        return tf.identity(gradient_norm)


def _after(op, grads_and_vars):
    """The gradients, each passed on only after `op` has run (on the gradient's device)."""
    gated = []
    for grad, var in grads_and_vars:
        with grad.op.graph.colocate_with(grad.op), tf.control_dependencies([op]):
            if isinstance(grad, tf.IndexedSlices):
                grad = tf.IndexedSlices(tf.identity(grad.values), grad.indices, grad.dense_shape)
            else:
                grad = tf.identity(grad)
        gated.append((grad, var))
    return gated


def build_train_op(config, clones, optimizer, global_step, var_list=None, update_ops=None,
                   check_numerics=True, variable_averages=None, variables_to_average=None,
                   loss_scale=None):
    """One training step of all clones: their summed gradients applied once.

    With `config.sync_replicas`, the optimizer is wrapped in a SyncReplicasOptimizer: each
    replica's summed gradient goes to accumulators on the ps tasks, and one update with
    their mean is applied once `config.replicas_to_aggregate` replicas have sent theirs
    (gradients of an older step are dropped); the step's hooks must run in the session.

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
        variable_averages: a tf.compat.v1.train.ExponentialMovingAverage applied to
            `variables_to_average` after each update (once per synchronous update), or None.
        variables_to_average: list of variables.
        loss_scale: the loss scale (scalar tensor) when `optimizer` does dynamic loss
            scaling and skips the steps whose gradients overflow; a non-finite gradient norm
            then stops training only at loss scale 1, where no scaling caused it.

    Returns:
        `TrainStep`; its train_op's value is the total loss.
    """
    if config.sync_replicas:
        optimizer = _sync_optimizer(config, optimizer, variable_averages, variables_to_average)
    total_loss, grads_and_vars = optimize_clones(clones, optimizer, var_list=var_list,
                                                 check_numerics=check_numerics)
    gradient_norm = tf.linalg.global_norm([g for g, _ in grads_and_vars])
    if check_numerics:
        gradient_norm = _checked_gradient_norm(gradient_norm, loss_scale)
    if update_ops is None:
        update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                                                 clones[0].scope or None)
    hooks = []
    with tf.compat.v1.device(config.optimizer_device()):
        # The gradients, not the update op, wait for the check: a SyncReplicasOptimizer builds
        # the chief's aggregated update inside apply_gradients, and a control dependency there
        # would make its queue runner run a forward and backward pass of its own every update.
        grads_and_vars = _after(gradient_norm, grads_and_vars)
        apply_op = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
        with tf.control_dependencies([apply_op] + list(update_ops)):
            train_op = tf.identity(total_loss, name='train_op')
        if config.sync_replicas:
            hooks.append(SyncReplicasHook(optimizer, config.is_chief))
        elif variable_averages is not None:
            # The averages follow the step's update (weights and batch-norm statistics).
            with tf.control_dependencies([train_op]):
                average_op = variable_averages.apply(variables_to_average)
            with tf.control_dependencies([average_op]):
                train_op = tf.identity(total_loss, name='train_op_with_averages')
    return TrainStep(train_op, total_loss, grads_and_vars, gradient_norm, hooks)
