"""Synchronous replicas on in-process servers: one step of 2 workers with batch b each changes
the variables as one worker with batch 2b does; asynchronous workers each apply their own."""
import time

import numpy as np
import pytest
import tensorflow as tf

from deployment import cluster, model_deploy, servers
from nets import checkpoints
from tests import helpers

RNG = np.random.RandomState(1)
X = RNG.randn(8, 3).astype(np.float32)
Y = RNG.randn(8, 2).astype(np.float32)
W0 = RNG.randn(3, 2).astype(np.float32)
B0 = RNG.randn(2).astype(np.float32)
LEARNING_RATE = 0.1


@pytest.fixture(scope='module')
def module_servers():
    """One ps and two workers of a cluster, in this process (they live until it exits)."""
    jobs = {'worker': ['127.0.0.1:%d' % helpers.free_port() for _ in range(2)],
            'ps': ['127.0.0.1:%d' % helpers.free_port()]}
    tasks = {(job, i): cluster.Cluster(jobs, job, i)
             for job in jobs for i in range(len(jobs[job]))}
    started = {key: servers.start_server(task, servers.server_config(2))
               for key, task in tasks.items()}
    return tasks, started


@pytest.fixture
def local_servers(module_servers):
    """The servers with empty resource containers (no variables or queues of another test)."""
    tf.compat.v1.Session.reset(module_servers[1][('worker', 0)].target)
    return module_servers


def _model_fn(batches):
    """Linear model, mean squared error (a mean over the batch, as the equivalence needs),
    on the next (x, y) of `batches` (one per clone)."""
    x, y = batches.pop(0)
    w = tf.compat.v1.get_variable('w', initializer=W0)
    b = tf.compat.v1.get_variable('b', initializer=B0)
    tf.compat.v1.losses.mean_squared_error(tf.constant(y), tf.matmul(tf.constant(x), w) + b)


def _build(config, x, y):
    """One step of the model on (x, y), split evenly over the clones of `config`."""
    with tf.compat.v1.device(config.variables_device()):
        global_step = tf.compat.v1.train.get_or_create_global_step()
    batches = list(zip(np.split(x, config.num_clones), np.split(y, config.num_clones)))
    clones = model_deploy.create_clones(config, _model_fn, [batches])
    with tf.compat.v1.device(config.optimizer_device()):
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(LEARNING_RATE)
    return global_step, model_deploy.build_train_op(config, clones, optimizer, global_step)


def _one_machine_step(x, y):
    """Variables after one step on one machine with the whole batch."""
    with tf.Graph().as_default():
        global_step, step = _build(model_deploy.DeploymentConfig(clone_on_cpu=True), x, y)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(step.train_op)
            return session.run([v for _, v in step.grads_and_vars])


def _replica_sessions(local_servers, halves, sync, num_clones=1):
    """A MonitoredSession per worker (chief first), each with its graph and half batch."""
    tasks, started = local_servers
    sessions = []
    for replica, (x, y) in enumerate(halves):
        task = tasks[('worker', replica)]
        graph = tf.Graph()
        with graph.as_default():
            config = model_deploy.DeploymentConfig(
                num_clones=num_clones, clone_on_cpu=True, num_replicas=2, num_ps_tasks=1,
                replica_id=replica, sync_replicas=sync)
            global_step, step = _build(config, x, y)
            session = servers.monitored_session(
                master=started[('worker', replica)].target, is_chief=task.is_chief,
                hooks=step.hooks, config=servers.session_config(task), wait_secs=60,
                wait_for=task.tasks([cluster.PS]))
        sessions.append((graph, session, global_step, step))
    return sessions


def _wait_for_step(session, global_step, step, timeout=60.0):
    deadline = time.monotonic() + timeout
    while session.run(global_step) < step:
        assert time.monotonic() < deadline, 'global step stuck below %d' % step
        time.sleep(0.05)


@pytest.mark.parametrize('num_clones', [1, 2])
def test_sync_step_of_two_workers_equals_one_worker_with_both_batches(local_servers,
                                                                      num_clones):
    halves = [(X[:4], Y[:4]), (X[4:], Y[4:])]
    expected = _one_machine_step(X, Y)
    sessions = _replica_sessions(local_servers, halves, sync=True, num_clones=num_clones)
    try:
        for _, session, _, step in sessions:
            session.run(step.train_op)
        graph, chief, global_step, step = sessions[0]
        with graph.as_default():
            _wait_for_step(chief, global_step, 1)
            after = chief.run([v for _, v in step.grads_and_vars])
            assert chief.run(global_step) == 1
    finally:
        for graph, session, _, _ in reversed(sessions):
            with graph.as_default():
                session.close()
    for got, want in zip(after, expected):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Not the update of either half alone.
    assert not np.allclose(after[0], _one_machine_step(*halves[0])[0], atol=1e-4)


def test_async_workers_each_apply_their_own_update(local_servers):
    halves = [(X[:4], Y[:4]), (X[4:], Y[4:])]
    sessions = _replica_sessions(local_servers, halves, sync=False)
    try:
        for _, session, _, step in sessions:
            session.run(step.train_op)
        graph, chief, global_step, step = sessions[0]
        with graph.as_default():
            after = chief.run([v for _, v in step.grads_and_vars])
            assert chief.run(global_step) == 2
    finally:
        for graph, session, _, _ in reversed(sessions):
            with graph.as_default():
                session.close()
    # Worker 0's update, then worker 1's from there: w -= lr * grad(half batch).
    w, b = W0.copy(), B0.copy()
    for x, y in halves:
        err = x @ w + b - y
        w, b = (w - LEARNING_RATE * 2 * x.T @ err / err.size,
                b - LEARNING_RATE * 2 * err.sum(0) / err.size)
    np.testing.assert_allclose(after[0], w, atol=1e-5)
    np.testing.assert_allclose(after[1], b, atol=1e-5)


def test_the_chief_restores_the_checkpoint_path_and_the_worker_trains_from_it(local_servers,
                                                                             tmp_path):
    """With an empty train_dir the chief initialises and restores --checkpoint_path (the
    scaffold's init_fn); the worker waits for it and reads the restored values."""
    with tf.Graph().as_default():
        pretrained = tf.compat.v1.get_variable('w', initializer=W0 + 1.0)
        with tf.compat.v1.Session() as session:
            session.run(pretrained.initializer)
            path = tf.compat.v1.train.Saver([pretrained]).save(
                session, str(tmp_path / 'pretrained' / 'model.ckpt'))
    tasks, started = local_servers
    values = []
    for replica in range(2):
        task = tasks[('worker', replica)]
        with tf.Graph().as_default():
            _build(model_deploy.DeploymentConfig(clone_on_cpu=True, num_replicas=2,
                                                 num_ps_tasks=1, replica_id=replica), X, Y)
            [w] = [v for v in tf.compat.v1.global_variables() if v.op.name == 'w']
            scaffold = tf.compat.v1.train.Scaffold(
                init_fn=checkpoints.make_init_fn({'w': w}, path))
            with servers.monitored_session(
                    master=started[('worker', replica)].target, is_chief=task.is_chief,
                    checkpoint_dir=str(tmp_path / 'train'), scaffold=scaffold,
                    config=servers.session_config(task), wait_secs=60,
                    wait_for=task.tasks([cluster.PS])) as session:
                values.append(session.run(w))
    for value in values:
        np.testing.assert_allclose(value, W0 + 1.0)


def test_clones_of_a_worker_share_one_read_of_each_variable():
    with tf.Graph().as_default() as graph:
        config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True, num_replicas=2,
                                               num_ps_tasks=1, replica_id=1)
        _build(config, X, Y)
        matmuls = [op for op in graph.get_operations() if op.type == 'MatMul'
                   and 'gradients' not in op.name]
    assert [op.device for op in matmuls] == ['/job:worker/task:1/device:CPU:0',
                                             '/job:worker/task:1/device:CPU:1']
    # Both clones read w through the same tensor, placed on the worker's CPU (one transfer).
    reads = {op.inputs[1].name for op in matmuls}
    assert len(reads) == 1
    assert graph.get_tensor_by_name(reads.pop()).device == '/job:worker/task:1/device:CPU:0'


@pytest.mark.parametrize('num_clones', [1, 2])
def test_a_worker_reads_each_variable_once_per_step(num_clones):
    """The forward pass, the weight decay and the gradients of every clone share one transfer
    of w, and the weight decay runs on the worker, once."""
    def model_fn():
        w = tf.compat.v1.get_variable('w', initializer=W0,
                                      regularizer=lambda t: 0.01 * tf.nn.l2_loss(t))
        tf.compat.v1.losses.mean_squared_error(tf.constant(Y), tf.matmul(tf.constant(X), w))

    with tf.Graph().as_default() as graph:
        config = model_deploy.DeploymentConfig(num_clones=num_clones, clone_on_cpu=True,
                                               num_replicas=2, num_ps_tasks=1, replica_id=1)
        with tf.compat.v1.device(config.variables_device()):
            global_step = tf.compat.v1.train.get_or_create_global_step()
        clones = model_deploy.create_clones(config, model_fn)
        model_deploy.build_train_op(config, clones,
                                    tf.compat.v1.train.GradientDescentOptimizer(0.1), global_step)
        [w] = [v for v in tf.compat.v1.global_variables() if v.op.name == 'w']
        reads = [op for op in graph.get_operations()
                 if op.type == 'ReadVariableOp' and op.inputs[0].op is w.op]
        to_worker = [op for op in reads if any(consumer.device.startswith('/job:worker/')
                                               for consumer in op.outputs[0].consumers())]
        weight_decay = tf.compat.v1.get_collection(
            tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
        l2_losses = [op for op in graph.get_operations() if op.type == 'L2Loss'
                     and 'Regularizer' in op.name]
    assert len(to_worker) == 1
    assert w.device == '/job:ps/task:0/device:CPU:0'
    assert len(weight_decay) == len(l2_losses) == 1
    assert l2_losses[0].device == '/job:worker/task:1/device:CPU:0'


def _ancestors(op):
    todo, seen = [op], set()
    while todo:
        op = todo.pop()
        if op.name not in seen:
            seen.add(op.name)
            todo.extend([t.op for t in op.inputs] + list(op.control_inputs))
    return seen


def test_the_chiefs_aggregated_update_runs_no_forward_pass():
    """The chief's queue runner applies the accumulated gradients; it must not compute (and
    send the parameters for) a forward and backward pass of its own each update."""
    with tf.Graph().as_default() as graph:
        config = model_deploy.DeploymentConfig(clone_on_cpu=True, num_replicas=2,
                                               num_ps_tasks=1, sync_replicas=True)
        _, step = _build(config, X, Y)
        [hook] = step.hooks
        hook.begin()
        [update] = hook._queue_runner.enqueue_ops
        hook._optimizer.ready_for_local_init_op.mark_used()  # built, not run here
        needed = {graph.get_operation_by_name(name).type for name in _ancestors(update)}
        worker_step = {graph.get_operation_by_name(name).type
                       for name in _ancestors(step.train_op.op)}
    assert 'MatMul' in worker_step and 'CheckNumerics' in worker_step
    assert 'MatMul' not in needed and 'CheckNumerics' not in needed
    assert 'ResourceApplyGradientDescent' in needed


@pytest.mark.parametrize('step_after_run, stops', [(13, False), (14, True), (15, True)])
def test_a_replica_stops_on_the_global_step_read_after_its_run(step_after_run, stops):
    """The step fetched during a run (12) lags behind the other replicas' updates; the
    replica stops on the step after the run, not one step later (where a synchronous step
    would wait for gradients no replica sends)."""
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        hook = servers.StopAtGlobalStepHook(14)
        hook.begin()
        with tf.compat.v1.Session() as session:
            session.run(global_step.assign(step_after_run))
            context = tf.compat.v1.train.SessionRunContext(None, session)
            hook.after_run(context, tf.compat.v1.train.SessionRunValues(12, None, None))
    assert context.stop_requested == stops
