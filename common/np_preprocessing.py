"""Evaluation preprocessing in numpy/OpenCV (no TensorFlow), for the web client.

The TF twin is `preprocessing.ssd_preprocessing.eval_preprocess_image`; both
resize bilinearly with half-pixel centres (OpenCV INTER_LINEAR on float32 ==
tf.image.resize 'bilinear') and then normalise, and agree within 1/255 of a
pixel intensity (tests/preprocessing/test_np_preprocessing.py).
"""
import cv2
import numpy as np

# Per-channel ImageNet mean in RGB order (the SSD/VGG Caffe models).
MEAN_RGB = (123.0, 117.0, 104.0)

# Input normalisations: VGG_MEAN subtracts MEAN_RGB from [0, 255] pixels (the Caffe VGG
# models); MINUS_ONE_TO_ONE maps [0, 255] to [-1, 1] (MobileNet).
VGG_MEAN = 'vgg_mean'
MINUS_ONE_TO_ONE = 'minus_one_to_one'
NORMALIZATION_KINDS = (VGG_MEAN, MINUS_ONE_TO_ONE)

# The one table of how each network expects its input. It lives here, not in nets/, so
# the TensorFlow-free client can read it; nets.ssd_params takes each network's
# `normalization` from it.
NORMALIZATION = {
    'ssd_300_vgg': VGG_MEAN,
    'ssd_300_vgg_bn': VGG_MEAN,
    'ssd_512_vgg': VGG_MEAN,
    'ssd_300_mobilenet_v2': MINUS_ONE_TO_ONE,
}


def check_normalization(normalization):
    """Raises ValueError unless `normalization` is a known kind."""
    if normalization not in NORMALIZATION_KINDS:
        raise ValueError('unknown normalization %r (expected one of %s)'
                         % (normalization, ', '.join(NORMALIZATION_KINDS)))


def normalize(image, normalization):
    """Normalises pixels in [0, 255].

    Args:
      image: float array [..., 3], RGB in [0, 255].
      normalization: 'vgg_mean' or 'minus_one_to_one'.
    Returns:
      float32 array of the same shape.
    """
    check_normalization(normalization)
    image = np.asarray(image, np.float32)
    if normalization == VGG_MEAN:
        return image - np.asarray(MEAN_RGB, np.float32)
    return image / np.float32(127.5) - np.float32(1.0)


def denormalize(image, normalization):
    """Inverse of `normalize`: float [..., 3] -> float32 RGB in [0, 255]."""
    check_normalization(normalization)
    image = np.asarray(image, np.float32)
    if normalization == VGG_MEAN:
        return image + np.asarray(MEAN_RGB, np.float32)
    return (image + np.float32(1.0)) * np.float32(127.5)


def preprocess_image(image, out_hw, normalization):
    """Resizes an RGB image bilinearly to the network size and normalises it.

    Args:
      image: uint8 array [H, W, 3], RGB.
      out_hw: (height, width) of the network input.
      normalization: 'vgg_mean' or 'minus_one_to_one'.
    Returns:
      float32 array [out_h, out_w, 3].
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError('expected an RGB image [H, W, 3], got shape %s' % (image.shape,))
    out_h, out_w = (int(v) for v in out_hw)
    resized = cv2.resize(image.astype(np.float32), (out_w, out_h),
                         interpolation=cv2.INTER_LINEAR)
    return normalize(resized, normalization)


def to_rgb_uint8(array):
    """Converts a decoded image array to RGB uint8.

    Grayscale [H, W] or [H, W, 1] is replicated to 3 channels; gray+alpha
    [H, W, 2] and RGBA [H, W, 4] drop the alpha channel (as TF's
    decode_image(channels=3) does); uint16 keeps the high byte (as
    tf.image.convert_image_dtype does); bool and float in [0, 1] are scaled to
    [0, 255].

    Args:
      array: numpy array [H, W] or [H, W, C] with C in 1..4.
    Returns:
      uint8 array [H, W, 3].
    Raises:
      ValueError: for other shapes, dtypes or out-of-range floats.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError('expected an image [H, W] or [H, W, C] with 1-4 channels, got shape %s'
                         % (array.shape,))
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = (array >> 8).astype(np.uint8)
    elif array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
            raise ValueError('float images must hold values in [0, 1]')
        pixels = np.round(array * 255.0).astype(np.uint8)
    else:
        raise ValueError('unsupported image dtype %s (expected uint8, uint16, bool or float)'
                         % array.dtype)
    channels = pixels.shape[2]
    if channels in (1, 2):
        pixels = np.repeat(pixels[:, :, :1], 3, axis=2)
    elif channels == 4:
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)
