import numpy as np
import pytest

from datasets import shapes


@pytest.mark.parametrize('name', shapes.CLASS_NAMES)
@pytest.mark.parametrize('outline', [False, True])
def test_mask_box_is_tight_and_sized(name, outline):
    mask = shapes.shape_mask(name, 60, outline, np.random.default_rng(0))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
    assert 55 <= max(mask.shape) <= 62


def test_outline_is_a_ring_inside_the_filled_shape():
    filled = shapes.shape_mask('circle', 80, False, np.random.default_rng(0))
    ring = shapes.shape_mask('circle', 80, True, np.random.default_rng(0))
    assert np.all(ring <= filled)
    assert ring[40, 40] == 0 and filled[40, 40] == 1
    area = np.pi * 40 ** 2
    assert abs(filled.sum() - area) < 0.03 * area


def test_silhouettes_differ_between_classes():
    masks = {name: shapes.shape_mask(name, 64, False, np.random.default_rng(1))
             for name in shapes.CLASS_NAMES}
    fill = {name: mask.mean() for name, mask in masks.items()}
    assert fill['circle'] == pytest.approx(np.pi / 4, abs=0.03)
    assert fill['triangle'] < 0.6 and fill['star'] < 0.5 and fill['cross'] < 0.7


def test_draw_image_is_deterministic_for_a_seed():
    a, objects_a = shapes.draw_image(np.random.default_rng([5, 0, 1]))
    b, objects_b = shapes.draw_image(np.random.default_rng([5, 0, 1]))
    c, _ = shapes.draw_image(np.random.default_rng([5, 0, 2]))
    assert np.array_equal(a, b) and objects_a == objects_b
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_draw_image_sizes_objects_and_flags():
    counts, grayscale, difficult, truncated = [], 0, 0, 0
    for index in range(60):
        image, objects = shapes.draw_image(np.random.default_rng([1, index]))
        height, width = image.shape[:2]
        assert 200 <= height <= 500 and 200 <= width <= 500
        assert 0.59 <= width / height <= 1.71
        grayscale += image.ndim == 2
        counts.append(len(objects))
        for obj in objects:
            col0, row0, col1, row1 = obj.box
            assert 0 <= col0 <= col1 < width and 0 <= row0 <= row1 < height
            assert obj.name in shapes.CLASS_NAMES
            longest = max(col1 - col0, row1 - row0) + 1
            if longest < shapes.TINY_PX:
                assert obj.difficult
            difficult += obj.difficult
            truncated += obj.truncated
    assert min(counts) >= 1 and max(counts) <= 6
    assert grayscale >= 1 and difficult >= 1 and truncated >= 1


def test_truncated_objects_touch_the_border():
    for index in range(30):
        image, objects = shapes.draw_image(np.random.default_rng([2, index]))
        height, width = image.shape[:2]
        for obj in objects:
            if obj.truncated:
                col0, row0, col1, row1 = obj.box
                assert col0 == 0 or row0 == 0 or col1 == width - 1 or row1 == height - 1
