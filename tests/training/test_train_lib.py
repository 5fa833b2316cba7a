"""Tests for training/train_lib.py, optimization.py and train_hooks.py."""
import glob
import logging
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deployment import model_deploy
from nets import checkpoint_state
from training import optimization, train_hooks, train_lib


def _toy_train_graph(lr=0.1):
    """loss = w^2 * sqrt(2.5 - step): finite for steps 0..2, NaN from step 3 on."""
    config = model_deploy.DeploymentConfig(num_clones=1, clone_on_cpu=True)
    global_step = tf.compat.v1.train.get_or_create_global_step()

    def model_fn():
        w = tf.compat.v1.get_variable('w', initializer=1.0)
        factor = tf.sqrt(2.5 - tf.cast(global_step, tf.float32))
        tf.compat.v1.losses.add_loss(w * w * factor)

    clones = model_deploy.create_clones(config, model_fn)
    model = model_deploy.build_train_op(
        config, clones, tf.compat.v1.train.GradientDescentOptimizer(lr), global_step)
    log_tensors = {'total': model.total_loss, 'learning_rate': tf.constant(lr)}
    tf.compat.v1.summary.scalar('losses/total', model.total_loss)
    tf.compat.v1.summary.image('picture', tf.zeros([1, 4, 4, 3]),
                               collections=[train_hooks.IMAGE_SUMMARIES])
    return train_lib.TrainGraph(model.train_op, global_step, log_tensors, None, 1)


def test_nan_loss_stops_with_last_good_checkpoint(tmp_path):
    train_dir = str(tmp_path)
    with tf.Graph().as_default():
        graph = _toy_train_graph()
        with pytest.raises(train_lib.TrainingDivergedError, match='NaN or Inf') as error:
            train_lib.train(graph, train_dir, max_number_of_steps=10, save_interval_steps=1,
                            save_summaries_secs=1000)
    assert 'model.ckpt-3' in str(error.value)
    assert tf.train.latest_checkpoint(train_dir).endswith('model.ckpt-3')
    # w_{k+1} = w_k - lr * 2 w_k sqrt(2.5 - k), steps 0, 1, 2 applied; step 3 not.
    w = 1.0
    for k in range(3):
        w -= 0.1 * 2 * w * np.sqrt(2.5 - k)
    reader = tf.train.load_checkpoint(train_dir)
    assert reader.get_tensor('w') == pytest.approx(w, rel=1e-5)
    assert reader.get_tensor('global_step') == 3


def test_train_stops_at_max_steps_and_resumes(tmp_path):
    train_dir = str(tmp_path)
    for last in (1, 2):
        with tf.Graph().as_default():
            assert train_lib.train(_toy_train_graph(), train_dir, max_number_of_steps=last,
                                   save_summaries_secs=1000) == last
    assert tf.train.latest_checkpoint(train_dir).endswith('model.ckpt-2')


def _train_toy(train_dir, last_step):
    with tf.Graph().as_default():
        return train_lib.train(_toy_train_graph(), train_dir, max_number_of_steps=last_step,
                               save_interval_steps=1, save_summaries_secs=1000)


def test_a_copied_train_dir_resumes_from_its_own_checkpoints(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    original, copy = str(tmp_path / 'a'), str(tmp_path / 'b')
    _train_toy(original, 1)
    assert 'model_checkpoint_path: "model.ckpt-1"' in open(os.path.join(original,
                                                                        'checkpoint')).read()
    shutil.copytree(original, copy)
    before = sorted(os.listdir(original))
    caplog.clear()
    assert _train_toy(copy, 2) == 2
    assert 'Restoring parameters from %s' % os.path.join(copy, 'model.ckpt-1') in caplog.text
    assert sorted(os.listdir(original)) == before
    assert tf.train.latest_checkpoint(copy) == os.path.join(copy, 'model.ckpt-2')


def test_a_train_dir_naming_another_dirs_checkpoints_is_refused(tmp_path):
    original, copy = str(tmp_path / 'a'), str(tmp_path / 'b')
    _train_toy(original, 1)
    shutil.copytree(original, copy)
    with open(os.path.join(copy, 'checkpoint'), 'w') as f:  # as an absolute-path Saver writes
        f.write('model_checkpoint_path: "%s"\n' % os.path.join(original, 'model.ckpt-1'))
    with pytest.raises(checkpoint_state.CheckpointError, match='outside the train dir %s'
                       % re.escape(copy)):
        _train_toy(copy, 2)
    assert not glob.glob(os.path.join(original, 'model.ckpt-2*'))


@pytest.mark.parametrize('damage', ['truncate', 'delete'])
def test_resume_skips_a_broken_latest_checkpoint_and_loses_none(tmp_path, caplog, damage):
    caplog.set_level(logging.INFO)
    train_dir = str(tmp_path)
    _train_toy(train_dir, 2)
    broken = os.path.join(train_dir, 'model.ckpt-2')
    data = broken + '.data-00000-of-00001'
    if damage == 'truncate':
        os.truncate(data, 3)
    else:
        os.remove(data)
    caplog.clear()
    assert _train_toy(train_dir, 2) == 2
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith('Skipping')]
    assert len(skipped) == 1 and skipped[0].startswith(
        'Skipping checkpoint %s: model.ckpt-2.data-00000-of-00001' % broken)
    assert 'Restoring parameters from %s' % os.path.join(train_dir, 'model.ckpt-1') \
        in caplog.text
    state = tf.train.get_checkpoint_state(train_dir)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        'model.ckpt-0', 'model.ckpt-1', 'model.ckpt-2']
    for prefix in state.all_model_checkpoint_paths:
        assert checkpoint_state.load_problem(prefix) is None


def _summary_steps(train_dir):
    """tag -> sorted steps of the summaries in train_dir's event files."""
    steps = {}
    for path in glob.glob(os.path.join(train_dir, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return {tag: sorted(found) for tag, found in steps.items()}


def test_scalars_every_n_steps_images_on_their_own_period(tmp_path):
    with tf.Graph().as_default():
        graph = _toy_train_graph(lr=0.01)
        train_lib.train(graph, str(tmp_path), max_number_of_steps=2, save_summaries_steps=1,
                        save_summaries_secs=1000)
    steps = _summary_steps(str(tmp_path))
    assert steps['losses/total'] == [1, 2]
    pictures = [found for tag, found in steps.items() if tag.startswith('picture')]
    assert pictures == [[1]]        # the first step, then not again within 1000 s


def test_default_summary_period_draws_a_curve():
    assert train_hooks.summary_steps(600) == 6       # the demo: 100 points
    assert train_hooks.summary_steps(1400) == 14
    assert train_hooks.summary_steps(50) == 1
    assert train_hooks.summary_steps(None) == train_hooks.SUMMARY_POINTS


def _rates(steps, **kwargs):
    with tf.Graph().as_default():
        step = tf.compat.v1.placeholder(tf.int64, [])
        rate = optimization.learning_rate_schedule(step, **kwargs)
        with tf.compat.v1.Session() as session:
            return [float(session.run(rate, {step: s})) for s in steps]


def test_learning_rate_schedules():
    np.testing.assert_allclose(_rates([0, 50], learning_rate=0.1), [0.1, 0.1])
    np.testing.assert_allclose(
        _rates([0, 9, 10, 25], decay_type='exponential', learning_rate=1.0, decay_steps=10,
               decay_factor=0.5), [1.0, 1.0, 0.5, 0.25])
    np.testing.assert_allclose(
        _rates([0, 5, 10, 20], decay_type='polynomial', learning_rate=1.0, decay_steps=10,
               end_learning_rate=0.0), [1.0, 0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        _rates([0, 99, 100, 250], decay_type='piecewise', boundaries=[99, 200],
               values=[1.0, 0.1, 0.01]), [1.0, 1.0, 0.1, 0.01])
    np.testing.assert_allclose(
        _rates([0, 5, 10], decay_type='cosine', learning_rate=1.0, decay_steps=10),
        [1.0, 0.5, 0.0], atol=1e-6)
    # Linear warmup over 4 steps, then the schedule counted from the end of the warmup.
    np.testing.assert_allclose(
        _rates([0, 1, 3, 4, 9], decay_type='polynomial', learning_rate=1.0, decay_steps=10,
               warmup_steps=4), [0.25, 0.5, 1.0, 1.0, 0.5], atol=1e-6)


@pytest.mark.parametrize('name, cls', [
    ('sgd', tf.compat.v1.train.GradientDescentOptimizer),
    ('momentum', tf.compat.v1.train.MomentumOptimizer),
    ('adam', tf.compat.v1.train.AdamOptimizer),
    ('rmsprop', tf.compat.v1.train.RMSPropOptimizer),
])
def test_make_optimizer(name, cls):
    assert isinstance(optimization.make_optimizer(name, 0.1), cls)


def test_progress_line():
    line = train_hooks.format_progress(
        50, 150, {'total': 3.5, 'cls_pos': 1.0, 'loc': 2.5, 'learning_rate': 0.001}, 12.5, 2.0)
    assert line == ('step 50/150: loss 3.5000 (cls_pos 1.0000 loc 2.5000), lr 0.001, '
                    '12.50 images/s, ETA 0:03:20')


def test_progress_line_of_a_cluster_replica():
    line = train_hooks.format_progress(
        50, None, {'total': 3.5, 'learning_rate': 0.001}, 4.0, 2.0, cluster_images_per_sec=8.0)
    assert line == 'step 50: loss 3.5000 (), lr 0.001, 4.00 images/s (cluster 8.00 images/s)'


def test_the_eta_comes_from_the_rate_after_the_first_step(caplog):
    caplog.set_level(logging.INFO)
    clock = [0.0]
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        advance = tf.compat.v1.assign_add(global_step, 1)
        tensors = {'total': tf.constant(1.0), 'learning_rate': tf.constant(0.1)}
        hook = train_hooks.ProgressLogHook(tensors, global_step, 1, 8, last_step=10,
                                           clock=lambda: clock[0])
        with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as session:
            # The first step builds the kernels (100 s); the next ones take 1 s, then 3 s.
            for seconds in (100.0, 1.0, 1.0, 3.0):
                clock[0] += seconds
                session.run(advance)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith('step ')]
    assert [line.split(':')[0] for line in lines] == ['step 1/10', 'step 2/10', 'step 3/10',
                                                      'step 4/10']
    assert 'ETA' not in lines[0] and '0.08 images/s' in lines[0]
    assert lines[1].endswith('8.00 images/s, ETA 0:00:08')   # 8 steps left at 1 s
    assert lines[2].endswith('ETA 0:00:07')
    assert lines[3].endswith('2.67 images/s, ETA 0:00:10')  # 6 steps at (1 + 1 + 3) / 3 s


def test_replica_progress_shows_the_global_step_and_the_cluster_speed(caplog):
    caplog.set_level(logging.INFO)
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        # Each run of this replica comes with one of another replica: the step moves by 2.
        advance = tf.compat.v1.assign_add(global_step, 2)
        tensors = {'total': tf.constant(1.0), 'learning_rate': tf.constant(0.1)}
        hook = train_hooks.ProgressLogHook(tensors, global_step, 1, 8, last_step=100,
                                           distributed=True, cluster_images_per_step=16)
        with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as session:
            for _ in range(3):
                session.run(advance)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith('step ')]
    assert [line.split(':')[0] for line in lines] == ['step 2/100', 'step 4/100', 'step 6/100']
    own, cluster_speed = re.search(r'([\d.]+) images/s \(cluster ([\d.]+) images/s\)',
                                   lines[-1]).groups()
    # 2 global steps x 16 images against 1 run x 8 images in the same time.
    assert float(cluster_speed) == pytest.approx(4 * float(own), rel=0.02)



@pytest.fixture(scope='module')
def tiny_records(tmp_path_factory):
    from tests import helpers
    return helpers.make_shapes_records(str(tmp_path_factory.mktemp('shapes')), 4, 1, seed=3,
                                       min_side=100, max_side=160)


def _tiny_network(num_classes):
    """A 64x64 SSD with one 8x8 feature layer: conv + batch norm, depthwise + batch norm."""
    import functools

    import tf_slim as slim

    from nets import nets_factory, ssd_mobilenet_v2
    from nets.ssd_net import SSDNet

    def feature_fn(inputs, is_training):
        net = slim.conv2d(inputs, 16, [3, 3], stride=4, scope='conv1')
        net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=2,
                                    scope='conv2')
        return {'conv2': net}, {}

    params = nets_factory.get_network('ssd_300_mobilenet_v2').params._replace(
        img_shape=(64, 64), num_classes=num_classes, feat_layers=('conv2',),
        feat_shapes=((8, 8),), anchor_sizes=((16.0, 32.0),), anchor_ratios=((2.0, 0.5),),
        anchor_steps=(8,))
    network = SSDNet('tiny_ssd', params, feature_fn,
                     functools.partial(ssd_mobilenet_v2.mobilenet_arg_scope), True)
    return network, params


@pytest.mark.slow
@pytest.mark.parametrize('precision', ['mixed_bfloat16', 'mixed_float16'])
def test_mixed_precision_training_steps(tiny_records, precision):
    """bfloat16: the rewrite converts the backward convolutions too; float16 (its rewrite needs
    a GPU, so float32 here): the loss-scale optimizer, its hook and variables are in place."""
    import functools

    from common import precision as precision_lib
    from datasets import dataset_factory
    from nets import precision as nets_precision
    from preprocessing import ssd_preprocessing
    if precision == 'mixed_bfloat16':
        try:
            precision_lib.check(precision, 0)
        except ValueError as error:
            pytest.skip(str(error))
    with tf.Graph().as_default():
        dataset = dataset_factory.get_dataset('shapes', 'trainval', tiny_records)
        network, params = _tiny_network(dataset.num_classes)
        preprocess = functools.partial(ssd_preprocessing.preprocess_for_train,
                                       out_hw=params.img_shape, normalization=params.normalization)
        graph = train_lib.build_train_graph(
            network, dataset, preprocess, model_deploy.DeploymentConfig(clone_on_cpu=True), 2,
            {'learning_rate': 0.001}, {'name': 'momentum'}, seed=1, precision=precision)
        scales = [v for v in tf.compat.v1.global_variables() if 'loss_scale' in v.op.name]
        hooks = [type(hook).__name__ for hook in graph.hooks]
        with tf.compat.v1.Session(config=nets_precision.session_config(precision)) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            losses = [session.run(graph.train_op) for _ in range(2)]
            _, graphs = nets_precision.run_graphs(session, graph.train_op)
            step, values = session.run([graph.global_step, scales])
    counts = nets_precision.dtype_op_counts(graphs)
    assert np.all(np.isfinite(losses)) and step == 3
    if precision == 'mixed_bfloat16':
        low = counts['bfloat16']
        for op in ('Conv2D', 'Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter',
                   'FusedBatchNormGradV3'):
            assert [name for name in low if name.endswith(op)], (op, low)
        assert counts['float32']['SparseSoftmaxCrossEntropyWithLogits'] == 1
        assert not scales and not hooks
    else:
        assert 'float16' not in counts
        assert hooks == ['LossScaleLogHook'] and 2.0 ** 15 in values
