"""Tests of nets/precision.py: the rewrite in the graphs that run, loss scaling, machine checks."""
import logging
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim
from tensorflow.python.framework import op_def_registry

from common import precision as precision_lib
from deployment import model_deploy
from nets import batch_norm, nets_factory, precision

ON = tf.compat.v1.ConfigProto().graph_options.rewrite_options.ON
CONVOLUTIONS = ('Conv2D', 'DepthwiseConv2dNative')


def _bfloat16_or_skip():
    try:
        precision_lib.check('mixed_bfloat16', 0)
    except ValueError as error:
        pytest.skip('this machine cannot run bfloat16: %s' % error)


def test_session_config_keeps_the_given_options():
    base = tf.compat.v1.ConfigProto(allow_soft_placement=True, device_count={'CPU': 2})
    config = precision.session_config('mixed_bfloat16', base)
    assert config.allow_soft_placement and config.device_count['CPU'] == 2
    assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == ON
    assert not base.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16
    float16 = precision.session_config('mixed_float16')
    assert float16.graph_options.rewrite_options.auto_mixed_precision == ON
    assert precision.session_config('float32') == tf.compat.v1.ConfigProto()


def test_mixed_float16_is_refused_without_a_gpu():
    if tf.config.list_physical_devices('GPU'):
        pytest.skip('this machine has a GPU')
    with pytest.raises(ValueError, match='needs a GPU'):
        precision.check_machine('mixed_float16')
    assert precision.check_machine('float32') == []


def test_mixed_bfloat16_is_refused_or_warned_by_the_cpu(monkeypatch, caplog):
    """The scripts' check reads /proc/cpuinfo: faked here as a CPU without bfloat16."""
    if tf.config.list_physical_devices('GPU'):
        pytest.skip('this machine has a GPU')
    monkeypatch.setenv('TF_ENABLE_ONEDNN_OPTS', '1')
    monkeypatch.setattr(precision_lib, 'cpu_flags', lambda: frozenset({'avx', 'avx2', 'fma'}))
    with pytest.raises(ValueError, match='needs a CPU with bfloat16 instructions'):
        precision.check_machine('mixed_bfloat16')
    avx512 = frozenset({'avx2', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'})
    monkeypatch.setattr(precision_lib, 'cpu_flags', lambda: avx512)
    caplog.set_level('WARNING')
    (warning,) = precision.check_machine('mixed_bfloat16')
    assert 'emulates bfloat16' in warning and warning in caplog.text


def _forward(name, images):
    """Runs the serving graph of a random-weight network (batch-norm statistics randomised)
    in float32 and in mixed_bfloat16.

    Returns:
      {precision: ((logits, locs, scores, boxes), dtype_op_counts)}.
    """
    network = nets_factory.get_network(name)
    results = {}
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        inputs = tf.constant(images)
        logits, locs, _ = network.net(inputs, is_training=False)
        outputs = (logits, locs) + tuple(network.decode_outputs(logits, locs))
        statistics = [v.assign(tf.random.uniform(v.shape, 0.5, 1.5, seed=i))
                      for i, v in enumerate(tf.compat.v1.global_variables())
                      if v.op.name.endswith(('moving_variance', 'gamma'))]
        for name in ('float32', 'mixed_bfloat16'):
            with tf.compat.v1.Session(config=precision.session_config(name)) as session:
                session.run(tf.compat.v1.global_variables_initializer())
                session.run(statistics)
                values, graphs = precision.run_graphs(session, outputs)
            results[name] = values, precision.dtype_op_counts(graphs)
    return results


@pytest.mark.slow
@pytest.mark.parametrize('name', ['ssd_300_mobilenet_v2', 'ssd_300_vgg'])
def test_bfloat16_rewrite_converts_the_convolutions_only(name):
    _bfloat16_or_skip()
    images = np.random.default_rng(0).uniform(-1, 1, [1, 300, 300, 3]).astype(np.float32)
    results = _forward(name, images)
    reference, counts = results['float32']
    assert 'bfloat16' not in counts
    mixed, counts = results['mixed_bfloat16']
    low, high = counts['bfloat16'], counts['float32']
    convolutions = sum(n for op, n in low.items() if op.endswith(CONVOLUTIONS))
    assert convolutions >= 35, low
    assert not [op for op in high if op.endswith(CONVOLUTIONS)], high
    # Batch norm folded into the convolutions: nothing left to split the fusions.
    assert not [op for op in low if 'BatchNorm' in op], low
    # Softmax and the box decoding (exp) stay float32.
    assert [op for op in high if op.endswith('Softmax')] and high['Exp'] == 2, high
    for got, want, tolerance in zip(mixed, reference, (0.05, 0.05, 0.02, 0.01)):
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= tolerance * max(1.0, np.abs(want).max())


def _node_dtypes(graphs, op_suffix, attr):
    """The dtypes of attribute `attr` of the nodes whose op ends with `op_suffix` (str or
    tuple of str), as they ran."""
    return [tf.as_dtype(node.attr[attr].type).name for graph in graphs for node in graph.node
            if node.op.endswith(op_suffix) and attr in node.attr]


def test_bfloat16_training_keeps_statistics_variables_and_nms_float32():
    """A convolution with training batch norm, its update and an NMS of boxes made from it."""
    _bfloat16_or_skip()
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        images = tf.random.uniform([2, 8, 8, 3])
        with slim.arg_scope([slim.conv2d], normalizer_fn=batch_norm.batch_norm):
            features = slim.conv2d(images, 8, [3, 3], scope='conv')
        boxes = tf.sort(tf.reshape(tf.sigmoid(features), [-1, 4]), axis=1)
        keep = tf.image.non_max_suppression(boxes, tf.reduce_max(boxes, axis=1), 5)
        loss = tf.reduce_mean(tf.square(features))
        updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(updates):
            train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        variables = tf.compat.v1.global_variables()
        with tf.compat.v1.Session(config=precision.session_config('mixed_bfloat16')) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            (_, loss_value, _), graphs = precision.run_graphs(session, [train_op, loss, keep])
    assert {v.dtype.base_dtype for v in variables} == {tf.float32}
    assert np.isfinite(loss_value)
    # The batch norm (fused with the ReLU) runs on bfloat16 activations with float32
    # statistics (attribute U).
    forward = ('FusedBatchNormV3', 'FusedBatchNormEx')
    assert set(_node_dtypes(graphs, forward, 'T')) == {'bfloat16'}
    assert set(_node_dtypes(graphs, forward, 'U')) == {'float32'}
    assert set(_node_dtypes(graphs, 'FusedBatchNormGradV3', 'U')) == {'float32'}
    assert set(_node_dtypes(graphs, 'Conv2D', 'T')) == {'bfloat16'}
    # Moving averages, weight updates and NMS in float32 (the boxes, made in bfloat16 here,
    # are cast back).
    assert set(_node_dtypes(graphs, 'AssignSubVariableOp', 'dtype')) == {'float32'}
    assert set(_node_dtypes(graphs, 'ResourceApplyGradientDescent', 'T')) == {'float32'}
    assert _node_dtypes(graphs, 'NonMaxSuppressionV3', 'T') == ['float32']


def _toy_step(initial_loss_scale):
    """loss = w * w * x on one CPU clone with SGD (lr 0.1) under dynamic loss scaling."""
    config = model_deploy.DeploymentConfig(clone_on_cpu=True)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    x = tf.compat.v1.placeholder(tf.float32, [])

    def model_fn():
        w = tf.compat.v1.get_variable('w', initializer=1.0)
        tf.compat.v1.losses.add_loss(w * w * x)
        return w

    clones = model_deploy.create_clones(config, model_fn)
    optimizer, loss_scale = precision.loss_scale_optimizer(
        tf.compat.v1.train.GradientDescentOptimizer(0.1), 'mixed_float16',
        initial_loss_scale=initial_loss_scale)
    step = model_deploy.build_train_op(config, clones, optimizer, global_step,
                                       loss_scale=loss_scale)
    return types.SimpleNamespace(x=x, w=clones[0].outputs, scale=loss_scale,
                                 train_op=step.train_op, global_step=global_step)


def test_loss_scaling_skips_an_overflow_step_and_recovers():
    with tf.Graph().as_default():
        toy = _toy_step(2.0 ** 15)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())

            def step(x):
                session.run(toy.train_op, {toy.x: x})
                return session.run([toy.w, toy.scale, toy.global_step])

            # Gradient 2 w x = 2: w = 1 - 0.1 * 2.
            assert step(1.0) == pytest.approx([0.8, 2.0 ** 15, 1])
            # Scaled gradient 2 * 0.8 * 1e35 * 2**15 overflows float32: skipped, scale halved,
            # the step counted. The loss (8e34) is finite, so the NaN guard lets it pass.
            assert step(1e35) == pytest.approx([0.8, 2.0 ** 14, 2])
            assert step(1.0) == pytest.approx([0.8 - 0.16, 2.0 ** 14, 3])


def test_overflow_at_loss_scale_one_is_divergence():
    with tf.Graph().as_default():
        toy = _toy_step(1.0)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            # Loss 2e38 is finite, its gradient 4e38 is not, without any scaling.
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match='NaN or Inf at loss scale 1'):
                session.run(toy.train_op, {toy.x: 2e38})
            assert session.run([toy.w, toy.global_step]) == [1.0, 0]


def test_no_loss_scaling_for_bfloat16_and_float32():
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    for name in ('float32', 'mixed_bfloat16'):
        assert precision.loss_scale_optimizer(optimizer, name) == (optimizer, None)
    assert precision.loss_scale_hooks(None) == []


def test_loss_scale_hook_logs_skipped_steps(caplog):
    hook = precision.loss_scale_hooks(tf.constant(1.0))[0]
    caplog.set_level('INFO')
    for value in (8.0, 4.0, 4.0, 8.0):
        hook.after_run(None, tf.compat.v1.train.SessionRunValues(value, None, None))
    assert [r.getMessage() for r in caplog.records] == [
        'Run 1: float16 gradients overflowed at loss scale 8, that update was skipped; '
        'loss scale now 4', 'Loss scale raised to 8']


def test_training_mobilenet_in_bfloat16_keeps_its_slow_ops_float32(caplog):
    mobilenet = nets_factory.get_network('ssd_300_mobilenet_v2')
    assert {'DepthwiseConv2dNative', 'FusedBatchNormV3', 'Relu6'} <= set(
        mobilenet.bfloat16_training_float32_ops)
    for op_type in mobilenet.bfloat16_training_float32_ops:
        assert op_def_registry.get(op_type) is not None, op_type
    environ = {}
    with caplog.at_level(logging.INFO):
        variables = precision.keep_float32_in_training(mobilenet, 'mixed_bfloat16', environ)
    assert environ == variables and len(variables) == 3
    assert set(environ.values()) == {','.join(mobilenet.bfloat16_training_float32_ops)}
    assert 'when training ssd_300_mobilenet_v2' in caplog.text
    for name, precision_name in (('ssd_300_vgg', 'mixed_bfloat16'),
                                 ('ssd_300_mobilenet_v2', 'float32')):
        environ = {}
        network = nets_factory.get_network(name)
        assert precision.keep_float32_in_training(network, precision_name, environ) == {}
        assert environ == {}
