"""Server-side drawing and the per-class colours shared with app.js."""
import io

import numpy as np
import PIL.Image

from web import drawing


def test_class_colours_are_distinct_and_match_css_hsl():
    colours = [drawing.class_colour(i) for i in range(21)]
    assert len(set(colours)) == 21
    # hsl(0, 85%, 45%): lightness 0.45, chroma = (1 - |2*0.45 - 1|) * 0.85 = 0.765
    assert drawing.class_colour(0) == (212, 17, 17)
    assert drawing.class_hue(1) == 137.508
    assert drawing.class_hue(3) == (3 * 137.508) % 360


def test_annotate_draws_box_in_class_colour(images):
    data = images.encode(np.full((500, 600, 3), 255, np.uint8), 'PNG')
    detections = [{'class_id': 2, 'class_name': 'square', 'score': 0.8, 'box_px': [100, 200, 400, 450]}]
    out = PIL.Image.open(io.BytesIO(drawing.annotate(data, detections, 10**6)))
    assert out.format == 'JPEG' and out.size == (600, 500)
    pixels = np.asarray(out.convert('RGB')).astype(int)
    expected = np.array(drawing.class_colour(2))
    assert np.abs(pixels[325, 100] - expected).max() < 40   # left edge of the box
    assert np.abs(pixels[449, 250] - expected).max() < 40   # bottom edge (drawn inwards)
    assert pixels[325, 250].min() > 230                     # inside stays white
    assert np.abs(pixels[190, 101] - expected).max() < 40   # label background above the box


def test_line_and_font_size_scale_with_the_image():
    assert drawing.line_and_font_size(160, 120) == (1, 8)
    assert drawing.line_and_font_size(480, 360) == (2, 13)
    assert drawing.line_and_font_size(800, 1000) == (4, 28)
