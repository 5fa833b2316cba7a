"""What is really inside an image file: format, size, channels, decodability.

The converter stores the original bytes, so the record's height, width and
channels must come from the bytes themselves (a `.jpg` may hold a PNG, a
grayscale or a CMYK JPEG). The header is read, and the pixel limit applied, by
common/images.py. Imports without TensorFlow.
"""
import collections
import io

from PIL import Image

from common import images

# Channels a decoder returns with channels=0, by Pillow mode.
_CHANNELS = {'1': 1, 'L': 1, 'I': 1, 'I;16': 1, 'I;16B': 1, 'LA': 2, 'RGB': 3,
             'YCbCr': 3, 'RGBA': 4}
# Formats stored in records (common.images reports MPO as JPEG), by record format name.
_FORMATS = {'JPEG': 'jpeg', 'PNG': 'png'}
CMYK_QUALITY = 95

ImageInfo = collections.namedtuple(
    'ImageInfo', ['encoded', 'format', 'height', 'width', 'channels', 'converted'])
ImageInfo.__doc__ = """Bytes to store and their real properties.

`format` is 'jpeg' or 'png'; `converted` is None when `encoded` are the
original bytes, else the reason they were re-encoded (CMYK JPEG only).
"""


class ImageError(ValueError):
    """Bytes that cannot be stored: not decodable or not JPEG/PNG."""


def inspect_image(data, max_pixels=images.MAX_PIXELS):
    """Reads format, size and channels of encoded image bytes and checks they decode.

    JPEG and PNG bytes are kept as they are, whatever the file's extension.
    CMYK (and YCCK) JPEGs are re-encoded as RGB JPEG (quality 95): their colours
    depend on the decoder's Adobe-marker handling and many decoders, TensorFlow
    builds among them, do not turn them into 3 channels reliably.

    Args:
      data: encoded image bytes.
      max_pixels: refused above this many pixels (the project's one limit by default).

    Returns:
      ImageInfo; height and width as stored (TensorFlow ignores EXIF orientation).

    Raises:
      ImageError: empty, truncated or corrupt data, more than max_pixels
        pixels, an unsupported format (GIF, BMP, TIFF, WebP, ...) or mode.
    """
    if not data:
        raise ImageError('empty image file')
    try:
        header = images.read_header(data, max_pixels)
    except images.NotAnImage as e:
        raise ImageError('not an image: no known image format in its first bytes') from e
    except images.UnsupportedFormat as e:
        raise _unsupported(e.format) from e
    except images.TooManyPixels as e:
        raise ImageError(str(e)) from e
    except images.ImageError as e:
        raise ImageError('cannot decode image (%s)' % e) from e
    if header.format not in _FORMATS:
        raise _unsupported(header.format)
    if header.mode == 'CMYK':
        return _cmyk_to_rgb_jpeg(data)
    channels = _channels(header)
    try:
        images.decode_image(data, header=header, min_size=(1, 1))  # a JPEG at 1/8 scale
    except images.ImageError as e:
        raise ImageError('cannot decode image (%s)' % e) from e
    return ImageInfo(data, _FORMATS[header.format], header.height, header.width, channels, None)


def _unsupported(image_format):
    return ImageError('unsupported image format %s (JPEG and PNG are stored)' % image_format)


def _channels(header):
    if header.mode == 'P':
        return 4 if header.transparency else 3
    if header.mode not in _CHANNELS:
        raise ImageError('unsupported image mode %s' % header.mode)
    return _CHANNELS[header.mode]


def _cmyk_to_rgb_jpeg(data):
    buffer = io.BytesIO()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.convert('RGB').save(buffer, 'JPEG', quality=CMYK_QUALITY)
            width, height = image.size
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError('cannot decode image (%s)' % e) from e
    return ImageInfo(buffer.getvalue(), 'jpeg', height, width, 3,
                     'CMYK JPEG re-encoded as RGB JPEG (quality %d)' % CMYK_QUALITY)
