"""Tests for common/images.py: header, formats, pixel limit, typed errors, (reduced) decoding."""
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from common import images


def _picture(height=60, width=80, seed=0):
    """Smooth random colours (JPEG-friendly) uint8 [H, W, 3]."""
    coarse = np.random.RandomState(seed).randint(0, 256, [4, 4, 3]).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))


def _encode(array, fmt, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _mpo(first, second):
    buffer = io.BytesIO()
    Image.fromarray(first).save(buffer, 'MPO', save_all=True,
                                append_images=[Image.fromarray(second)])
    return buffer.getvalue()


def _with_orientation(array, orientation, fmt='JPEG'):
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = orientation
    return _encode(array, fmt, exif=exif.tobytes())


def png_header_only(width, height):
    """A PNG whose header claims width x height but which holds almost no data (a 'bomb')."""
    def chunk(kind, payload):
        return (struct.pack('>I', len(payload)) + kind + payload +
                struct.pack('>I', zlib.crc32(kind + payload) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
            chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b''))


def test_imports_without_tensorflow():
    code = ('import sys; import common.images, common.drawing; '
            'assert "tensorflow" not in sys.modules, "tensorflow imported"')
    subprocess.run([sys.executable, '-c', code], check=True)


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'GIF', 'BMP', 'WEBP', 'MPO'])
def test_supported_formats_are_read_by_both_decoders(fmt):
    """OpenCV (decode_image) and the export's tf.io.decode_image read every supported format."""
    picture = _picture()
    data = _mpo(picture, picture[::-1]) if fmt == 'MPO' else _encode(picture, fmt)
    header = images.read_header(data)
    assert header.format == images.FORMAT_ALIASES.get(fmt, fmt)
    assert (header.width, header.height, header.orientation) == (80, 60, 1)
    decoded = images.decode_image(data)
    assert decoded.shape == (60, 80, 3) and decoded.dtype == np.uint8
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        graph_decoded = session.run(tf.io.decode_image(data, channels=3, expand_animations=False))
    assert graph_decoded.shape == (60, 80, 3)
    if fmt in ('PNG', 'BMP'):
        np.testing.assert_array_equal(decoded, picture)
        np.testing.assert_array_equal(graph_decoded, picture)
    else:  # lossy or palette: close to the picture
        assert np.abs(decoded.astype(int) - picture).mean() < 12


def test_tiff_is_unsupported_because_tensorflow_cannot_decode_it():
    data = _encode(_picture(), 'TIFF')
    with pytest.raises(images.UnsupportedFormat, match='TIFF is not supported') as error:
        images.read_header(data)
    assert error.value.format == 'TIFF' and 'JPEG, PNG, GIF, BMP and WebP' in str(error.value)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        with pytest.raises(tf.errors.InvalidArgumentError):
            session.run(tf.io.decode_image(data, channels=3, expand_animations=False))


def test_format_list():
    assert images.format_list() == 'JPEG, PNG, GIF, BMP or WebP'


@pytest.mark.parametrize('data, error, message', [
    (b'', images.NotAnImage, 'empty'),
    (b'%PDF-1.4 not an image', images.NotAnImage, 'cannot identify the image format'),
    (b'GIF89a but not really', images.NotAnImage, 'cannot identify'),
])
def test_not_an_image(data, error, message):
    with pytest.raises(error, match=message):
        images.read_header(data)
    with pytest.raises(images.ImageError):
        images.decode_image(data)


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
@pytest.mark.parametrize('keep', [0.66, 0.99])
def test_truncated_image_is_refused_by_the_decoder(fmt, keep):
    data = _encode(_picture(240, 320), fmt)
    cut = data[:int(len(data) * keep)]
    header = images.read_header(cut)
    with pytest.raises(images.TruncatedImage, match='truncated or corrupt'):
        images.decode_image(cut, header=header)
    with pytest.raises(images.TruncatedImage):
        images.decode_image(cut, header=header, min_size=(30, 40))


def test_progressive_jpeg_without_end_marker_is_truncated():
    data = _encode(_picture(240, 320), 'JPEG', progressive=True)
    with pytest.raises(images.TruncatedImage):
        images.decode_image(data[:-2])


def test_jpeg_with_appended_data_decodes():
    """Motion photos append a video after the end marker; random trailing bytes may hold FF DA."""
    picture = _picture(120, 160)
    data = _encode(picture, 'JPEG')
    expected = images.decode_image(data)
    rng = np.random.RandomState(1)
    for trailing in (b'\xff\xda' + rng.bytes(5000), rng.bytes(20000) + b'\xff\xda\x00\x0c',
                     b'\xff\xd8\xff\xe0' + rng.bytes(3000)):
        np.testing.assert_array_equal(images.decode_image(data + trailing), expected)


def test_mpo_is_a_jpeg_and_decodes_its_first_picture():
    first, second = _picture(seed=1), _picture(seed=2)
    data = _mpo(first, second)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == 'MPO'
    assert images.read_header(data).format == 'JPEG'
    decoded = images.decode_image(data).astype(int)
    assert np.abs(decoded - first).mean() < np.abs(decoded - second).mean()


def test_too_many_pixels_from_the_header_before_decoding(monkeypatch):
    data = png_header_only(5000, 4000)
    monkeypatch.setattr(images.cv2, 'imdecode', lambda *a: pytest.fail('decoded a bomb'))
    with pytest.raises(images.TooManyPixels) as error:
        images.decode_image(data, max_pixels=1_000_000)
    assert (error.value.width, error.value.height, error.value.limit) == (5000, 4000, 1_000_000)
    assert str(error.value) == 'image is 5000x4000 = 20000000 pixels, the limit is 1000000'
    with pytest.raises(images.TooManyPixels) as error:
        images.read_header(png_header_only(100_000, 100_000))  # beyond Pillow's own limit
    assert error.value.width is None and 'too many pixels' in str(error.value)
    assert images.read_header(png_header_only(5000, 4000), max_pixels=20_000_000).width == 5000


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_as_pillow_applies_it(orientation):
    picture = _picture(30, 50)
    data = _with_orientation(picture, orientation)
    header = images.read_header(data)
    assert header.orientation == orientation
    assert (header.width, header.height) == (50, 30)
    with Image.open(io.BytesIO(data)) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert('RGB')).astype(int)
    decoded = images.decode_image(data)
    assert decoded.shape == expected.shape
    assert header.upright_size == (decoded.shape[1], decoded.shape[0])
    assert np.abs(decoded.astype(int) - expected).mean() < 3
    assert images.exif_rotated(data) == (orientation != 1)


def test_orientation_of_png_and_not_of_webp():
    picture = _picture(30, 50)
    assert images.decode_image(_with_orientation(picture, 6, 'PNG')).shape == (50, 30, 3)
    assert images.read_header(_with_orientation(picture, 6, 'WEBP')).orientation == 1
    assert images.decode_image(_with_orientation(picture, 6, 'WEBP')).shape == (30, 50, 3)


def test_reduction_keeps_at_least_min_size():
    def header(width, height, fmt='JPEG', orientation=1):
        return images.ImageHeader(fmt, width, height, orientation, 'RGB', False)
    assert images.reduction(header(6000, 4000), (600, 600)) == 4   # 1500 x 1000
    assert images.reduction(header(6000, 4800), (600, 600)) == 8   # 750 x 600
    assert images.reduction(header(1000, 1000), (600, 600)) == 1
    assert images.reduction(header(1201, 1201), (600, 600)) == 2   # 601 x 601
    assert images.reduction(header(6000, 4000, 'PNG'), (600, 600)) == 4
    assert images.reduction(header(6000, 4000), None) == 1
    # Orientation 6 turns the picture: min_size applies to the upright (height, width).
    assert images.reduction(header(4000, 1000, orientation=6), (600, 300)) == 2  # 2000 x 500
    assert images.reduction(header(1000, 4000, orientation=6), (600, 300)) == 1
    assert images.decoded_pixels(header(6000, 4000), (600, 600)) == 1500 * 1000
    assert images.decoded_pixels(header(6000, 4000, 'PNG'), (600, 600)) == 6000 * 4000
    assert images.decoded_pixels(header(6000, 4000), None) == 6000 * 4000


def test_reduced_jpeg_decode_matches_the_full_decode_scaled():
    picture = _picture(1001, 1603)
    data = _encode(picture, 'JPEG', quality=95)
    reduced = images.decode_image(data, min_size=(200, 200))   # factor 4, sizes rounded up
    assert reduced.shape == (251, 401, 3)
    full = images.decode_image(data).astype(np.float32)
    assert np.abs(reduced[:250, :400] - full[:1000, :1600].reshape(250, 4, 400, 4, 3)
                  .mean(axis=(1, 3))).mean() < 3


@pytest.mark.parametrize('fmt', ['PNG', 'BMP', 'GIF'])
def test_other_formats_are_decoded_then_averaged_down(fmt):
    picture = np.repeat(np.repeat(_picture(30, 41), 4, axis=0), 4, axis=1)   # 4x4 blocks
    if fmt == 'GIF':
        picture = np.asarray(Image.fromarray(picture).quantize(64).convert('RGB'))
    reduced = images.decode_image(_encode(picture, fmt), min_size=(30, 40))
    assert reduced.shape == (30, 41, 3)
    np.testing.assert_allclose(reduced, picture[::4, ::4], atol=1)


def test_reduced_decode_honours_orientation():
    data = _with_orientation(_picture(400, 800), 6)
    assert images.decode_image(data, min_size=(150, 80)).shape == (200, 100, 3)
