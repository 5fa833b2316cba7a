"""evaluation.visualization: ground truth beside the detections, as PNG pictures."""
import io
import os

import numpy as np
from PIL import Image

from common import drawing, fields
from evaluation import visualization

NAMES = {0: 'background', 1: 'circle', 2: 'square'}


def _example(height=200, width=300):
    image = np.full([height, width, 3], 90, np.uint8)
    return {
        fields.IMAGE: image,
        fields.FILENAME: b'test_000007.jpg',
        fields.BOXES: np.array([[0.1, 0.1, 0.5, 0.4], [0.5, 0.5, 0.9, 0.9]], np.float32),
        fields.LABELS: np.array([1, 2]),
        fields.DIFFICULT: np.array([0, 1]),
        fields.DETECTION_BOXES: np.array([[0.1, 0.1, 0.5, 0.4], [0.6, 0.6, 0.8, 0.8],
                                          [0.0, 0.0, 1.0, 1.0]], np.float32),
        fields.DETECTION_SCORES: np.array([0.9, 0.6, 0.2], np.float32),
        fields.DETECTION_CLASSES: np.array([1, 2, 1]),
    }


def _panels(picture, width, height):
    """The two image panels of a side-by-side picture: below the title, 8 px margins."""
    top = picture.shape[0] - 8 - height
    return (picture[top:top + height, 8:8 + width],
            picture[top:top + height, 16 + width:16 + 2 * width])


def test_side_by_side_layout_and_colours():
    picture = visualization.side_by_side(_example(), NAMES, 0.5, 'test_000007.jpg (step 3)')
    width = visualization.DISPLAY_SIDE               # the longer side of the 300 x 200 image
    assert picture.dtype == np.uint8 and picture.shape[1] == 2 * width + 3 * 8
    left, right = _panels(picture, width, width * 200 // 300)
    assert tuple(left[0, 0]) == tuple(right[-1, -1]) == (90, 90, 90)   # image corners
    circle, square = drawing.class_colour(1), drawing.class_colour(2)
    # Ground truth: both classes; detections above 0.5: the circle and the square, not the
    # low-scored full-image circle (which would cover the left edge).
    for panel in (left, right):
        colours = {tuple(c) for c in panel.reshape(-1, 3)}
        assert circle in colours and square in colours
    assert tuple(right[right.shape[0] // 2, 1]) == (90, 90, 90)


def test_threshold_and_top_k_of_detections():
    example = _example()
    image = visualization._scaled(example[fields.IMAGE])  # pylint: disable=protected-access
    _, drawn = visualization.detections_panel(image, example, NAMES, 0.5)
    assert drawn == 2
    _, drawn = visualization.detections_panel(image, example, NAMES, 0.0)
    assert drawn == 3
    many = dict(example)
    many[fields.DETECTION_SCORES] = np.linspace(0.99, 0.6, 50).astype(np.float32)
    many[fields.DETECTION_BOXES] = np.tile([[0.2, 0.2, 0.6, 0.6]], [50, 1]).astype(np.float32)
    many[fields.DETECTION_CLASSES] = np.ones(50, np.int64)
    _, drawn = visualization.detections_panel(image, many, NAMES, 0.5)
    assert drawn == visualization.MAX_DETECTIONS


def test_write_pictures(tmp_path):
    examples = [_example(), dict(_example(120, 80), **{fields.FILENAME: b'a b/c?.png'})]
    written = visualization.write_pictures(str(tmp_path / 'v'), examples, NAMES, 0.5, ' (step 9)')
    assert [os.path.basename(path) for path, _, _ in written] == ['00_test_000007.png',
                                                                  '01_c_.png']
    for path, picture, png in written:
        with open(path, 'rb') as f:
            assert f.read() == png
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), picture)
    assert visualization.write_pictures(str(tmp_path / 'none'), [], NAMES) == []
    assert not os.path.exists(tmp_path / 'none')
