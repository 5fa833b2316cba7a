"""A randomly initialised network as a train dir and an export, for tests and benchmarks.

The weights come from the network's own initialisers under a graph seed, so the same seed gives
the same export. Batch-norm networks (MobileNetV2) start with moving variances of 1 against
activations far smaller, so their random outputs are all but constant; with `calibrate` their
moving statistics are first set from training-mode batches of random pixels, which normalises
every layer as a trained network's are.
"""
import os

import tensorflow as tf

from common import labels as labels_lib
from export import ssd_export
from nets import nets_factory
from preprocessing import image_ops

# Training-mode batches that set the moving statistics (decay 0.9: 0.9 ** 40 = 1.5 % left).
CALIBRATION_STEPS = 40


def random_checkpoint(network_name, train_dir, class_names, seed=1, calibrate=False):
    """Writes a random-init checkpoint and labels.txt of a network into train_dir.

    Args:
      network_name: nets_factory name.
      train_dir: folder, created when missing.
      class_names: list of names, index = class id (0: background).
      seed: graph-level random seed of the initialisers.
      calibrate: set the batch-norm moving statistics from random batches first.

    Returns:
      (checkpoint prefix, labels.txt path).
    """
    os.makedirs(train_dir, exist_ok=True)
    labels = os.path.join(train_dir, labels_lib.LABELS_FILENAME)
    labels_lib.write_labels(labels, dict(enumerate(class_names)))
    network = nets_factory.get_network(network_name, num_classes=len(class_names))
    height, width = network.params.img_shape
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        tf.compat.v1.set_random_seed(seed)
        network.net(tf.zeros([1, height, width, 3]), is_training=False)
        if calibrate:
            pixels = tf.random.uniform([2, height, width, 3], 0.0, 255.0, seed=seed)
            network.net(image_ops.normalize_image(pixels, network.params.normalization),
                        is_training=True, reuse=True)
        session.run(tf.compat.v1.global_variables_initializer())
        updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
        for _ in range(CALIBRATION_STEPS if updates else 0):
            session.run(updates)
        checkpoint = tf.compat.v1.train.Saver().save(
            session, os.path.join(train_dir, 'model.ckpt'))
    return checkpoint, labels


def export_random(network_name, root, class_names, version=1, seed=1, calibrate=False,
                  precision='float32'):
    """A random-init network exported as `<root>/ssd/<version>/` (its checkpoint in
    `<root>/train`).

    Returns:
      the model base path `<root>/ssd`.
    """
    checkpoint, labels = random_checkpoint(network_name, os.path.join(root, 'train'),
                                           class_names, seed, calibrate)
    base = os.path.join(root, 'ssd')
    ssd_export.export(network_name, checkpoint, base, labels, version=version,
                      precision=precision)
    return base
