"""Fixtures of the datasets tests: one small synthetic VOC set per session."""
import pytest
import tensorflow as tf

from datasets import make_shapes_dataset
from tests import helpers


@pytest.fixture(scope='session')
def shapes_voc(tmp_path_factory):
    """A synthetic shapes set in VOC layout: 24 trainval + 8 test images, seed 3."""
    root = tmp_path_factory.mktemp('shapes_voc')
    make_shapes_dataset.make_dataset(str(root), num_train=24, num_test=8, seed=3)
    return root


@pytest.fixture
def read_all():
    """Function reading every example of a DatasetInfo in a fresh graph (graph mode)."""
    def read(info, **kwargs):
        with tf.Graph().as_default():
            return helpers.run_dataset(info.read(**kwargs))
    return read
