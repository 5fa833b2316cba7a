"""One registry of the SSD networks: get_network(name) -> SSDNet, the network's one spec.

Each builder holds a variant's settings (as torchvision's `ssd300_vgg16()` does): feature
extractor, arg scope, anchors and input (SSDParams with its normalisation), head type and
post-processing defaults. Training, evaluation, export and the export manifest read them
from the SSDNet; nothing else describes a network.
"""
import functools

from common import normalization, np_post_processing
from nets import ssd_mobilenet_v2, ssd_params, ssd_vgg
from nets.ssd_net import SSDNet

DEFAULT_NETWORK = 'ssd_300_vgg'


def _checked(params, num_classes):
    if num_classes is None:
        return params
    if int(num_classes) < 2:
        raise ValueError('num_classes must be >= 2 (background + 1), got %r' % (num_classes,))
    return params._replace(num_classes=int(num_classes))


def ssd_300_vgg(num_classes=None):
    """SSD300 on VGG-16 (Liu et al., 2016): 8732 anchors, VGG mean subtraction."""
    return SSDNet('ssd_300_vgg', _checked(ssd_params.SSD_300_VGG, num_classes),
                  functools.partial(ssd_vgg.vgg_feature_maps,
                                    extra_layers=ssd_vgg.EXTRA_LAYERS_300),
                  ssd_vgg.vgg_arg_scope, separable_heads=False,
                  post_processing=np_post_processing.DEFAULTS)


def ssd_300_vgg_bn(num_classes=None):
    """SSD300 with batch norm in the VGG backbone and extra layers (ScratchDet, for training
    from scratch): the geometry and input of ssd_300_vgg."""
    return SSDNet('ssd_300_vgg_bn', _checked(ssd_params.SSD_300_VGG, num_classes),
                  functools.partial(ssd_vgg.vgg_feature_maps,
                                    extra_layers=ssd_vgg.EXTRA_LAYERS_300),
                  ssd_vgg.vgg_bn_arg_scope, separable_heads=False,
                  post_processing=np_post_processing.DEFAULTS)


def ssd_512_vgg(num_classes=None):
    """SSD512 on VGG-16 (Liu et al., 2016): 24564 anchors, VGG mean subtraction."""
    return SSDNet('ssd_512_vgg', _checked(ssd_params.SSD_512_VGG, num_classes),
                  functools.partial(ssd_vgg.vgg_feature_maps,
                                    extra_layers=ssd_vgg.EXTRA_LAYERS_512),
                  ssd_vgg.vgg_arg_scope, separable_heads=False,
                  post_processing=np_post_processing.DEFAULTS)


def ssd_300_mobilenet_v2(num_classes=None):
    """SSDLite on MobileNetV2 with the SSD300 anchors, inputs in [-1, 1].

    The SSD300 geometry on MobileNetV2 feature maps of the same sizes: dense enough to give
    ~10 positive anchors per object, which speeds up training from scratch (the TF OD API's
    sparser 19x19-first layout gives ~3).
    """
    params = ssd_params.SSD_300_VGG._replace(
        feat_layers=('layer_8', 'layer_15', 'layer_19', 'extra_1', 'extra_2', 'extra_3'),
        normalization=normalization.MINUS_ONE_TO_ONE)
    return SSDNet('ssd_300_mobilenet_v2', _checked(params, num_classes),
                  ssd_mobilenet_v2.mobilenet_v2_feature_maps,
                  ssd_mobilenet_v2.mobilenet_arg_scope, separable_heads=True,
                  post_processing=np_post_processing.DEFAULTS)


_BUILDERS = {builder.__name__: builder for builder in (
    ssd_300_vgg, ssd_300_vgg_bn, ssd_512_vgg, ssd_300_mobilenet_v2)}

NETWORK_NAMES = tuple(sorted(_BUILDERS))


def get_network(name, num_classes=None):
    """Returns the SSDNet called `name`.

    Args:
      name: one of NETWORK_NAMES.
      num_classes: classes including background; default the network's (21, VOC).

    Raises:
      ValueError: unknown name or bad num_classes.
    """
    if name not in _BUILDERS:
        raise ValueError('Unknown network %r; choose one of %s' % (name, ', '.join(NETWORK_NAMES)))
    return _BUILDERS[name](num_classes)
