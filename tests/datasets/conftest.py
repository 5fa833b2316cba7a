"""Fixtures of the datasets tests: one small synthetic VOC set per session."""
import pytest

from datasets import make_shapes_dataset


@pytest.fixture(scope='session')
def shapes_voc(tmp_path_factory):
    """A synthetic shapes set in VOC layout: 24 trainval + 8 test images, seed 3."""
    root = tmp_path_factory.mktemp('shapes_voc')
    make_shapes_dataset.make_dataset(str(root), num_train=24, num_test=8, seed=3)
    return root


@pytest.fixture
def read_all():
    """Function reading every example of a DatasetInfo in a fresh graph (graph mode)."""
    import tensorflow as tf

    def read(info, **kwargs):
        examples = []
        with tf.Graph().as_default():
            next_example = tf.compat.v1.data.make_one_shot_iterator(info.read(**kwargs)).get_next()
            with tf.compat.v1.Session() as session:
                while True:
                    try:
                        examples.append(session.run(next_example))
                    except tf.errors.OutOfRangeError:
                        return examples
    return read
