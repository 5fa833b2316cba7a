"""The pieces of bench/finetune.py that run fast: which variables each target run restores."""
import pytest
import tensorflow as tf

from bench import finetune
from nets import nets_factory


def _restored(network, run):
    """Names (without the model scope) of the variables a target run restores."""
    net = nets_factory.get_network(network, num_classes=3)
    with tf.Graph().as_default():
        net.net(tf.zeros([1, 300, 300, 3]))
        scopes = finetune.exclude_scopes(network, run).split(',')
        return {v.op.name[len(network) + 1:] for v in tf.compat.v1.global_variables()
                if not any(v.op.name == s or v.op.name.startswith(s + '/') for s in scopes)}


@pytest.mark.parametrize('network, backbone', [
    (finetune.MOBILENET, ('Conv', 'expanded_conv', 'Conv_1')),
    (finetune.VGG, ('conv1/', 'conv2/', 'conv3/', 'conv4/', 'conv5/', 'conv6/', 'conv7/',
                    'conv4_3_norm/'))])
def test_the_backbone_run_restores_the_backbone_only(network, backbone):
    restored = _restored(network, 'backbone')
    assert restored and all(name.startswith(backbone) for name in restored)
    assert any(name.startswith(backbone[-1]) for name in restored)


@pytest.mark.parametrize('network', [finetune.MOBILENET, finetune.VGG])
def test_the_detector_run_restores_all_but_the_class_heads(network):
    restored = _restored(network, 'detector')
    assert not any('_box/cls/' in name for name in restored)
    assert any('_box/loc/' in name for name in restored)
    assert any(name.startswith(finetune.RECIPES[network]['extra_layers'][0] + '/')
               for name in restored)
