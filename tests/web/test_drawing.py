"""Server-side drawing of the page (common.drawing underneath) and the table's box rounding."""
import io

import numpy as np
import PIL.Image

from common import drawing as common_drawing
from web import drawing
from web.service import Upload


def test_annotate_draws_box_in_class_colour():
    upload = Upload(np.full((500, 600, 3), 255, np.uint8), (600, 500), 'white.png')
    detections = [{'class_id': 2, 'class_name': 'square', 'score': 0.8,
                   'box_px': [100, 200, 400, 450]}]
    out = PIL.Image.open(io.BytesIO(drawing.annotate(upload, detections)))
    assert out.format == 'JPEG' and out.size == (600, 500)
    pixels = np.asarray(out.convert('RGB')).astype(int)
    expected = np.array(common_drawing.class_colour(2))
    assert np.abs(pixels[325, 100] - expected).max() < 40   # left edge of the box
    assert np.abs(pixels[449, 250] - expected).max() < 40   # bottom edge (drawn inwards)
    assert pixels[325, 250].min() > 230                     # inside stays white
    assert np.abs(pixels[195, 101] - expected).max() < 40   # label background above the box


def test_annotate_a_reduced_decode_scales_boxes_down():
    """The picture was decoded at 1/8 scale: boxes in full-size pixels are drawn at 1/8."""
    upload = Upload(np.full((250, 300, 3), 255, np.uint8), (2400, 2000), 'big.jpg')
    detections = [{'class_id': 2, 'class_name': 'square', 'score': 0.8,
                   'box_px': [800, 800, 1600, 1920]}]
    out = PIL.Image.open(io.BytesIO(drawing.annotate(upload, detections)))
    assert out.size == (600, 500)   # enlarged 2x for display
    pixels = np.asarray(out.convert('RGB')).astype(int)
    expected = np.array(common_drawing.class_colour(2))
    assert np.abs(pixels[300, 200] - expected).max() < 60    # left edge at 800 / 8 * 2
    assert pixels[300, 300].min() > 220


def test_small_pictures_are_enlarged_for_legible_labels():
    upload = Upload(np.full((120, 160, 3), 255, np.uint8), (160, 120), 'small.png')
    detections = [{'class_id': 1, 'class_name': 'circle', 'score': 0.9,
                   'box_px': [20, 40, 80, 100]}]
    out = PIL.Image.open(io.BytesIO(drawing.annotate(upload, detections)))
    assert out.size == (640, 480)
    pixels = np.asarray(out.convert('RGB')).astype(int)
    assert np.abs(pixels[280, 81] - common_drawing.class_colour(1)).max() < 60  # left edge x 4


def test_display_box_rounds_half_up_like_javascript():
    """Math.round in app.js: 186.5 -> 187 (Python's round gives 186, int() truncated to 186)."""
    assert drawing.display_box([26.4, 132.5, 186.5, 255.7]) == [26, 133, 187, 256]
    assert drawing.display_box([0.0, 0.49, 2.5, 3.5]) == [0, 0, 3, 4]
