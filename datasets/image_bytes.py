"""What is really inside an image file: format, size, channels, decodability.

The converter stores the original bytes, so the record's height, width and
channels must come from the bytes themselves (a `.jpg` may hold a PNG, a
grayscale or a CMYK JPEG). Imports without TensorFlow.
"""
import collections
import io

from PIL import Image

# Channels a decoder returns with channels=0, by Pillow mode.
_CHANNELS = {'1': 1, 'L': 1, 'I': 1, 'I;16': 1, 'I;16B': 1, 'LA': 2, 'RGB': 3,
             'YCbCr': 3, 'RGBA': 4}
_FORMATS = {'JPEG': 'jpeg', 'MPO': 'jpeg', 'PNG': 'png'}
CMYK_QUALITY = 95

ImageInfo = collections.namedtuple(
    'ImageInfo', ['encoded', 'format', 'height', 'width', 'channels', 'converted'])
ImageInfo.__doc__ = """Bytes to store and their real properties.

`format` is 'jpeg' or 'png'; `converted` is None when `encoded` are the
original bytes, else the reason they were re-encoded (CMYK JPEG only).
"""


class ImageError(ValueError):
    """Bytes that cannot be stored: not decodable or not JPEG/PNG."""


def inspect_image(data):
    """Reads format, size and channels of encoded image bytes and checks they decode.

    JPEG and PNG bytes are kept as they are, whatever the file's extension.
    CMYK (and YCCK) JPEGs are re-encoded as RGB JPEG (quality 95): their colours
    depend on the decoder's Adobe-marker handling and many decoders, TensorFlow
    builds among them, do not turn them into 3 channels reliably.

    Args:
      data: encoded image bytes.

    Returns:
      ImageInfo.

    Raises:
      ImageError: empty, truncated or corrupt data, an unsupported format
        (GIF, BMP, TIFF, WebP, ...) or mode.
    """
    if not data:
        raise ImageError('empty image file')
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            width, height = image.size
            mode = image.mode
            if kind not in _FORMATS:
                raise ImageError('unsupported image format %s (JPEG and PNG are stored)' % kind)
            if mode == 'CMYK':
                return _cmyk_to_rgb_jpeg(image)
            channels = _channels(image)
            if _FORMATS[kind] == 'jpeg':
                image.draft(mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError('cannot decode image (%s)' % e) from e
    return ImageInfo(data, _FORMATS[kind], height, width, channels, None)


def _channels(image):
    if image.mode == 'P':
        return 4 if 'transparency' in image.info else 3
    if image.mode not in _CHANNELS:
        raise ImageError('unsupported image mode %s' % image.mode)
    return _CHANNELS[image.mode]


def _cmyk_to_rgb_jpeg(image):
    buffer = io.BytesIO()
    image.convert('RGB').save(buffer, 'JPEG', quality=CMYK_QUALITY)
    width, height = image.size
    return ImageInfo(buffer.getvalue(), 'jpeg', height, width, 3,
                     'CMYK JPEG re-encoded as RGB JPEG (quality %d)' % CMYK_QUALITY)
