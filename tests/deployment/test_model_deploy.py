"""Tests for deployment/model_deploy.py on several CPU devices."""
import numpy as np
import pytest
import tensorflow as tf

from deployment import model_deploy

RNG = np.random.RandomState(0)
X = RNG.randn(8, 3).astype(np.float32)
Y = RNG.randn(8, 2).astype(np.float32)
W0 = RNG.randn(3, 2).astype(np.float32)
B0 = RNG.randn(2).astype(np.float32)


def _session(graph, num_cpus=2):
    config = tf.compat.v1.ConfigProto(device_count={'CPU': num_cpus}, allow_soft_placement=False)
    return tf.compat.v1.Session(graph=graph, config=config)


def _model_fn(batches):
    """Tiny linear model without batch norm; takes the next (x, y) from `batches`."""
    x, y = batches.pop(0)
    w = tf.compat.v1.get_variable('w', initializer=W0,
                                  regularizer=lambda t: 0.01 * tf.nn.l2_loss(t))
    b = tf.compat.v1.get_variable('b', initializer=B0)
    pred = tf.matmul(tf.constant(x), w, name='matmul') + b
    tf.compat.v1.losses.mean_squared_error(tf.constant(y), pred)
    return pred


def _deploy(config, batches, learning_rate):
    """The toy model's clones and one SGD step of all of them, as train_lib builds them."""
    with tf.compat.v1.device(config.variables_device()):
        global_step = tf.compat.v1.train.get_or_create_global_step()
    clones = model_deploy.create_clones(config, _model_fn, [batches])
    with tf.compat.v1.device(config.optimizer_device()):
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
    return clones, model_deploy.build_train_op(config, clones, optimizer, global_step)


def _gradients(num_clones):
    """Summed gradients, their norm and the weights after one SGD step with `num_clones`."""
    graph = tf.Graph()
    with graph.as_default():
        config = model_deploy.DeploymentConfig(num_clones=num_clones, clone_on_cpu=True)
        halves = np.split(np.arange(8), num_clones)
        batches = [(X[i], Y[i]) for i in halves]
        _, model = _deploy(config, batches, 0.5)
        with _session(graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            grads = sess.run([g for g, _ in model.grads_and_vars])
            loss, norm = sess.run([model.total_loss, model.gradient_norm])
            sess.run(model.train_op)
            weights = sess.run([v for _, v in model.grads_and_vars])
            step = sess.run(tf.compat.v1.train.get_global_step())
    assert norm == pytest.approx(np.sqrt(sum(np.sum(g ** 2) for g in grads)), rel=1e-5)
    return grads, loss, weights, step


def test_two_clones_sum_to_one_clone_on_whole_batch():
    grads1, loss1, weights1, step1 = _gradients(1)
    grads2, loss2, weights2, step2 = _gradients(2)
    assert len(grads1) == len(grads2) == 2
    for g1, g2 in zip(grads1, grads2):
        np.testing.assert_allclose(g1, g2, atol=1e-5)
    np.testing.assert_allclose(loss1, loss2, atol=1e-5)
    for w1, w2 in zip(weights1, weights2):
        np.testing.assert_allclose(w1, w2, atol=1e-5)
    assert step1 == step2 == 1


def test_gradient_matches_hand_computed_value():
    grads, loss, _, _ = _gradients(2)
    err = X @ W0 + B0 - Y
    np.testing.assert_allclose(grads[0], 2 * X.T @ err / err.size + 0.01 * W0, atol=1e-5)
    np.testing.assert_allclose(grads[1], 2 * err.sum(0) / err.size, atol=1e-5)
    np.testing.assert_allclose(loss, np.mean(err ** 2) + 0.005 * np.sum(W0 ** 2), atol=1e-5)


def test_placement_follows_config():
    graph = tf.Graph()
    with graph.as_default():
        config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
        batches = [(X[:4], Y[:4]), (X[4:], Y[4:])]
        clones, model = _deploy(config, batches, 0.1)
        assert [c.scope for c in clones] == ['clone_0/', 'clone_1/']
        assert [c.device for c in clones] == ['/device:CPU:0', '/device:CPU:1']
        for var in tf.compat.v1.global_variables():
            assert var.device == '/device:CPU:0', var.name
        matmuls = {op.name: op.device for op in graph.get_operations() if op.type == 'MatMul'
                   and 'gradients' not in op.name}
        assert matmuls == {'clone_0/matmul': '/device:CPU:0', 'clone_1/matmul': '/device:CPU:1'}
        with _session(graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
            metadata = tf.compat.v1.RunMetadata()
            sess.run(model.train_op, options=options, run_metadata=metadata)
    ran_on = {}
    for dev in metadata.step_stats.dev_stats:
        for node in dev.node_stats:
            ran_on.setdefault(node.node_name, set()).add(dev.device.split('/')[-1].lower())
    for index in (0, 1):
        # Variable reads run beside the variable (CPU:0); everything else on the clone.
        nodes = [name for name in ran_on if name.startswith('clone_%d/' % index)
                 and not name.endswith('ReadVariableOp')]
        assert any('/gradients/' in name for name in nodes)
        assert set().union(*(ran_on[name] for name in nodes)) == {'device:cpu:%d' % index}
    assert ran_on['GradientDescent/update_w/ResourceApplyGradientDescent'] == {'device:cpu:0'}


def test_single_clone_on_cpu_is_the_plain_model():
    graph = tf.Graph()
    with graph.as_default():
        config = model_deploy.DeploymentConfig(num_clones=1, clone_on_cpu=True)
        clones, model = _deploy(config, [(X, Y)], 0.1)
        assert clones[0].scope == ''
        assert clones[0].device == '/device:CPU:0'
        assert graph.get_operation_by_name('matmul').device == '/device:CPU:0'
        with _session(graph, num_cpus=1) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            loss = sess.run(model.total_loss)
    err = X @ W0 + B0 - Y
    np.testing.assert_allclose(loss, np.mean(err ** 2) + 0.005 * np.sum(W0 ** 2), atol=1e-5)


def test_single_gpu_clone_falls_back_with_soft_placement():
    graph = tf.Graph()
    with graph.as_default():
        config = model_deploy.DeploymentConfig(num_clones=1)
        assert config.clone_device(0) == '/device:GPU:0'
        _, model = _deploy(config, [(X, Y)], 0.1)
        session_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        with tf.compat.v1.Session(graph=graph, config=session_config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            loss = sess.run(model.train_op)
    assert np.isfinite(loss)


def test_parameter_servers_round_robin():
    graph = tf.Graph()
    with graph.as_default():
        config = model_deploy.DeploymentConfig(num_clones=2, num_ps_tasks=2, num_replicas=2,
                                               replica_id=1)
        assert config.clone_device(1) == '/job:worker/task:1/device:GPU:1'
        assert config.inputs_device() == '/job:worker/task:1/device:CPU:0'
        with tf.compat.v1.device(config.variables_device()):
            a = tf.compat.v1.get_variable('a', [1])
            b = tf.compat.v1.get_variable('b', [1])
            c = tf.compat.v1.get_variable('c', [1])
    assert [v.device for v in (a, b, c)] == ['/job:ps/task:0/device:CPU:0',
                                             '/job:ps/task:1/device:CPU:0',
                                             '/job:ps/task:0/device:CPU:0']


@pytest.mark.parametrize('kwargs, message', [
    ({'num_clones': 0}, 'num_clones'),
    ({'num_replicas': 2}, 'num_ps_tasks'),
    ({'replica_id': 1}, 'replica_id'),
    ({'num_ps_tasks': -1}, 'num_ps_tasks'),
])
def test_invalid_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        model_deploy.DeploymentConfig(**kwargs)


def test_byte_size_strategy_puts_each_variable_on_the_least_loaded_ps_task():
    graph = tf.Graph()
    with graph.as_default():
        config = model_deploy.DeploymentConfig(num_ps_tasks=2, num_replicas=2,
                                               ps_strategy='size')
        with tf.compat.v1.device(config.variables_device()):
            sizes = [1000, 10, 10, 600, 300, 50]
            names = ['v%d' % i for i in range(len(sizes))]
            variables = [tf.compat.v1.get_variable(n, [s]) for n, s in zip(names, sizes)]
        with tf.compat.v1.device(config.variables_device()):
            late = tf.compat.v1.get_variable('late', [5], dtype=tf.float64)
    # Greedy by bytes (float32): 4000 B -> ps0; then ps1 stays lighter: 40, 80, 2480, 3680,
    # 3880 B, and 'late' (5 float64, 40 B) -> 3920 B. Round-robin would alternate 0, 1, 0, ...
    tasks = [int(v.device.split('task:')[1][0]) for v in variables + [late]]
    assert tasks == [0, 1, 1, 1, 1, 1, 1]
    assert all(v.device.endswith('/device:CPU:0') for v in variables)


def test_round_robin_strategy_keeps_the_task_of_an_op_asked_twice():
    strategy = model_deploy.RoundRobinPsStrategy(3)
    ops = [type('Op', (), {'name': n})() for n in 'abcd']
    assert [strategy(op) for op in ops] == [0, 1, 2, 0]
    assert strategy(ops[1]) == 1


def test_replica_of_a_chief_job_and_sync_options():
    config = model_deploy.DeploymentConfig(num_replicas=3, num_ps_tasks=1, replica_id=2,
                                           worker_job_name='worker', worker_task=1,
                                           sync_replicas=True)
    assert config.clone_device(0) == '/job:worker/task:1/device:GPU:0'
    assert (config.is_chief, config.replicas_to_aggregate) == (False, 3)
    chief = model_deploy.DeploymentConfig(num_replicas=3, num_ps_tasks=1, replica_id=0,
                                          worker_job_name='chief', sync_replicas=True,
                                          replicas_to_aggregate=2)
    assert chief.optimizer_device() == '/job:chief/task:0/device:CPU:0'
    assert (chief.is_chief, chief.replicas_to_aggregate) == (True, 2)


@pytest.mark.parametrize('kwargs, message', [
    ({'sync_replicas': True}, 'sync_replicas needs num_ps_tasks'),
    ({'num_ps_tasks': 1, 'replicas_to_aggregate': 0}, 'replicas_to_aggregate must be >= 1'),
    ({'num_ps_tasks': 1, 'ps_strategy': 'random'}, 'ps_strategy must be one of'),
])
def test_invalid_cluster_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        model_deploy.DeploymentConfig(**kwargs)
