"""Image bytes: the one header reader, format list, pixel limit and decoder of the project.

Supported are the formats both decoders of the pipeline read: OpenCV (the gRPC client, the web
app, `serving.detect_image`) and `tf.io.decode_image` in the export's `detect` signature and the
training input (TF 2.21 reads JPEG, PNG, GIF, BMP, WebP and JPEG XL). That leaves JPEG (with MPO,
the multi-picture JPEG of phone cameras: its first picture is a plain JPEG that both decoders
read), PNG, GIF (first frame), BMP and WebP. TIFF (OpenCV only) and JPEG XL (TensorFlow only) are
refused.

The header is read with Pillow (no pixels are decoded), so oversized images ("decompression
bombs") are refused before any memory is spent; pixels are decoded with OpenCV. When the caller
needs fewer pixels, JPEGs are decoded at a reduced scale (libjpeg's DCT scaling: faster and
smaller) and other formats are decoded, then averaged down at once. A truncated file is
found by the decoder itself: OpenCV refuses a JPEG or PNG whose data ends early, and data after
a JPEG's end marker (a motion photo's video, an MPO's second picture) is ignored.
EXIF orientation is honoured for JPEG and PNG (the width and height of ImageHeader are those of
the upright picture); TensorFlow ignores it, so callers re-encode rotated images for the graph.
"""
import io
import typing

import cv2
import numpy as np
from PIL import Image

# Pillow format names accepted, and their display names.
SUPPORTED_FORMATS = {'JPEG': 'JPEG', 'PNG': 'PNG', 'GIF': 'GIF', 'BMP': 'BMP', 'WEBP': 'WebP'}
# Pillow names of formats that are one of the above for every decoder.
FORMAT_ALIASES = {'MPO': 'JPEG'}
# Largest width * height accepted anywhere (web app, client, converter): 40 Mpx is a 7300x5500
# photo; decoded as RGB it is 120 MB.
MAX_PIXELS = 40_000_000
EXIF_ORIENTATION = 0x0112
# Formats whose EXIF orientation is applied (OpenCV applies it to these; TensorFlow to none).
ORIENTED_FORMATS = ('JPEG', 'PNG')
# libjpeg decodes at 1/2, 1/4 or 1/8 scale almost for free (OpenCV's IMREAD_REDUCED_* flags).
REDUCTIONS = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4,
              2: cv2.IMREAD_REDUCED_COLOR_2}
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


def format_list(conjunction='or'):
    """'JPEG, PNG, GIF, BMP or WebP': the supported formats for messages."""
    names = list(SUPPORTED_FORMATS.values())
    return '%s %s %s' % (', '.join(names[:-1]), conjunction, names[-1])


class ImageError(ValueError):
    """Image bytes that cannot be used; one subclass per reason."""


class NotAnImage(ImageError):
    """Empty data, or no image format can be identified."""


class TruncatedImage(ImageError):
    """The header is readable but the data is truncated or corrupt."""


class UnsupportedFormat(ImageError):
    """An image in a format outside SUPPORTED_FORMATS; `format` is Pillow's name."""

    def __init__(self, image_format):
        super().__init__('image format %s is not supported (supported: %s)'
                         % (image_format, format_list('and')))
        self.format = image_format


class TooManyPixels(ImageError):
    """More than `limit` pixels; `width` and `height` are None when the header was too big."""

    def __init__(self, limit, width=None, height=None):
        if width is None:
            size = 'image has too many pixels'
        else:
            size = 'image is %dx%d = %d pixels' % (width, height, width * height)
        super().__init__('%s, the limit is %d' % (size, limit))
        self.limit = limit
        self.width = width
        self.height = height


class ImageHeader(typing.NamedTuple):
    """What an image header says.

    `format` is a key of SUPPORTED_FORMATS (MPO is reported as JPEG); `width` and `height` are
    as stored in the file (what TensorFlow decodes); `orientation` is the EXIF orientation that
    decode_image applies (1 = none, 5-8 swap width and height); `mode` is Pillow's pixel mode and
    `transparency` whether a palette image has a transparent colour.
    """
    format: str
    width: int
    height: int
    orientation: int
    mode: str
    transparency: bool

    @property
    def upright_size(self):
        """(width, height) of the decoded picture, after the EXIF orientation."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def read_header(data, max_pixels=MAX_PIXELS):
    """Reads format, size and orientation without decoding pixels, and checks them.

    Args:
      data: encoded image bytes.
      max_pixels: largest width * height accepted.

    Returns:
      ImageHeader.

    Raises:
      NotAnImage, TruncatedImage (unreadable header), TooManyPixels, UnsupportedFormat.
    """
    if not data:
        raise NotAnImage('empty image data')
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = FORMAT_ALIASES.get(image.format, image.format)
            width, height = image.size
            orientation = _orientation(image, image_format)
            header = ImageHeader(image_format, width, height, orientation, image.mode,
                                 'transparency' in image.info)
    except Image.DecompressionBombError:
        raise TooManyPixels(max_pixels) from None
    except Image.UnidentifiedImageError:
        raise NotAnImage('cannot identify the image format (expected %s)' % format_list()) from None
    except _HEADER_ERRORS as e:
        raise TruncatedImage('cannot read the image header (%s)' % e) from None
    if width * height > max_pixels:
        raise TooManyPixels(max_pixels, width, height)
    if image_format not in SUPPORTED_FORMATS:
        raise UnsupportedFormat(image_format)
    return header


def _orientation(image, image_format):
    """EXIF orientation 1-8 of an open image; 1 when absent or not applied to this format."""
    # A PNG's getexif() decodes the image to look for a late eXIf chunk: only read an early one.
    if image_format not in ORIENTED_FORMATS or (image_format == 'PNG' and 'exif' not in image.info):
        return 1
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return orientation if orientation in range(1, 9) else 1


def exif_rotated(data):
    """True when decode_image turns the stored pixels (EXIF orientation other than 1)."""
    try:
        return read_header(data, max_pixels=float('inf')).orientation != 1
    except ImageError:
        return False


def upright_encoded(data, rgb):
    """Bytes that a decoder ignoring EXIF orientation (TensorFlow's) decodes upright.

    Args:
      data: the encoded image, or None when there is none (an array was given).
      rgb: the same image decoded upright, uint8 [H, W, 3].

    Returns:
      `data` itself unless it is EXIF-rotated or None, else `rgb` encoded as PNG.
    """
    if data is not None and not exif_rotated(data):
        return data
    return cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def reduction(header, min_size):
    """The largest scale-down (1, 2, 4 or 8) that keeps the upright picture at least min_size.

    Args:
      header: ImageHeader.
      min_size: (height, width) in pixels the decoded picture must keep, or None.
    """
    if min_size is None:
        return 1
    width, height = header.upright_size
    for factor in sorted(REDUCTIONS, reverse=True):
        if -(-height // factor) >= min_size[0] and -(-width // factor) >= min_size[1]:
            return factor
    return 1


def decoded_pixels(header, min_size=None):
    """Pixels decode_image holds at once for this header (a budget for concurrent decodes).

    A reduced JPEG is decoded small; other formats are decoded at full size first.
    """
    factor = reduction(header, min_size) if header.format == 'JPEG' else 1
    return -(-header.width // factor) * -(-header.height // factor)


def decode_image(data, max_pixels=MAX_PIXELS, header=None, min_size=None):
    """Decodes encoded image bytes to upright RGB uint8 [H, W, 3].

    Args:
      data: encoded image bytes.
      max_pixels: refused above this many pixels (from the header, before decoding).
      header: ImageHeader of `data` when already read (it is not read again).
      min_size: optional (height, width): return the picture at 1/2, 1/4 or 1/8 scale as long
        as it stays at least this size (see `reduction`); boxes found on the result scale back
        to the full picture by header.upright_size / result size.

    Returns:
      RGB uint8 [H, W, 3], H and W those of header.upright_size divided by the reduction
      (rounded up).

    Raises:
      ImageError: NotAnImage, TruncatedImage, TooManyPixels or UnsupportedFormat.
    """
    header = header or read_header(data, max_pixels)
    factor = reduction(header, min_size)
    flags = cv2.IMREAD_COLOR
    if header.format == 'JPEG':
        flags, factor = REDUCTIONS.get(factor, flags), 1
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise TruncatedImage('cannot decode the %s image (%dx%d): truncated or corrupt data'
                             % (header.format, header.width, header.height))
    if factor > 1:  # block averages, the size rounded up as libjpeg's
        bgr = cv2.resize(bgr, (-(-bgr.shape[1] // factor), -(-bgr.shape[0] // factor)),
                         interpolation=cv2.INTER_AREA)
    return _orient(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr), header.orientation)


def _orient(rgb, orientation):
    """Applies an EXIF orientation (1-8) to an image [H, W, C]."""
    if orientation in (2, 4, 5, 7):  # the mirrored ones: flip first, then turn like 1, 3, 8, 6
        rgb = rgb[:, ::-1]
        orientation = {2: 1, 4: 3, 5: 8, 7: 6}[orientation]
    turns = {1: 0, 3: 2, 6: 3, 8: 1}[orientation]  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(rgb, turns))
