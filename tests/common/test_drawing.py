"""Tests for common/drawing.py: palette, label contrast, label placement, drawn pixels."""
import numpy as np
import pytest

from common import drawing


def _lab(rgb):
    """CIELAB (D65) of an sRGB uint8 colour."""
    channels = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ linear / [0.95047, 1.0, 1.08883]
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_neighbouring_classes_get_clearly_different_colours():
    colours = [drawing.class_colour(class_id) for class_id in range(1, 41)]
    assert len(set(colours[:len(drawing.PALETTE)])) == len(drawing.PALETTE)
    for first, second in zip(colours, colours[1:]):
        assert np.linalg.norm(_lab(first) - _lab(second)) > 55, (first, second)
    assert drawing.class_colour(1) == (0xf3, 0xc3, 0x00)
    assert drawing.class_colour(1 + len(drawing.PALETTE)) == drawing.class_colour(1)


def test_label_text_meets_wcag_contrast_on_every_class_colour():
    for class_id in range(1, len(drawing.PALETTE) + 1):
        background = drawing.class_colour(class_id)
        assert drawing.contrast_ratio(drawing.text_colour(background), background) >= 4.5


def test_white_on_yellow_was_weak():
    """The old labels: white text on yellow (hsl 55, 85%, 45%) reached only about 1.7."""
    assert drawing.contrast_ratio(drawing.WHITE, (212, 193, 17)) < 2
    assert drawing.text_colour((212, 193, 17)) == drawing.BLACK
    assert drawing.text_colour((0, 0, 128)) == drawing.WHITE


def test_contrast_ratio_hand_values():
    assert drawing.contrast_ratio(drawing.BLACK, drawing.WHITE) == pytest.approx(21.0)
    assert drawing.contrast_ratio((119, 119, 119), drawing.WHITE) == pytest.approx(4.48, abs=0.01)
    assert drawing.relative_luminance(drawing.WHITE) == pytest.approx(1.0)


def test_palette_array_and_hex():
    array = drawing.palette_array()
    assert array.shape == (len(drawing.PALETTE), 3) and array.dtype == np.float32
    assert array.min() >= 0 and array.max() <= 1
    assert drawing.hex_colour(drawing.class_colour(2)) == drawing.PALETTE[1]


def test_line_and_font_size_scale_with_the_image():
    assert drawing.line_and_font_size(160, 120) == (1, drawing.MIN_FONT_PX)
    assert drawing.line_and_font_size(480, 360) == (2, 13)
    assert drawing.line_and_font_size(800, 1000) == (4, 28)


def test_label_rectangle_above_the_box_or_inside_at_the_top():
    assert drawing.label_rectangle([10, 50, 90, 90], (30, 12), 2, (200, 200)) == [10, 34, 44, 50]
    assert drawing.label_rectangle([10, 5, 90, 90], (30, 12), 2, (200, 200)) == [10, 5, 44, 21]
    assert drawing.label_rectangle([10, 195, 90, 200], (30, 12), 2, (200, 20)) == [10, 4, 44, 20]
    assert drawing.label_rectangle([180, 50, 199, 90], (30, 12), 2, (200, 200)) == [
        166, 34, 200, 50]  # moved left to stay inside


def test_choose_labels_by_score_without_overlap_and_at_most_max():
    rectangles = [[0, 0, 10, 10], [5, 5, 15, 15], [20, 0, 30, 10], [40, 0, 50, 10]]
    assert drawing.choose_labels(rectangles, [0.5, 0.9, 0.8, 0.1]) == {1, 2, 3}
    assert drawing.choose_labels(rectangles, [0.5, 0.9, 0.8, 0.1], max_labels=2) == {1, 2}
    crowd = [[i, i, i + 30, i + 10] for i in range(100)]
    chosen = drawing.choose_labels(crowd, list(np.linspace(1, 0, 100)))
    assert len(chosen) <= drawing.MAX_LABELS and 0 in chosen
    assert not any(drawing._overlaps(crowd[a], crowd[b]) for a in chosen for b in chosen if a < b)


def test_draw_boxes_pixels():
    image = np.full((500, 600, 3), 255, np.uint8)
    out = drawing.draw_boxes(image, [[100, 200, 400, 450]], [2], ['square 0.80'])
    assert out.shape == image.shape and image.min() == 255  # a copy
    colour = np.array(drawing.class_colour(2))   # purple: white text and outline
    line, _ = drawing.line_and_font_size(600, 500)
    assert (out[325, 100:100 + line] == colour).all()          # left edge, drawn inwards
    assert (out[450 - line + 1:451, 250] == colour).all()       # bottom edge (inclusive)
    assert (out[325, 100 + line] == drawing.WHITE).all()        # 1 px outline inside
    assert (out[325, 99] == drawing.WHITE).all()                # and outside
    assert (out[325, 250] == 255).all()                         # inside stays white
    label = out[190:199, 101:140].reshape(-1, 3)
    assert (label == colour).all(axis=1).mean() > 0.5           # label background above the box
    assert (label == drawing.WHITE).all(axis=1).any()           # white text on purple


def test_draw_boxes_yellow_label_has_black_text_and_outline():
    image = np.full((300, 300, 3), 255, np.uint8)
    out = drawing.draw_boxes(image, [[50, 100, 250, 250]], [1], ['circle 0.9'])
    assert (out[150, 49] == drawing.BLACK).all()
    label = out[93:99, 51:80].reshape(-1, 3).astype(int)
    assert (label == drawing.class_colour(1)).all(axis=1).mean() > 0.3
    assert (label.max(axis=1) < 60).any()   # dark text


def test_draw_boxes_labels_only_the_best_when_crowded():
    image = np.zeros((400, 400, 3), np.uint8)
    boxes = [[5 + 3 * i, 40 + 3 * i, 200 + 3 * i, 300] for i in range(50)]
    scores = list(np.linspace(0.9, 0.1, 50))
    out = drawing.draw_boxes(image, boxes, [1 + i % 5 for i in range(50)],
                             ['label %d' % i for i in range(50)], scores=scores)
    best_label = out[int(40 - 16):40, 6:40].reshape(-1, 3)
    assert (best_label == drawing.class_colour(1)).all(axis=1).mean() > 0.4


def test_dashed_boxes_have_gaps():
    image = np.full((200, 200, 3), 255, np.uint8)
    solid = drawing.draw_boxes(image, [[20, 20, 180, 180]], [4], [''], max_labels=0)
    dashed = drawing.draw_boxes(image, [[20, 20, 180, 180]], [4], [''], max_labels=0,
                                dashed=True)
    colour = drawing.class_colour(4)
    top_solid = (solid[20, 20:180] == colour).all(axis=1).mean()
    top_dashed = (dashed[20, 20:180] == colour).all(axis=1).mean()
    assert top_solid > 0.95 and 0.3 < top_dashed < 0.7
