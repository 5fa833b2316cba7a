"""One registry of the SSD networks: get_network(name) -> SSDNet."""
import functools

from nets import ssd_mobilenet_v2, ssd_params, ssd_vgg
from nets.ssd_net import SSDNet

# name -> (feature_fn, arg_scope_fn, separable heads). Geometry lives in ssd_params.
_NETWORKS = {
    'ssd_300_vgg': (functools.partial(ssd_vgg.vgg_feature_maps,
                                      extra_layers=ssd_vgg.EXTRA_LAYERS_300),
                    ssd_vgg.vgg_arg_scope, False),
    'ssd_300_vgg_bn': (functools.partial(ssd_vgg.vgg_feature_maps,
                                         extra_layers=ssd_vgg.EXTRA_LAYERS_300),
                       ssd_vgg.vgg_bn_arg_scope, False),
    'ssd_512_vgg': (functools.partial(ssd_vgg.vgg_feature_maps,
                                      extra_layers=ssd_vgg.EXTRA_LAYERS_512),
                    ssd_vgg.vgg_arg_scope, False),
    'ssd_300_mobilenet_v2': (ssd_mobilenet_v2.mobilenet_v2_feature_maps,
                             ssd_mobilenet_v2.mobilenet_arg_scope, True),
}

NETWORK_NAMES = tuple(sorted(_NETWORKS))


def get_network(name, num_classes=None):
    """Returns the SSDNet called `name`.

    Args:
      name: one of NETWORK_NAMES.
      num_classes: classes including background; default the params' (21, VOC).

    Raises:
      ValueError: unknown name or bad num_classes.
    """
    if name not in _NETWORKS:
        raise ValueError('Unknown network %r; choose one of %s' % (name, ', '.join(NETWORK_NAMES)))
    params = ssd_params.get_params(name, num_classes)
    feature_fn, arg_scope_fn, separable = _NETWORKS[name]
    return SSDNet(name, params, feature_fn, arg_scope_fn, separable)
