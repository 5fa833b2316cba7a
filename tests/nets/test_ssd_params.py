"""Tests of nets/ssd_params.py, through the network specs of nets_factory."""
import pytest

from common import normalization
from nets import nets_factory


def test_params_are_consistent():
    for name in nets_factory.NETWORK_NAMES:
        params = nets_factory.get_network(name).params
        n = len(params.feat_layers)
        assert len(params.feat_shapes) == n, name
        assert len(params.anchor_sizes) == n, name
        assert len(params.anchor_ratios) == n, name
        assert len(params.anchor_steps) == n, name
        assert params.prior_scaling == (0.1, 0.1, 0.2, 0.2)
        for low, high in params.anchor_sizes:
            assert 0 < low < high, name


def test_num_classes_override():
    params = nets_factory.get_network('ssd_300_vgg', num_classes=6).params
    assert params.num_classes == 6
    assert nets_factory.get_network('ssd_300_vgg').params.num_classes == 21


def test_errors():
    with pytest.raises(ValueError, match='Unknown network'):
        nets_factory.get_network('ssd_1000')
    with pytest.raises(ValueError, match='num_classes'):
        nets_factory.get_network('ssd_300_vgg', num_classes=1)


@pytest.mark.parametrize('name, kind', [('ssd_300_vgg', normalization.VGG_MEAN),
                                        ('ssd_300_vgg_bn', normalization.VGG_MEAN),
                                        ('ssd_512_vgg', normalization.VGG_MEAN),
                                        ('ssd_300_mobilenet_v2', normalization.MINUS_ONE_TO_ONE)])
def test_normalization_of_each_network(name, kind):
    assert nets_factory.get_network(name).params.normalization == kind
