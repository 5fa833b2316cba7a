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
                                        ('ssd_300_mobilenet_v2', normalization.MINUS_ONE_TO_ONE),
                                        ('ssd_300_vgg_caffe_voc', normalization.CAFFE_BGR_MEAN),
                                        ('ssd_512_vgg_caffe_coco', normalization.CAFFE_BGR_MEAN),
                                        ('ssd_300_vgg_torchvision',
                                         normalization.TORCHVISION_VGG_MEAN),
                                        ('ssd_512_vgg_ssdtf', normalization.VGG_MEAN)])
def test_normalization_of_each_network(name, kind):
    assert nets_factory.get_network(name).params.normalization == kind


# Each published detector's data (importers/): anchor sizes of conv4_3 and of the last layer,
# width/height clipping, offset order, classes.
@pytest.mark.parametrize('name, first, last, clip, order, classes', [
    ('ssd_300_vgg', (30, 60), (264, 315), False, 'yx', 21),
    ('ssd_512_vgg', (35.84, 76.8), (460.8, 537.6), False, 'yx', 21),
    ('ssd_300_vgg_caffe_voc', (30, 60), (264, 315), False, 'xy', 21),
    ('ssd_300_vgg_caffe_coco', (21, 45), (261, 315), False, 'xy', 81),
    ('ssd_512_vgg_caffe_voc', (35.84, 76.8), (460.8, 537.6), False, 'xy', 21),
    ('ssd_512_vgg_caffe_coco', (20.48, 51.2), (460.8, 542.72), False, 'xy', 81),
    ('ssd_300_vgg_torchvision', (21, 45), (261, 315), True, 'xy', 91),
    ('ssd_300_vgg_ssdtf', (21, 45), (261, 315), False, 'xy', 21),
    ('ssd_512_vgg_ssdtf', (20.48, 51.2), (460.8, 542.72), False, 'xy', 21),
])
def test_the_data_of_each_source(name, first, last, clip, order, classes):
    params = nets_factory.get_network(name).params
    assert params.anchor_sizes[0] == pytest.approx(first)
    assert params.anchor_sizes[-1] == pytest.approx(last)
    assert params.anchor_clip == clip
    assert params.box_order == order
    assert params.num_classes == classes
