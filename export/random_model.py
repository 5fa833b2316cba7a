"""A randomly initialised network as a train dir and an export, for tests and benchmarks.

The weights come from the network's own initialisers under a graph seed, so the same seed gives
the same export; the prediction heads can be scaled down so that softmax scores are spread over
the classes instead of saturating (a random VGG's logits are large).
"""
import os

import tensorflow as tf

from common import labels as labels_lib
from export import ssd_export
from nets import nets_factory


def random_checkpoint(network_name, train_dir, class_names, seed=1, head_scale=1.0):
    """Writes a random-init checkpoint and labels.txt of a network into train_dir.

    Args:
      network_name: nets_factory name.
      train_dir: folder, created when missing.
      class_names: list of names, index = class id (0: background).
      seed: graph-level random seed of the initialisers.
      head_scale: factor on the prediction heads' weights and biases (`*_box/` variables).

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
        session.run(tf.compat.v1.global_variables_initializer())
        if head_scale != 1.0:
            heads = [v for v in tf.compat.v1.global_variables() if '_box/' in v.op.name]
            session.run([v.assign(v * head_scale) for v in heads])
        checkpoint = tf.compat.v1.train.Saver().save(
            session, os.path.join(train_dir, 'model.ckpt'))
    return checkpoint, labels


def export_random(network_name, root, class_names, version=1, seed=1, head_scale=1.0,
                  precision='float32'):
    """A random-init network exported as `<root>/ssd/<version>/` (its checkpoint in
    `<root>/train`).

    Returns:
      the model base path `<root>/ssd`.
    """
    checkpoint, labels = random_checkpoint(network_name, os.path.join(root, 'train'),
                                           class_names, seed, head_scale)
    base = os.path.join(root, 'ssd')
    ssd_export.export(network_name, checkpoint, base, labels, version=version,
                      precision=precision)
    return base
