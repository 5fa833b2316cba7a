"""Geometry and input of the SSD networks as data (pure Python, no TensorFlow).

Sizes and steps are in pixels of the network input. SSD300 and SSD512 follow the
original Caffe release of Liu et al. (2016); the builders of nets_factory derive every
registered network from these two.
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
])

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
)
