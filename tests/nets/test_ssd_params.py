"""Tests of nets/ssd_params.py."""
import pytest

from nets import ssd_params


def test_params_are_consistent():
    for name, params in ssd_params.PARAMS.items():
        n = len(params.feat_layers)
        assert len(params.feat_shapes) == n, name
        assert len(params.anchor_sizes) == n, name
        assert len(params.anchor_ratios) == n, name
        assert len(params.anchor_steps) == n, name
        assert params.prior_scaling == (0.1, 0.1, 0.2, 0.2)
        for low, high in params.anchor_sizes:
            assert 0 < low < high, name


def test_get_params_overrides_classes():
    params = ssd_params.get_params('ssd_300_vgg', num_classes=6)
    assert params.num_classes == 6
    assert ssd_params.get_params('ssd_300_vgg').num_classes == 21


def test_get_params_errors():
    with pytest.raises(ValueError, match='Unknown network'):
        ssd_params.get_params('ssd_1000')
    with pytest.raises(ValueError, match='num_classes'):
        ssd_params.get_params('ssd_300_vgg', num_classes=1)


def test_normalization_names():
    assert ssd_params.SSD_300_VGG.normalization == 'vgg_mean'
    assert ssd_params.SSD_512_VGG.normalization == 'vgg_mean'
    assert ssd_params.SSD_300_MOBILENET_V2.normalization == 'minus_one_to_one'
