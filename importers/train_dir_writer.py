"""Writes imported weights as a normal train dir: checkpoint, labels.txt and train_info.json.

The network is built in a graph of its own, so the checkpoint holds exactly its variables (and
a global step 0) under the project's names; evaluation, export and fine-tuning restore it like a
trained one. Everything is written into a hidden temporary folder beside the train dir, which is
renamed into place when complete: a failed import leaves nothing behind.
"""
import json
import os
import secrets
import shutil

import numpy as np
import tensorflow as tf
import tf_slim as slim

from common import devices
from common import labels as labels_lib
from common.files import atomic_write
from datasets import train_dir as train_dir_lib
from importers import errors

CHECKPOINT_NAME = 'model.ckpt'


def check_new(train_dir):
    """Raises errors.WeightsError unless `train_dir` is absent or an empty folder."""
    if os.path.exists(train_dir) and (not os.path.isdir(train_dir) or os.listdir(train_dir)):
        raise errors.WeightsError('--train_dir %s exists and is not empty; an import writes a new '
                                  'train dir' % train_dir)


def _assign_all(session, network, values):
    """Loads `values` (name relative to the model scope -> array) into the network's variables.

    Raises:
        errors.WeightsError: a variable without value, or a value of another shape.
    """
    prefix = network.name + '/'
    variables = {v.op.name[len(prefix):]: v for v in tf.compat.v1.global_variables()
                 if v.op.name.startswith(prefix)}
    missing = sorted(set(variables) - set(values))
    if missing:
        raise errors.WeightsError('%s needs %d variable(s) the file does not give (e.g. %s)' % (
            network.name, len(missing), missing[0]))
    extra = sorted(set(values) - set(variables))
    if extra:
        raise errors.WeightsError('%s has no variable %s' % (network.name, extra[0]))
    feeds, assigns = {}, []
    for name, variable in sorted(variables.items()):
        value = values[name]
        shape = variable.shape.as_list()
        if list(value.shape) != shape:
            raise errors.WeightsError('%s: the file gives shape %s, the network needs %s' % (
                variable.op.name, list(value.shape), shape))
        placeholder = tf.compat.v1.placeholder(tf.float32, shape)
        assigns.append(tf.compat.v1.assign(variable, placeholder))
        feeds[placeholder] = np.asarray(value, np.float32)
    session.run(assigns, feeds)


def _write_checkpoint(folder, network, values):
    with tf.Graph().as_default():
        height, width = network.params.img_shape
        images = tf.compat.v1.placeholder(tf.float32, [1, height, width, 3])
        with slim.arg_scope(network.arg_scope()):
            network.net(images, is_training=False)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        config = devices.without_absent_gpus(tf.compat.v1.ConfigProto())
        with tf.compat.v1.Session(config=config) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            _assign_all(session, network, values)
            return saver.save(session, os.path.join(folder, CHECKPOINT_NAME),
                              global_step=global_step, write_meta_graph=False)


def write(train_dir, network, values, labels, info):
    """Writes the train dir.

    Args:
        train_dir: the new folder (absent or empty).
        network: nets.ssd_net.SSDNet (its num_classes already that of the file).
        values: dict variable name relative to the model scope -> numpy array.
        labels: dict class id -> name.
        info: train_info.json content (datasets/train_dir.py).

    Returns:
        the checkpoint prefix inside train_dir.

    Raises:
        errors.WeightsError: the train dir exists, or the values do not fit the network.
    """
    check_new(train_dir)
    train_dir = os.path.abspath(train_dir)
    parent = os.path.dirname(train_dir)
    os.makedirs(parent, exist_ok=True)
    scratch = os.path.join(parent, '.%s.%s.tmp' % (os.path.basename(train_dir),
                                                   secrets.token_hex(4)))
    os.mkdir(scratch)
    try:
        prefix = _write_checkpoint(scratch, network, values)
        labels_lib.write_labels(os.path.join(scratch, labels_lib.LABELS_FILENAME), labels)
        atomic_write(os.path.join(scratch, train_dir_lib.INFO_FILENAME),
                     json.dumps(info, indent=2, sort_keys=True) + '\n')
        if os.path.isdir(train_dir):
            os.rmdir(train_dir)
        os.rename(scratch, train_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return os.path.join(train_dir, os.path.basename(prefix))

