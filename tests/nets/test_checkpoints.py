"""Tests for nets/checkpoints.py: restoring a slim vgg_16 checkpoint into ssd_300_vgg."""
import numpy as np
import pytest
import tensorflow as tf

from datasets import dataset_factory
from deployment import model_deploy
from nets import checkpoints, nets_factory
from preprocessing import preprocessing_factory
from tests import helpers
from training import train_lib

# vgg_16 variables the test writes (slim names); the fc8 one is not in the SSD model.
VGG_SHAPES = {
    'vgg_16/conv1/conv1_1/weights': [3, 3, 3, 64],
    'vgg_16/conv1/conv1_1/biases': [64],
    'vgg_16/conv1/conv1_2/weights': [3, 3, 64, 64],
    'vgg_16/conv2/conv2_1/weights': [3, 3, 64, 128],
    'vgg_16/conv2/conv2_1/biases': [128],
    'vgg_16/fc8/biases': [1000],
}


def _write_vgg_checkpoint(path):
    rng = np.random.RandomState(0)
    values = {name: rng.normal(0, 0.05, shape).astype(np.float32)
              for name, shape in VGG_SHAPES.items()}
    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=value)
                     for name, value in values.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, path, write_meta_graph=False)
    return values


def test_variables_to_restore_remaps_excludes_and_checks(tmp_path):
    path = str(tmp_path / 'vgg_16.ckpt')
    _write_vgg_checkpoint(path)
    with tf.Graph().as_default():
        with tf.compat.v1.variable_scope('ssd_300_vgg'):
            a = tf.compat.v1.get_variable('conv1/conv1_1/weights', [3, 3, 3, 64])
            b = tf.compat.v1.get_variable('conv1/conv1_2/weights', [3, 3, 64, 64])
            c = tf.compat.v1.get_variable('conv3/conv3_1/weights', [3, 3, 128, 256])
            d = tf.compat.v1.get_variable('conv2/conv2_1/biases', [7])
        restore = checkpoints.variables_to_restore(
            [a, b], path, 'ssd_300_vgg', 'vgg_16', exclude_scopes='ssd_300_vgg/conv1/conv1_2')
        assert restore == {'vgg_16/conv1/conv1_1/weights': a}
        with pytest.raises(ValueError, match='conv3_1/weights.*not in the checkpoint'):
            checkpoints.variables_to_restore([a, c], path, 'ssd_300_vgg', 'vgg_16')
        with pytest.raises(ValueError, match='shape'):
            checkpoints.variables_to_restore([d], path, 'ssd_300_vgg', 'vgg_16')
        restore = checkpoints.variables_to_restore([a, c, d], path, 'ssd_300_vgg', 'vgg_16',
                                                 ignore_missing_vars=True)
        assert list(restore) == ['vgg_16/conv1/conv1_1/weights']
        with pytest.raises(ValueError, match='No variable'):
            checkpoints.variables_to_restore([c], path, 'ssd_300_vgg', 'vgg_16',
                                           ignore_missing_vars=True)
    with pytest.raises(ValueError, match='does not exist'):
        checkpoints.resolve_checkpoint(str(tmp_path / 'missing.ckpt'))


@pytest.mark.slow
def test_fine_tune_ssd_300_vgg_from_vgg_16(tmp_path):
    ckpt = str(tmp_path / 'vgg_16.ckpt')
    values = _write_vgg_checkpoint(ckpt)
    records = helpers.make_shapes_records(str(tmp_path / 'data'), 2, 0, seed=5,
                                              min_side=80, max_side=120)
    train_dir = str(tmp_path / 'train')
    with tf.Graph().as_default():
        dataset = dataset_factory.get_dataset('shapes', 'trainval', records)
        network = nets_factory.get_network('ssd_300_vgg', dataset.num_classes)
        graph = train_lib.build_train_graph(
            network, dataset, preprocessing_factory.get_preprocessing('ssd_300_vgg', True),
            model_deploy.DeploymentConfig(clone_on_cpu=True), 1, {'learning_rate': 0.01},
            {'name': 'sgd'}, weight_decay=0.0,
            fine_tune_kwargs={'checkpoint_path': ckpt, 'checkpoint_model_scope': 'vgg_16',
                              'exclude_scopes': ['ssd_300_vgg/conv1/conv1_2'],
                              'ignore_missing_vars': True},
            trainable_scopes=['ssd_300_vgg/conv1/conv1_2', 'ssd_300_vgg/conv2'], seed=1)
        train_lib.train(graph, train_dir, max_number_of_steps=1, save_summaries_secs=1000)
    start = tf.train.load_checkpoint(train_dir + '/model.ckpt-0')   # right after restoring
    end = tf.train.load_checkpoint(train_dir + '/model.ckpt-1')     # after one step
    def model(name):
        return name.replace('vgg_16/', 'ssd_300_vgg/')

    for name in ('vgg_16/conv1/conv1_1/weights', 'vgg_16/conv1/conv1_1/biases',
                 'vgg_16/conv2/conv2_1/weights', 'vgg_16/conv2/conv2_1/biases'):
        np.testing.assert_array_equal(start.get_tensor(model(name)), values[name])
    # Excluded: freshly initialised.
    excluded = start.get_tensor('ssd_300_vgg/conv1/conv1_2/weights')
    assert not np.allclose(excluded, values['vgg_16/conv1/conv1_2/weights'])
    # Not trainable: unchanged by the step (restored and fresh ones); trainable: changed.
    for name in ('ssd_300_vgg/conv1/conv1_1/weights', 'ssd_300_vgg/conv3/conv3_1/weights',
                 'ssd_300_vgg/conv4_3_box/cls/weights'):
        np.testing.assert_array_equal(start.get_tensor(name), end.get_tensor(name))
    for name in ('ssd_300_vgg/conv2/conv2_1/weights', 'ssd_300_vgg/conv1/conv1_2/weights'):
        assert not np.array_equal(start.get_tensor(name), end.get_tensor(name))


def test_resolve_checkpoint_forms(tmp_path):
    """A directory, a V2 prefix and a V1 single-file checkpoint (slim's vgg_16.ckpt) resolve."""
    with tf.Graph().as_default():
        tf.compat.v1.get_variable('v', initializer=1.0)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            v2 = tf.compat.v1.train.Saver().save(session, str(tmp_path / 'v2' / 'model.ckpt'),
                                                 global_step=3)
            v1 = str(tmp_path / 'v1.ckpt')
            tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1).save(
                session, v1, write_meta_graph=False)
    assert checkpoints.resolve_checkpoint(str(tmp_path / 'v2')) == v2
    assert checkpoints.resolve_checkpoint(v2) == v2
    assert checkpoints.resolve_checkpoint(v1) == v1
    (tmp_path / 'junk.ckpt').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='not a readable checkpoint'):
        checkpoints.resolve_checkpoint(str(tmp_path / 'junk.ckpt'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no checkpoint in this directory'):
        checkpoints.resolve_checkpoint(str(tmp_path / 'empty'))
