"""Reading one uploaded image from a request and refusing bad ones before they are decoded."""
import io

import PIL.Image

from web.errors import UploadError

FORM_FIELD = 'image'
# Formats the detector's decoder (OpenCV) reads, as PIL names them.
SUPPORTED_FORMATS = ('JPEG', 'PNG', 'BMP', 'WEBP', 'TIFF')
MAX_FILENAME_CHARS = 200  # file names are only displayed
_JPEG_SOS = b'\xff\xda'
_JPEG_EOI = b'\xff\xd9'


def read_image_bytes(request, max_upload_bytes):
    """Returns (bytes, filename) of the image in a request.

    Accepts a multipart form with the file in field `image`, or a raw body
    with an `image/*` content type. The filename is for display only.

    Raises:
      UploadError: 400 no file / empty file, 413 too large, 415 content type.
    """
    mimetype = request.mimetype
    if mimetype == 'multipart/form-data':
        upload = request.files.get(FORM_FIELD)
        data = upload.read() if upload is not None else b''
        filename = (upload.filename or '')[:MAX_FILENAME_CHARS] if upload is not None else ''
        if not data and not filename:
            raise UploadError(400, 'no_file', f'No file: choose an image (form field "{FORM_FIELD}").')
    elif mimetype.startswith('image/'):
        data, filename = request.get_data(cache=False), ''
    elif mimetype == 'application/x-www-form-urlencoded' or not (mimetype or request.content_length):
        raise UploadError(400, 'no_file', f'No file: send an image as multipart field "{FORM_FIELD}" '
                                          'or as the request body with an image/* content type.')
    else:
        raise UploadError(415, 'unsupported_content_type',
                          f'Unsupported content type {mimetype!r}: send multipart/form-data with field '
                          f'"{FORM_FIELD}" or the raw image with an image/* content type.')
    if not data:
        raise UploadError(400, 'empty_file', _named('The file', filename) + ' is empty.')
    if len(data) > max_upload_bytes:
        raise UploadError(413, 'file_too_large', _named('The image', filename) +
                          f' is {len(data) / 2**20:.1f} MB; the limit is {max_upload_bytes / 2**20:g} MB.')
    return data, filename


def check_image(data, filename, max_pixels):
    """Reads only the image header and refuses what the decoder must not see.

    Args:
      data: the uploaded bytes.
      filename: shown in messages only.
      max_pixels: largest width * height accepted (decompression bombs).

    Returns:
      (format, width, height) as stored in the header (before EXIF rotation).

    Raises:
      UploadError: 400 not an image / truncated, 413 too many pixels, 415 format.
    """
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image_format, (width, height) = image.format, image.size
            if width * height <= max_pixels and image_format == 'PNG':
                image.verify()
    except PIL.Image.DecompressionBombError:
        raise _too_many_pixels(filename, max_pixels) from None
    except PIL.UnidentifiedImageError:
        raise UploadError(400, 'not_an_image', _named('The file', filename) +
                          ' is not an image (expected JPEG, PNG, BMP, WebP or TIFF).') from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _truncated(filename) from None
    if width * height > max_pixels:
        raise _too_many_pixels(filename, max_pixels, width, height)
    if image_format not in SUPPORTED_FORMATS:
        raise UploadError(415, 'unsupported_image_format', _named('The image', filename) +
                          f' is {image_format}; supported are JPEG, PNG, BMP, WebP and TIFF.')
    if image_format == 'JPEG' and data.find(_JPEG_EOI, data.rfind(_JPEG_SOS)) < 0:
        raise _truncated(filename)
    return image_format, width, height


def _named(what, filename):
    return f'{what} "{filename}"' if filename else what


def _truncated(filename):
    return UploadError(400, 'truncated_image', _named('The image', filename) +
                       ' is truncated or corrupt and cannot be decoded.')


def _too_many_pixels(filename, max_pixels, width=None, height=None):
    size = f' is {width}x{height} = {width * height:,} pixels;' if width else ' has too many pixels;'
    return UploadError(413, 'too_many_pixels', _named('The image', filename) + size +
                       f' the limit is {max_pixels:,} pixels.')
