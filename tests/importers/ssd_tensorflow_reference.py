"""SSD-Tensorflow (balancap) checkpoints as the tests write them: the variable names and shapes
of its nets/ssd_vgg_300.py and ssd_vgg_512.py (ssd_300_vgg.ckpt of its README, 21 VOC classes),
plus the training state a checkpoint of its train_ssd_network.py also holds."""
import numpy as np
import tensorflow as tf

_VGG = (('conv1', 2, 3, 64), ('conv2', 2, 64, 128), ('conv3', 3, 128, 256),
        ('conv4', 3, 256, 512), ('conv5', 3, 512, 512))
# (block, conv1x1 outputs, conv3x3 kernel, conv3x3 outputs) after conv7 (1024 channels).
_BLOCKS = {300: (('block8', 256, 3, 512), ('block9', 128, 3, 256), ('block10', 128, 3, 256),
                 ('block11', 128, 3, 256)),
           512: (('block8', 256, 3, 512), ('block9', 128, 3, 256), ('block10', 128, 3, 256),
                 ('block11', 128, 3, 256), ('block12', 128, 4, 256))}
# (feature block, channels, anchors per cell).
_HEADS = {300: (('block4', 512, 4), ('block7', 1024, 6), ('block8', 512, 6), ('block9', 256, 6),
                ('block10', 256, 4), ('block11', 256, 4)),
          512: (('block4', 512, 4), ('block7', 1024, 6), ('block8', 512, 6), ('block9', 256, 6),
                ('block10', 256, 6), ('block11', 256, 4), ('block12', 256, 4))}
TRAINING_STATE = ('global_step', '%s/conv1/conv1_1/weights/Momentum',
                  '%s/block4_box/conv_cls/biases/ExponentialMovingAverage')


def variable_shapes(size, num_classes=21):
    """Checkpoint variable name -> shape of SSD-Tensorflow's ssd_<size>_vgg model."""
    scope = 'ssd_%d_vgg' % size
    shapes = {}

    def conv(name, kernel, inputs, outputs):
        shapes['%s/%s/weights' % (scope, name)] = (kernel, kernel, inputs, outputs)
        shapes['%s/%s/biases' % (scope, name)] = (outputs,)

    for block, repeat, inputs, outputs in _VGG:
        for index in range(1, repeat + 1):
            conv('%s/%s_%d' % (block, block, index), 3, inputs if index == 1 else outputs,
                 outputs)
    conv('conv6', 3, 512, 1024)
    conv('conv7', 1, 1024, 1024)
    channels = 1024
    for block, bottleneck, kernel, outputs in _BLOCKS[size]:
        conv(block + '/conv1x1', 1, channels, bottleneck)
        conv(block + '/conv3x3', kernel, bottleneck, outputs)
        channels = outputs
    for block, depth, anchors in _HEADS[size]:
        conv(block + '_box/conv_loc', 3, depth, anchors * 4)
        conv(block + '_box/conv_cls', 3, depth, anchors * num_classes)
    shapes['%s/block4_box/L2Normalization/gamma' % scope] = (512,)
    return shapes


def write_checkpoint(prefix, size, values=None, num_classes=21, training_state=True, seed=0):
    """Writes an SSD-Tensorflow checkpoint; returns its values (name -> array).

    Args:
        values: name -> array (default: random, He-scaled).
        training_state: also write a global step, a Momentum slot and a moving average.
    """
    scope = 'ssd_%d_vgg' % size
    shapes = variable_shapes(size, num_classes)
    if values is None:
        rng = np.random.default_rng(seed)
        values = {name: (np.sqrt(2.0 / max(np.prod(shape[:-1]), 1))
                         * rng.standard_normal(shape)).astype(np.float32)
                  for name, shape in shapes.items()}
    stored = dict(values)
    if training_state:
        stored['global_step'] = np.int64(120000)
        for name in TRAINING_STATE[1:]:
            stored[name % scope] = values[name.rsplit('/', 1)[0] % scope]
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in stored.items()]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.variables_initializer(variables))
            tf.compat.v1.train.Saver(variables).save(session, prefix)
    return values
