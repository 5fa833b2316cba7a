"""Geometry and input of the SSD networks as data (pure Python, no TensorFlow).

Sizes and steps are in pixels of the network input. SSD300 and SSD512 follow the
original Caffe release of Liu et al. (2016); the builders of nets_factory derive every
registered network from these two. What differs between the published detectors the
project imports (importers/) is data here too: their anchor sizes, the clipping of anchor
sizes, the order of the box offsets their heads predict and their input normalisation.
"""
import collections

from common import normalization as normalization_lib

SSDParams = collections.namedtuple('SSDParams', [
    'img_shape',        # (height, width) of the network input.
    'num_classes',      # Including background (class 0).
    'feat_layers',      # End-point names of the feature layers, in output order.
    'feat_shapes',      # (height, width) of each feature layer.
    'anchor_sizes',     # Per layer (min_size, max_size) in pixels.
    'anchor_ratios',    # Per layer the aspect ratios (w/h) besides 1.
    'anchor_steps',     # Per layer the cell step in pixels.
    'anchor_offset',    # Cell centre offset in cells (0.5).
    'prior_scaling',    # Box coding variances (y, x, h, w).
    'normalization',    # Input normalisation: a common.normalization.Normalization.
    'box_order',        # Offsets the heads predict: 'yx' (dy, dx, dh, dw) or 'xy' (dx, dy, dw,
                        # dh: Caffe, torchvision, SSD-Tensorflow); SSDNet.net returns 'yx'.
    'anchor_clip',      # Clip each anchor's width and height to the image (torchvision).
])

BOX_ORDERS = ('yx', 'xy')

PRIOR_SCALING = (0.1, 0.1, 0.2, 0.2)
_R2 = (2.0, 0.5)
_R3 = (2.0, 0.5, 3.0, 1.0 / 3.0)

SSD_300_VGG = SSDParams(
    img_shape=(300, 300),
    num_classes=21,
    feat_layers=('conv4_3', 'conv7', 'conv8', 'conv9', 'conv10', 'conv11'),
    feat_shapes=((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)),
    anchor_sizes=((30., 60.), (60., 111.), (111., 162.), (162., 213.), (213., 264.),
                  (264., 315.)),
    anchor_ratios=(_R2, _R3, _R3, _R3, _R2, _R2),
    anchor_steps=(8, 16, 32, 64, 100, 300),
    anchor_offset=0.5,
    prior_scaling=PRIOR_SCALING,
    normalization=normalization_lib.VGG_MEAN,
    box_order='yx',
    anchor_clip=False,
)

SSD_512_VGG = SSDParams(
    img_shape=(512, 512),
    num_classes=21,
    feat_layers=('conv4_3', 'conv7', 'conv8', 'conv9', 'conv10', 'conv11', 'conv12'),
    feat_shapes=((64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)),
    anchor_sizes=((35.84, 76.8), (76.8, 153.6), (153.6, 230.4), (230.4, 307.2),
                  (307.2, 384.0), (384.0, 460.8), (460.8, 537.6)),
    anchor_ratios=(_R2, _R3, _R3, _R3, _R3, _R2, _R2),
    anchor_steps=(8, 16, 32, 64, 128, 256, 512),
    anchor_offset=0.5,
    prior_scaling=PRIOR_SCALING,
    normalization=normalization_lib.VGG_MEAN,
    box_order='yx',
    anchor_clip=False,
)

# The COCO models of the Caffe release (ssd_coco.py: conv4_3 at 7% of the input, then 15% to 90%
# in even steps; SSD512: 4% and 10% to 90%), which SSD-Tensorflow also uses for its
# VOC checkpoints and torchvision's ssd300_vgg16 as scales 0.07 ... 1.05.
COCO_300_ANCHOR_SIZES = ((21., 45.), (45., 99.), (99., 153.), (153., 207.), (207., 261.),
                         (261., 315.))
COCO_512_ANCHOR_SIZES = ((20.48, 51.2), (51.2, 133.12), (133.12, 215.04), (215.04, 296.96),
                         (296.96, 378.88), (378.88, 460.8), (460.8, 542.72))


def geometry(params):
    """The anchor set and box coding of `params` as JSON-ready data (the export manifest's
    `anchors` and `box_coding`)."""
    return {
        'anchors': {'sizes': [[float(v) for v in sizes] for sizes in params.anchor_sizes],
                    'ratios': [[float(r) for r in ratios] for ratios in params.anchor_ratios],
                    'steps': [float(step) for step in params.anchor_steps],
                    'offset': float(params.anchor_offset), 'clip': bool(params.anchor_clip)},
        'box_coding': {'order': params.box_order,
                       'variances': [float(v) for v in params.prior_scaling]},
    }
