"""Image resampling and normalisation shared by training and evaluation (TF)."""
import tensorflow as tf

from common import normalization as normalization_lib

FULL_WINDOW = (0.0, 0.0, 1.0, 1.0)


def _sampling_box(window_lo, window_hi, size, out_size):
    """Maps a window side to tf.image.crop_and_resize box coordinates.

    crop_and_resize samples output pixel i at lo * (n - 1) + i * (hi - lo) *
    (n - 1) / (out - 1) on an n-pixel axis; the image is padded by one pixel,
    so n = size + 2. Choosing lo, hi as below samples at the half-pixel
    centres of tf.image.resize('bilinear'): input pixel coordinate
    (window_lo + (i + 0.5) * extent / out) * size - 0.5.
    """
    extent = window_hi - window_lo
    lo = (window_lo * size + 0.5 + 0.5 * extent * size / out_size) / (size + 1.0)
    hi = lo + extent * size * (out_size - 1.0) / out_size / (size + 1.0)
    return lo, hi


def crop_and_resize_image(image, window, out_hw, fill_rgb=normalization_lib.MEAN_RGB):
    """Resamples a window of an image bilinearly to a fixed size.

    With window [0, 0, 1, 1] this equals tf.image.resize(image, out_hw)
    (bilinear, half-pixel centres). Parts of the window outside the image are
    filled with `fill_rgb` (samples less than one input pixel outside take the
    edge value, like tf.image.resize's clamping); a window with xmin > xmax
    mirrors the image.

    Args:
      image: uint8 or float [H, W, 3], RGB in [0, 255].
      window: float32 [4] ymin, xmin, ymax, xmax in the image's normalised
        coordinates (may extend beyond [0, 1]).
      out_hw: (height, width) python ints.
      fill_rgb: 3 floats.
    Returns:
      float32 [out_h, out_w, 3] in [0, 255].
    """
    out_h, out_w = out_hw
    fill = tf.constant(fill_rgb, tf.float32)
    # Subtracting the fill makes crop_and_resize's zero extrapolation the fill colour;
    # the one-pixel edge padding reproduces tf.image.resize's clamping at the borders.
    padded = tf.pad(tf.cast(image, tf.float32) - fill, [[1, 1], [1, 1], [0, 0]], mode='SYMMETRIC')
    shape = tf.cast(tf.shape(image), tf.float32)
    window = tf.cast(window, tf.float32)
    ymin, ymax = _sampling_box(window[0], window[2], shape[0], float(out_h))
    xmin, xmax = _sampling_box(window[1], window[3], shape[1], float(out_w))
    box = tf.stack([ymin, xmin, ymax, xmax])[None, :]
    resized = tf.image.crop_and_resize(padded[None], box, tf.zeros([1], tf.int32), [out_h, out_w],
                                       method='bilinear', extrapolation_value=0.0)[0]
    return resized + fill


def normalize_image(image, normalization):
    """TF twin of np_preprocessing.normalize: float RGB [..., 3] in [0, 255] -> float32
    [..., 3] in the network's channel order (`normalization`: a Normalization or its name)."""
    normalization = normalization_lib.get(normalization)
    image = tf.cast(image, tf.float32)
    if normalization.channel_order == 'bgr':
        image = image[..., ::-1]
    return ((image - tf.constant(normalization.mean, tf.float32)) /
            tf.constant(normalization.std, tf.float32))


def eval_preprocess_image(image, out_hw, normalization):
    """Evaluation preprocessing: resize to the network size and normalise.

    The same function serves evaluation and the export's `detect` signature;
    np_preprocessing.preprocess_image is its numpy twin.

    Args:
      image: uint8 [H, W, 3] RGB.
      out_hw: (height, width) python ints.
      normalization: common.normalization.Normalization or its name.
    Returns:
      float32 [out_h, out_w, 3].
    """
    resized = crop_and_resize_image(image, tf.constant(FULL_WINDOW), out_hw)
    return normalize_image(resized, normalization)
