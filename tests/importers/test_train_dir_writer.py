"""Tests of importers/train_dir_writer.py: a complete train dir or nothing at all."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim

from importers import errors, train_dir_writer
from nets import nets_factory

INFO = {'network': 'ssd_300_mobilenet_v2'}


def _values(network):
    """Random values for every variable of `network`, read off a built graph."""
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 300, 300, 3])
        with slim.arg_scope(network.arg_scope()):
            network.net(images)
        rng = np.random.default_rng(0)
        return {v.op.name[len(network.name) + 1:]: rng.standard_normal(v.shape.as_list())
                .astype(np.float32) for v in tf.compat.v1.global_variables()}


@pytest.fixture(scope='module')
def network_and_values():
    network = nets_factory.get_network('ssd_300_mobilenet_v2', 3)
    return network, _values(network)


def _siblings(folder):
    return sorted(os.listdir(os.path.dirname(folder)))


def test_writes_checkpoint_labels_and_info(tmp_path, network_and_values):
    network, values = network_and_values
    train_dir = str(tmp_path / 'imported')
    prefix = train_dir_writer.write(train_dir, network, values, {1: 'a', 2: 'b'}, INFO)
    assert sorted(os.listdir(train_dir)) == [
        'checkpoint', 'labels.txt', 'model.ckpt-0.data-00000-of-00001', 'model.ckpt-0.index',
        'train_info.json']
    assert tf.train.latest_checkpoint(train_dir) == prefix
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_tensor('global_step') == 0
    name = 'extra_1/project/weights'
    np.testing.assert_array_equal(reader.get_tensor('ssd_300_mobilenet_v2/' + name), values[name])
    assert len(reader.get_variable_to_shape_map()) == len(values) + 1
    assert (tmp_path / 'imported' / 'labels.txt').read_text() == '0:background\n1:a\n2:b\n'
    assert _siblings(train_dir) == ['imported']


def test_an_empty_folder_is_taken(tmp_path, network_and_values):
    network, values = network_and_values
    os.mkdir(tmp_path / 'empty')
    train_dir_writer.write(str(tmp_path / 'empty'), network, values, {1: 'a', 2: 'b'}, INFO)
    assert (tmp_path / 'empty' / 'checkpoint').is_file()


def test_an_existing_train_dir_is_refused(tmp_path, network_and_values):
    network, values = network_and_values
    (tmp_path / 'old').mkdir()
    (tmp_path / 'old' / 'model.ckpt-5.index').write_bytes(b'')
    with pytest.raises(errors.WeightsError, match='old exists and is not empty'):
        train_dir_writer.write(str(tmp_path / 'old'), network, values, {1: 'a', 2: 'b'}, INFO)
    assert os.listdir(tmp_path / 'old') == ['model.ckpt-5.index']


@pytest.mark.parametrize('change, message', [
    ('drop', 'needs 1 variable\\(s\\) the file does not give \\(e.g. extra_1/project/weights\\)'),
    ('add', 'has no variable extra_9/weights'),
    ('reshape', 'extra_1/project/weights: the file gives shape \\[1\\], the network needs'),
])
def test_values_that_do_not_fit_leave_nothing(tmp_path, network_and_values, change, message):
    network, values = network_and_values
    values = dict(values)
    if change == 'drop':
        del values['extra_1/project/weights']
    elif change == 'add':
        values['extra_9/weights'] = np.zeros([1], np.float32)
    else:
        values['extra_1/project/weights'] = np.zeros([1], np.float32)
    with pytest.raises(errors.WeightsError, match=message):
        train_dir_writer.write(str(tmp_path / 'imported'), network, values, {1: 'a'}, INFO)
    assert os.listdir(tmp_path) == []
