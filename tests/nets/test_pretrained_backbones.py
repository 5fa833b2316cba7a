"""Fine-tuning from the public ImageNet checkpoints: slim's mobilenet_v2_1.0_224.ckpt into
ssd_300_mobilenet_v2, slim's vgg_16.ckpt into ssd_512_vgg (and the batch-norm VGG).

The checkpoints are written here under the names and shapes of the real ones (no download):
every backbone variable must be restored with the documented flags
(--checkpoint_model_scope=MobilenetV2 / vgg_16 --ignore_missing_vars) and equal the file after
restoring; the classifier (Logits, fc6-fc8) is not used, the extra layers and heads start fresh.
"""
import numpy as np
import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import vgg

from nets import checkpoints, nets_factory

# slim's MobileNetV2 (Sandler et al. 2018, Table 2; tensorflow/models research/slim/nets/
# mobilenet/mobilenet_v2.py V2_DEF), depth multiplier 1.0: (input, expanded, output) channels
# of expanded_conv, expanded_conv_1 ... expanded_conv_16. The first block has no expansion.
MOBILENET_V2_BLOCKS = (
    (32, 32, 16),
    (16, 96, 24), (24, 144, 24),
    (24, 144, 32), (32, 192, 32), (32, 192, 32),
    (32, 192, 64), (64, 384, 64), (64, 384, 64), (64, 384, 64),
    (64, 384, 96), (96, 576, 96), (96, 576, 96),
    (96, 576, 160), (160, 960, 160), (160, 960, 160),
    (160, 960, 320),
)
BATCH_NORM = ('beta', 'gamma', 'moving_mean', 'moving_variance')


def mobilenet_v2_checkpoint_shapes():
    """Variable name -> shape of slim's mobilenet_v2_1.0_224.ckpt (1001 ImageNet classes)."""
    shapes = {}

    def conv(scope, shape, weights='weights'):
        shapes['MobilenetV2/%s/%s' % (scope, weights)] = list(shape)
        channels = shape[2] if weights == 'depthwise_weights' else shape[3]
        for name in BATCH_NORM:
            shapes['MobilenetV2/%s/BatchNorm/%s' % (scope, name)] = [channels]

    conv('Conv', [3, 3, 3, 32])
    for index, (inputs, expanded, outputs) in enumerate(MOBILENET_V2_BLOCKS):
        block = 'expanded_conv' + ('_%d' % index if index else '')
        if index:
            conv(block + '/expand', [1, 1, inputs, expanded])
        conv(block + '/depthwise', [3, 3, expanded, 1], 'depthwise_weights')
        conv(block + '/project', [1, 1, expanded, outputs])
    conv('Conv_1', [1, 1, 320, 1280])
    shapes['MobilenetV2/Logits/Conv2d_1c_1x1/weights'] = [1, 1, 1280, 1001]
    shapes['MobilenetV2/Logits/Conv2d_1c_1x1/biases'] = [1001]
    return shapes


def _write_checkpoint(path, shapes, seed=0):
    """Writes random values under `shapes` (name -> shape); returns name -> value."""
    rng = np.random.default_rng(seed)
    values = {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}
    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=value)
                     for name, value in values.items()]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables).save(session, path, write_meta_graph=False)
    return values


def _restore(network_name, checkpoint, checkpoint_scope):
    """Builds the network, restores as train_ssd_network.py does; returns (map, values, names)."""
    network = nets_factory.get_network(network_name, num_classes=21)
    with tf.Graph().as_default():
        height, width = network.params.img_shape
        network.net(tf.zeros([1, height, width, 3]), is_training=True)
        variables = slim.get_model_variables(network_name)
        restore = checkpoints.variables_to_restore(
            variables, checkpoint, network_name, checkpoint_scope, ignore_missing_vars=True)
        init_fn = checkpoints.make_init_fn(restore, checkpoint)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            init_fn(None, session)
            values = session.run({name: var for name, var in restore.items()})
    return restore, values, [v.op.name for v in variables]


def test_mobilenet_v2_checkpoint_restores_the_whole_backbone(tmp_path):
    path = str(tmp_path / 'mobilenet_v2_1.0_224.ckpt')
    written = _write_checkpoint(path, mobilenet_v2_checkpoint_shapes())
    restore, values, model_names = _restore('ssd_300_mobilenet_v2', path, 'MobilenetV2')
    backbone = [n for n in model_names
                if n.split('/')[1].startswith(('Conv', 'expanded_conv'))]
    fresh = [n for n in model_names if n not in backbone]
    # 1 + 17 blocks (16 with an expansion) x their convs, + Conv_1; 5 variables per conv.
    assert len(backbone) == 5 * (1 + 16 * 3 + 2 + 1) == 260
    assert sorted(v.op.name for v in restore.values()) == sorted(backbone)
    assert all(n.split('/')[1].startswith(('extra_', 'layer_')) for n in fresh)
    assert not any('Logits' in name for name in restore)
    for name, value in values.items():
        np.testing.assert_array_equal(value, written[name])
    # Every backbone variable of the checkpoint is used; only the classifier is left over.
    assert sorted(set(written) - set(restore)) == ['MobilenetV2/Logits/Conv2d_1c_1x1/biases',
                                                   'MobilenetV2/Logits/Conv2d_1c_1x1/weights']


def _write_slim_vgg_16(path):
    """slim's vgg_16 (1000 classes) with random values, as the model zoo ships it."""
    with tf.Graph().as_default():
        vgg.vgg_16(tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3]), is_training=False)
        variables = tf.compat.v1.global_variables()
        # fc6/fc7 are large (120M values) and never restored: keep their shapes, skip them.
        saved = [v for v in variables if '/fc6' not in v.op.name and '/fc7' not in v.op.name]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.variables_initializer(saved))
            tf.compat.v1.train.Saver(saved).save(session, path, write_meta_graph=False)
            return session.run({v.op.name: v for v in saved})


def test_ssd_512_vgg_restores_every_vgg_16_conv(tmp_path):
    path = str(tmp_path / 'vgg_16.ckpt')
    written = _write_slim_vgg_16(path)
    restore, values, model_names = _restore('ssd_512_vgg', path, 'vgg_16')
    convs = [n for n in model_names if n.split('/')[1] in ('conv1', 'conv2', 'conv3', 'conv4',
                                                           'conv5')]
    assert len(convs) == 26
    assert sorted(v.op.name for v in restore.values()) == sorted(convs)
    assert not any('/fc' in name for name in restore)
    for name, value in values.items():
        np.testing.assert_array_equal(value, written[name])
    # conv6/conv7 (not fc6/fc7), conv4_3_norm, the extra layers up to conv12 and the heads
    # start fresh.
    assert 'ssd_512_vgg/conv12/conv12_2/weights' in model_names
    assert 'ssd_512_vgg/conv12/conv12_2/weights' not in {v.op.name for v in restore.values()}


def test_batch_norm_vgg_restores_the_vgg_16_weights(tmp_path):
    path = str(tmp_path / 'vgg_16.ckpt')
    written = _write_slim_vgg_16(path)
    restore, values, model_names = _restore('ssd_300_vgg_bn', path, 'vgg_16')
    # With batch norm the convs have no biases: the 13 conv weights are restored.
    assert sorted(restore) == sorted(n for n in written if n.endswith('weights')
                                     and '/fc' not in n)
    assert len(restore) == 13
    assert 'ssd_300_vgg_bn/conv1/conv1_1/BatchNorm/gamma' in model_names
    for name, value in values.items():
        np.testing.assert_array_equal(value, written[name])
