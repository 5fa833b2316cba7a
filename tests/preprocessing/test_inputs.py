"""Tests for preprocessing/inputs.py: fixed-shape training batches, padded evaluation batches."""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import dataset_options_pb2

from datasets import dataset_factory
from nets import nets_factory
from preprocessing import inputs, preprocessing_factory
from tests import helpers

NET = 'ssd_300_mobilenet_v2'


@pytest.fixture(scope='module')
def records_dir(tmp_path_factory):
    return helpers.make_shapes_records(str(tmp_path_factory.mktemp('shapes')), 3, 3, seed=6,
                                           min_side=80, max_side=120)


def test_train_batches_have_fixed_shapes(records_dir):
    with tf.Graph().as_default():
        info = dataset_factory.get_dataset('shapes', 'trainval', records_dir)
        network = nets_factory.get_network(NET, info.num_classes)
        num_anchors = len(network.anchors())
        dataset = inputs.train_dataset(info, preprocessing_factory.get_preprocessing(NET, True),
                                       network.anchors(), network.params.prior_scaling, 2,
                                       seed=1)
        assert dataset.element_spec['target_labels'].shape.as_list() == [2, num_anchors]
        assert dataset.element_spec['target_locs'].shape.as_list() == [2, num_anchors, 4]
        assert dataset.element_spec['image'].shape.as_list() == [2, 300, 300, 3]
        batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        with tf.compat.v1.Session() as session:
            for _ in range(2):   # more batches than images: the data repeats
                values = session.run(batch)
    labels = values['target_labels']
    assert set(np.unique(labels)) <= set(range(-1, info.num_classes))
    assert (labels > 0).any()
    assert np.all(values['target_locs'][labels == 0] == 0)


def test_eval_batches_keep_ground_truth(records_dir):
    with tf.Graph().as_default():
        info = dataset_factory.get_dataset('shapes', 'test', records_dir)
        dataset = inputs.eval_dataset(info, preprocessing_factory.get_preprocessing(NET, False), 2)
        batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        sizes, counts = [], []
        with tf.compat.v1.Session() as session:
            while True:
                try:
                    values = session.run(batch)
                except tf.errors.OutOfRangeError:
                    break
                sizes.append(len(values['filename']))
                counts.extend(values['num_boxes'])
                for i, n in enumerate(values['num_boxes']):
                    assert np.all(values['labels'][i, :n] > 0)
                    assert np.all(values['labels'][i, n:] == 0)
    assert sizes == [2, 1]
    assert all(n >= 0 for n in counts)


def test_cluster_worker_batches_without_autotune(records_dir):
    """A cluster replica's pipeline: its part of the records, no tf.data autotuning thread."""
    info = dataset_factory.get_dataset('shapes', 'trainval', records_dir)
    network = nets_factory.get_network(NET, info.num_classes)
    args = (info, preprocessing_factory.get_preprocessing(NET, True), network.anchors(),
            network.params.prior_scaling, 1)
    with tf.Graph().as_default() as graph:
        inputs.train_dataset(*args, seed=1)
        assert not [op for op in graph.get_operations() if op.type == 'OptionsDataset']
    with tf.Graph().as_default() as graph:
        worker = inputs.train_dataset(*args, seed=1, num_shards=2, shard_index=1, autotune=False)
        [options_op] = [op for op in graph.get_operations() if op.type == 'OptionsDataset']
        options = dataset_options_pb2.Options.FromString(
            options_op.get_attr('serialized_options'))
        assert options.autotune_options.HasField('enabled')
        assert not options.autotune_options.enabled
        batch = tf.compat.v1.data.make_one_shot_iterator(worker).get_next()
        with tf.compat.v1.Session() as session:
            images = [session.run(batch)['image'] for _ in range(3)]
    assert all(image.shape == (1, 300, 300, 3) for image in images)
