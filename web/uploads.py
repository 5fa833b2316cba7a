"""Reading one uploaded image from a request and refusing bad ones before they are decoded."""
import io

import flask
from werkzeug import exceptions, formparser

from common import images
from web.errors import FormLimitExceeded, UploadError

FORM_FIELD = 'image'
MAX_FILENAME_CHARS = 200  # file names are only displayed


class _BoundaryCounter:
    """Wraps a multipart body stream, counting the part boundaries read so far."""

    def __init__(self, stream, boundary):
        self._stream = stream
        self._markers = {'all': b'--' + boundary, 'closing': b'--' + boundary + b'--'}
        self._tails = dict.fromkeys(self._markers, b'')
        self.counts = dict.fromkeys(self._markers, 0)

    def read(self, size=-1):
        data = self._stream.read(size)
        for name, marker in self._markers.items():
            window = self._tails[name] + data
            self.counts[name] += window.count(marker)
            self._tails[name] = window[-(len(marker) - 1):]
        return data

    @property
    def parts(self):
        return self.counts['all'] - self.counts['closing']


class _LimitNamingParser(formparser.FormDataParser):
    """Says which of Flask's form limits a refused multipart form exceeded."""

    def _parse_multipart(self, stream, mimetype, content_length, options):
        counter = _BoundaryCounter(stream, options.get('boundary', '').encode('ascii'))
        try:
            return super()._parse_multipart(counter, mimetype, content_length, options)
        except FormLimitExceeded:
            raise
        except exceptions.RequestEntityTooLarge:
            if self.max_form_parts is not None and counter.parts > self.max_form_parts:
                raise FormLimitExceeded('too_many_form_parts', (
                    f'The form has more than {self.max_form_parts:,} parts (Flask\'s '
                    f'MAX_FORM_PARTS); send one image in field "{FORM_FIELD}".')) from None
            raise FormLimitExceeded('form_field_too_large', (
                f'A form field other than a file is larger than '
                f'{self.max_form_memory_size:,} bytes (Flask\'s MAX_FORM_MEMORY_SIZE); '
                f'send the image as a file in field "{FORM_FIELD}".')) from None


class UploadRequest(flask.Request):
    """Keeps uploaded files in memory and names the form limit a refused form exceeded.

    (werkzeug spools large parts to temporary files and answers every form limit with the
    same 413.)
    """

    form_data_parser_class = _LimitNamingParser

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        return io.BytesIO()


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
            raise UploadError(400, 'no_file',
                              f'No file: choose an image (form field "{FORM_FIELD}").',
                              page_message='Choose an image first, then press Detect.')
    elif mimetype.startswith('image/'):
        data, filename = request.get_data(cache=False), ''
    elif (mimetype == 'application/x-www-form-urlencoded' or
          not (mimetype or request.content_length)):
        raise UploadError(400, 'no_file',
                          f'No file: send an image as multipart field "{FORM_FIELD}" or as the '
                          'request body with an image/* content type.',
                          page_message='Choose an image first, then press Detect.')
    else:
        raise UploadError(415, 'unsupported_content_type',
                          f'Unsupported content type {mimetype!r}: send multipart/form-data with '
                          f'field "{FORM_FIELD}" or the raw image with an image/* content type.')
    if not data:
        raise UploadError(400, 'empty_file', _named('The file', filename) + ' is empty.')
    if len(data) > max_upload_bytes:
        raise UploadError(413, 'file_too_large', _named('The image', filename) +
                          f' is {len(data) / 2**20:.1f} MB; the limit is '
                          f'{max_upload_bytes / 2**20:g} MB.')
    return data, filename


def read_header(data, filename, max_pixels):
    """Reads the image header (no pixels) and refuses what the decoder must not see.

    Returns:
      common.images.ImageHeader.

    Raises:
      UploadError: 400 not an image / truncated, 413 too many pixels, 415 format.
    """
    try:
        return images.read_header(data, max_pixels)
    except images.ImageError as e:
        raise image_error(e, filename) from None


def image_error(error, filename):
    """The UploadError (400, 413 or 415) for a common.images.ImageError."""
    if isinstance(error, images.NotAnImage):
        return UploadError(400, 'not_an_image', _named('The file', filename) +
                           f' is not an image (expected {images.format_list()}).')
    if isinstance(error, images.TooManyPixels):
        size = (f' is {error.width}x{error.height} = {error.width * error.height:,} pixels;'
                if error.width else ' has too many pixels;')
        return UploadError(413, 'too_many_pixels', _named('The image', filename) + size +
                           f' the limit is {error.limit:,} pixels.')
    if isinstance(error, images.UnsupportedFormat):
        return UploadError(415, 'unsupported_image_format', _named('The image', filename) +
                           f' is {error.format}; supported are {images.format_list("and")}.')
    if isinstance(error, images.TruncatedImage):
        return UploadError(400, 'truncated_image', _named('The image', filename) +
                           ' is truncated or corrupt and cannot be decoded.')
    return UploadError(400, 'invalid_image', _named('The image', filename) +
                       f' cannot be used: {error}.')


def _named(what, filename):
    return f'{what} "{filename}"' if filename else what
