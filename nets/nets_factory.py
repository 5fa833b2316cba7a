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


def _vgg(name, params, num_classes):
    """A VGG SSD (300 or 512 by its feature layers) with the plain VGG arg scope."""
    extra_layers = ssd_vgg.EXTRA_LAYERS_512 if len(params.feat_layers) == 7 else \
        ssd_vgg.EXTRA_LAYERS_300
    return SSDNet(name, _checked(params, num_classes),
                  functools.partial(ssd_vgg.vgg_feature_maps, extra_layers=extra_layers),
                  ssd_vgg.vgg_arg_scope, separable_heads=False,
                  post_processing=np_post_processing.DEFAULTS)


def ssd_300_vgg(num_classes=None):
    """SSD300 on VGG-16 (Liu et al., 2016): 8732 anchors, VGG mean subtraction."""
    return _vgg('ssd_300_vgg', ssd_params.SSD_300_VGG, num_classes)


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
    return _vgg('ssd_512_vgg', ssd_params.SSD_512_VGG, num_classes)


# The published detectors import_weights.py reads: the same VGG network, with each source's
# anchors, offset order (x before y in all three) and input normalisation as data.
def ssd_300_vgg_caffe_voc(num_classes=None):
    """The SSD authors' Caffe SSD300 VOC models (VGG_VOC0712_SSD_300x300): anchors 30 ... 315,
    BGR minus (104, 117, 123)."""
    return _vgg('ssd_300_vgg_caffe_voc', ssd_params.SSD_300_VGG._replace(
        box_order='xy', normalization=normalization.CAFFE_BGR_MEAN), num_classes)


def ssd_300_vgg_caffe_coco(num_classes=None):
    """The SSD authors' Caffe SSD300 COCO model: 80 classes, anchors 21 ... 315, BGR input."""
    return _vgg('ssd_300_vgg_caffe_coco', ssd_params.SSD_300_VGG._replace(
        num_classes=81, anchor_sizes=ssd_params.COCO_300_ANCHOR_SIZES, box_order='xy',
        normalization=normalization.CAFFE_BGR_MEAN), num_classes)


def ssd_512_vgg_caffe_voc(num_classes=None):
    """The SSD authors' Caffe SSD512 VOC models (VGG_VOC0712_SSD_512x512): anchors 35.84 ...
    537.6, BGR input."""
    return _vgg('ssd_512_vgg_caffe_voc', ssd_params.SSD_512_VGG._replace(
        box_order='xy', normalization=normalization.CAFFE_BGR_MEAN), num_classes)


def ssd_512_vgg_caffe_coco(num_classes=None):
    """The SSD authors' Caffe SSD512 COCO model: 80 classes, anchors 20.48 ... 542.72, BGR
    input."""
    return _vgg('ssd_512_vgg_caffe_coco', ssd_params.SSD_512_VGG._replace(
        num_classes=81, anchor_sizes=ssd_params.COCO_512_ANCHOR_SIZES, box_order='xy',
        normalization=normalization.CAFFE_BGR_MEAN), num_classes)


def ssd_300_vgg_torchvision(num_classes=None):
    """torchvision's ssd300_vgg16: COCO's 91 category ids, anchor scales 0.07 ... 1.05 (21 ...
    315 px) with widths and heights clipped to the image, RGB minus its image_mean."""
    return _vgg('ssd_300_vgg_torchvision', ssd_params.SSD_300_VGG._replace(
        num_classes=91, anchor_sizes=ssd_params.COCO_300_ANCHOR_SIZES, anchor_clip=True,
        box_order='xy', normalization=normalization.TORCHVISION_VGG_MEAN), num_classes)


def ssd_300_vgg_ssdtf(num_classes=None):
    """SSD-Tensorflow's ssd_300_vgg (converted from the Caffe VOC models): anchors 21 ... 315
    as its ssd_vgg_300.py, RGB minus (123, 117, 104)."""
    return _vgg('ssd_300_vgg_ssdtf', ssd_params.SSD_300_VGG._replace(
        anchor_sizes=ssd_params.COCO_300_ANCHOR_SIZES, box_order='xy'), num_classes)


def ssd_512_vgg_ssdtf(num_classes=None):
    """SSD-Tensorflow's ssd_512_vgg: anchors 20.48 ... 542.72 as its ssd_vgg_512.py, RGB
    input."""
    return _vgg('ssd_512_vgg_ssdtf', ssd_params.SSD_512_VGG._replace(
        anchor_sizes=ssd_params.COCO_512_ANCHOR_SIZES, box_order='xy'), num_classes)


# MobileNetV2's training step in mixed_bfloat16, with AMX: 0.74x float32 with every op the
# rewrite converts, 1.04x with these kept float32 (docs/benchmarks/train_bfloat16_amx.json).
MOBILENET_BFLOAT16_TRAINING_FLOAT32_OPS = (
    'FusedBatchNormV3', 'FusedBatchNormGradV3', '_FusedBatchNormEx', 'Relu6', 'Relu6Grad',
    'DepthwiseConv2dNative', 'DepthwiseConv2dNativeBackpropInput',
    'DepthwiseConv2dNativeBackpropFilter')


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
                  post_processing=np_post_processing.DEFAULTS,
                  bfloat16_training_float32_ops=MOBILENET_BFLOAT16_TRAINING_FLOAT32_OPS)


_BUILDERS = {builder.__name__: builder for builder in (
    ssd_300_vgg, ssd_300_vgg_bn, ssd_512_vgg, ssd_300_mobilenet_v2,
    ssd_300_vgg_caffe_voc, ssd_300_vgg_caffe_coco, ssd_512_vgg_caffe_voc, ssd_512_vgg_caffe_coco,
    ssd_300_vgg_torchvision, ssd_300_vgg_ssdtf, ssd_512_vgg_ssdtf)}

NETWORK_NAMES = tuple(sorted(_BUILDERS))
# The networks of published detectors by the source they come from (import_weights.py
# --source): the file tells which one of them it is.
PUBLISHED_NETWORKS = {
    'caffe': ('ssd_300_vgg_caffe_voc', 'ssd_300_vgg_caffe_coco', 'ssd_512_vgg_caffe_voc',
              'ssd_512_vgg_caffe_coco'),
    'torchvision': ('ssd_300_vgg_torchvision',),
    'ssd_tensorflow': ('ssd_300_vgg_ssdtf', 'ssd_512_vgg_ssdtf'),
}
# The networks the project trains (the others differ from these only in imported data).
TRAINING_NETWORKS = tuple(name for name in NETWORK_NAMES
                          if all(name not in names for names in PUBLISHED_NETWORKS.values()))


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
