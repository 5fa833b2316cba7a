"""train_ssd_network.py with a linear model in place of SSD, for the cluster fault tests.

Every task runs the trainer's own code (roles from TF_CONFIG, servers, sessions, the
watchdog, checkpoints, the ps loop); only the graph differs, so a task starts in seconds and
a step takes milliseconds. Run it as the trainer: `python toy_trainer.py FLAGS` with the flags
of train_ssd_network.py (--dataset_dir must exist; the model flags are not used).
"""
import sys

import numpy as np
import tensorflow as tf

import train_ssd_network
from deployment import model_deploy
from training import train_lib

WEIGHTS = np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)


def build_graph(args, deploy_config):
    """y = x . WEIGHTS learnt from random x by every clone: a TrainGraph of the deployment."""
    with tf.compat.v1.device(deploy_config.variables_device()):
        global_step = tf.compat.v1.train.get_or_create_global_step()

    def model_fn():
        x = tf.random.normal([args.batch_size, 4])
        w = tf.compat.v1.get_variable('w', [4, 1], initializer=tf.zeros_initializer())
        tf.compat.v1.losses.mean_squared_error(tf.matmul(x, WEIGHTS), tf.matmul(x, w))

    clones = model_deploy.create_clones(deploy_config, model_fn)
    with tf.compat.v1.device(deploy_config.optimizer_device()):
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(args.learning_rate)
    step = model_deploy.build_train_op(deploy_config, clones, optimizer, global_step)
    return train_lib.TrainGraph(step.train_op, global_step,
                                {'total': step.total_loss,
                                 'learning_rate': tf.constant(args.learning_rate)},
                                None, args.batch_size, list(step.hooks))


if __name__ == '__main__':
    train_ssd_network._build_graph = build_graph  # pylint: disable=protected-access
    sys.exit(train_ssd_network.main())
