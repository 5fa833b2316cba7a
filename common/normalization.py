"""Input normalisations of the SSD networks, as data (no TensorFlow).

A network's input is `(pixels[..., channel order] - mean) / std`, from RGB pixels in [0, 255].
The numbers travel with every export (its manifest), so a client normalises as the network
needs without knowing the network. Every kind the networks use is defined here once, by name.
"""
import collections

import numpy as np

CHANNEL_ORDERS = ('rgb', 'bgr')

Normalization = collections.namedtuple('Normalization', [
    'name',           # Short name ('vgg_mean', ...); train_info.json records it.
    'mean',           # 3 floats, subtracted per channel (in channel_order), on [0, 255].
    'std',            # 3 floats, dividing per channel after the mean.
    'channel_order',  # 'rgb' or 'bgr': the channel order the network's first layer expects.
])

# Per-channel ImageNet mean of the Caffe VGG models, in RGB order.
MEAN_RGB = (123.0, 117.0, 104.0)

# The Caffe VGG models as SSD-Tensorflow and this project feed them: RGB minus the mean.
VGG_MEAN = Normalization('vgg_mean', MEAN_RGB, (1.0, 1.0, 1.0), 'rgb')
# MobileNet: [0, 255] to [-1, 1].
MINUS_ONE_TO_ONE = Normalization('minus_one_to_one', (127.5,) * 3, (127.5,) * 3, 'rgb')
# The SSD authors' Caffe models: BGR images (OpenCV's order) minus transform_param's
# mean_value 104, 117, 123.
CAFFE_BGR_MEAN = Normalization('caffe_bgr_mean', (104.0, 117.0, 123.0), (1.0, 1.0, 1.0), 'bgr')
# torchvision's ssd300_vgg16: its transform takes [0, 1] pixels, subtracts image_mean
# (0.48235, 0.45882, 0.40784) and divides by image_std 1/255: on [0, 255] pixels, the mean
# times 255 (122.99925, 116.9991, 103.9992) and std 1.
TORCHVISION_VGG_MEAN = Normalization('torchvision_vgg_mean',
                                     tuple(255.0 * m for m in (0.48235, 0.45882, 0.40784)),
                                     (1.0, 1.0, 1.0), 'rgb')

KINDS = {n.name: n for n in (VGG_MEAN, MINUS_ONE_TO_ONE, CAFFE_BGR_MEAN, TORCHVISION_VGG_MEAN)}


class NormalizationError(ValueError):
    """An unknown or malformed normalisation; the message names the field."""


def get(value):
    """A Normalization from itself or its registered name.

    Raises:
      NormalizationError: an unknown name or another type.
    """
    if isinstance(value, Normalization):
        return value
    if isinstance(value, str) and value in KINDS:
        return KINDS[value]
    raise NormalizationError('unknown normalization %r (expected one of %s)'
                             % (value, ', '.join(sorted(KINDS))))


def to_dict(normalization):
    """JSON-ready {'name', 'mean', 'std', 'channel_order'}."""
    normalization = get(normalization)
    return {'name': normalization.name, 'mean': [float(v) for v in normalization.mean],
            'std': [float(v) for v in normalization.std],
            'channel_order': normalization.channel_order}


def from_dict(data):
    """The Normalization a to_dict() mapping describes.

    Raises:
      NormalizationError: naming the missing or invalid field.
    """
    if not isinstance(data, dict):
        raise NormalizationError('normalization must be an object, got %r' % (data,))
    missing = [field for field in Normalization._fields if field not in data]
    if missing:
        raise NormalizationError('normalization: missing field(s) %s' % ', '.join(missing))
    if not isinstance(data['name'], str) or not data['name']:
        raise NormalizationError('normalization.name must be a non-empty string')
    values = {}
    for field in ('mean', 'std'):
        numbers = data[field]
        if (not isinstance(numbers, (list, tuple)) or len(numbers) != 3 or
                not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and np.isfinite(v) for v in numbers)):
            raise NormalizationError('normalization.%s must be 3 finite numbers, got %r'
                                     % (field, numbers))
        values[field] = tuple(float(v) for v in numbers)
    if not all(v > 0 for v in values['std']):
        raise NormalizationError('normalization.std must be > 0, got %r' % (values['std'],))
    if data['channel_order'] not in CHANNEL_ORDERS:
        raise NormalizationError('normalization.channel_order must be one of %s, got %r'
                                 % (', '.join(CHANNEL_ORDERS), data['channel_order']))
    return Normalization(data['name'], values['mean'], values['std'], data['channel_order'])

