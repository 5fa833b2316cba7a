"""SSD-Tensorflow checkpoints import with every variable restored: a checkpoint with its variable
names and shapes (and training state beside them) becomes a train dir whose every variable holds
the checkpoint's value; none starts fresh."""
import os

import numpy as np
import pytest
import tensorflow as tf

from importers import errors, import_lib, ssd_tensorflow
from tests.importers import ssd_tensorflow_reference


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp('ssdtf')
    prefix = str(folder / 'ssd_300_vgg.ckpt')
    return prefix, ssd_tensorflow_reference.write_checkpoint(prefix, 300)


def test_every_variable_is_restored_from_the_checkpoint(checkpoint, tmp_path):
    prefix, values = checkpoint
    result = import_lib.import_weights('ssd_tensorflow', prefix, str(tmp_path / 'train'))
    assert (result.network, result.num_classes) == ('ssd_300_vgg_ssdtf', 21)
    reader = tf.train.load_checkpoint(result.checkpoint)
    imported = reader.get_variable_to_shape_map()
    names = ssd_tensorflow.variable_names('ssd_300_vgg', 6)
    assert sorted(imported) == sorted(['global_step'] + ['ssd_300_vgg_ssdtf/' + name
                                                         for name in names])
    assert sorted(names.values()) == sorted(values)        # every checkpoint weight is used
    for ours, theirs in names.items():
        np.testing.assert_array_equal(reader.get_tensor('ssd_300_vgg_ssdtf/' + ours),
                                      values[theirs], err_msg=theirs)
    assert result.labels[15] == 'person'


def test_a_checkpoint_folder_is_taken(checkpoint, tmp_path):
    prefix, _ = checkpoint
    folder = os.path.dirname(prefix)
    with open(os.path.join(folder, 'checkpoint'), 'w') as f:
        f.write('model_checkpoint_path: "ssd_300_vgg.ckpt"\n')
    found = import_lib.recognise('ssd_tensorflow', folder)
    assert found.network == 'ssd_300_vgg_ssdtf'


def test_ssd512_is_recognised_by_its_scope(tmp_path):
    prefix = str(tmp_path / 'ssd_512_vgg.ckpt')
    heads = {name: np.zeros(shape, np.float32)          # what recognising reads: scope, heads
             for name, shape in ssd_tensorflow_reference.variable_shapes(512).items()
             if '/block4_box/' in name}
    ssd_tensorflow_reference.write_checkpoint(prefix, 512, heads, training_state=False)
    found = import_lib.recognise('ssd_tensorflow', prefix)
    assert (found.network, found.num_classes) == ('ssd_512_vgg_ssdtf', 21)


def test_a_classification_checkpoint_is_refused(tmp_path):
    prefix = str(tmp_path / 'vgg_16.ckpt')
    with tf.Graph().as_default():
        variable = tf.compat.v1.Variable(np.zeros([3, 3, 3, 64], np.float32),
                                         name='vgg_16/conv1/conv1_1/weights')
        with tf.compat.v1.Session() as session:
            session.run(variable.initializer)
            tf.compat.v1.train.Saver([variable]).save(session, prefix)
    with pytest.raises(errors.WeightsError, match='vgg_16.ckpt: not an SSD-Tensorflow VGG '
                                                  'checkpoint: expected variables under one of '
                                                  'ssd_300_vgg, ssd_512_vgg, found scopes vgg_16'):
        import_lib.import_weights('ssd_tensorflow', prefix, str(tmp_path / 'train'))
    assert not os.path.exists(tmp_path / 'train')


def test_a_damaged_checkpoint_is_refused(checkpoint, tmp_path):
    prefix, _ = checkpoint
    damaged = str(tmp_path / 'damaged.ckpt')
    for suffix in ('.index', '.data-00000-of-00001'):
        with open(prefix + suffix, 'rb') as f:
            data = f.read()
        with open(damaged + suffix, 'wb') as f:
            f.write(data[:len(data) // 3] if suffix == '.index' else data)
    with pytest.raises(errors.WeightsError, match='damaged.ckpt: not a readable TensorFlow '
                                                  'checkpoint'):
        import_lib.import_weights('ssd_tensorflow', damaged, str(tmp_path / 'train'))
    assert not os.path.exists(tmp_path / 'train')
