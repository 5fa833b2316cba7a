import inspect
import io

import numpy as np
import pytest
from PIL import Image

from common import images
from datasets import image_bytes


def encode(mode, size=(40, 30), fmt='JPEG', color=None, **kwargs):
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize('mode, fmt, kind, channels', [
    ('RGB', 'JPEG', 'jpeg', 3),
    ('L', 'JPEG', 'jpeg', 1),
    ('RGB', 'PNG', 'png', 3),
    ('RGBA', 'PNG', 'png', 4),
    ('L', 'PNG', 'png', 1),
    ('P', 'PNG', 'png', 3),
    ('I;16', 'PNG', 'png', 1),
])
def test_bytes_are_kept_and_properties_come_from_the_image(mode, fmt, kind, channels):
    data = encode(mode, fmt=fmt)
    info = image_bytes.inspect_image(data)
    assert info.encoded is data and info.converted is None
    assert (info.format, info.height, info.width, info.channels) == (kind, 30, 40, channels)


def test_cmyk_jpeg_is_reencoded_as_rgb_jpeg():
    data = encode('CMYK', color=(0, 255, 255, 0))  # pure red
    info = image_bytes.inspect_image(data)
    assert info.encoded != data and 'CMYK' in info.converted
    assert (info.format, info.height, info.width, info.channels) == ('jpeg', 30, 40, 3)
    with Image.open(io.BytesIO(info.encoded)) as image:
        assert image.mode == 'RGB'
        red = np.asarray(image)[15, 20]
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


@pytest.mark.parametrize('data, message', [
    (b'', 'empty'),
    (b'not an image at all', 'not an image: no known image format'),
    (encode('RGB', size=(64, 64), fmt='JPEG')[:300], 'cannot decode'),
    (encode('RGB', fmt='GIF'), 'unsupported image format GIF'),
    (encode('RGB', fmt='BMP'), 'unsupported image format BMP'),
])
def test_unusable_bytes_raise_image_error(data, message):
    with pytest.raises(image_bytes.ImageError, match=message):
        image_bytes.inspect_image(data)


def test_mpo_is_stored_as_jpeg():
    """Phone cameras write MPO: its first picture is a JPEG that every decoder reads."""
    buffer = io.BytesIO()
    first = Image.new('RGB', (40, 30), (200, 10, 10))
    first.save(buffer, 'MPO', save_all=True, append_images=[Image.new('RGB', (40, 30))])
    data = buffer.getvalue()
    info = image_bytes.inspect_image(data)
    assert info.encoded is data and (info.format, info.height, info.width) == ('jpeg', 30, 40)


def test_pixel_limit_of_common_images():
    with pytest.raises(image_bytes.ImageError, match='40x30 = 1200 pixels, the limit is 1000'):
        image_bytes.inspect_image(encode('RGB', fmt='PNG'), max_pixels=1000)
    assert inspect.signature(image_bytes.inspect_image).parameters[
        'max_pixels'].default == images.MAX_PIXELS
