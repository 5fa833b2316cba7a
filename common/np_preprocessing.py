"""Evaluation preprocessing in numpy/OpenCV (no TensorFlow), for the web client.

The TF twin is `preprocessing.image_ops.eval_preprocess_image`; both resize
bilinearly with half-pixel centres (OpenCV INTER_LINEAR on float32 ==
tf.image.resize 'bilinear') and then normalise (common.normalization), and agree
within 1/255 of a pixel intensity (tests/common/test_np_preprocessing.py).
"""
import cv2
import numpy as np

from common import normalization as normalization_lib


def normalize(image, normalization):
    """Normalises RGB pixels in [0, 255] for a network.

    Args:
      image: float array [..., 3], RGB in [0, 255].
      normalization: common.normalization.Normalization or its name.
    Returns:
      float32 array of the same shape, in the network's channel order.
    """
    normalization = normalization_lib.get(normalization)
    image = np.asarray(image, np.float32)
    if normalization.channel_order == 'bgr':
        image = image[..., ::-1]
    return ((image - np.asarray(normalization.mean, np.float32)) /
            np.asarray(normalization.std, np.float32))


def denormalize(image, normalization):
    """Inverse of `normalize`: float [..., 3] -> float32 RGB in [0, 255]."""
    normalization = normalization_lib.get(normalization)
    image = (np.asarray(image, np.float32) * np.asarray(normalization.std, np.float32) +
             np.asarray(normalization.mean, np.float32))
    return image[..., ::-1] if normalization.channel_order == 'bgr' else image


def preprocess_image(image, out_hw, normalization):
    """Resizes an RGB image bilinearly to the network size and normalises it.

    Args:
      image: uint8 array [H, W, 3], RGB.
      out_hw: (height, width) of the network input.
      normalization: common.normalization.Normalization or its name.
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
