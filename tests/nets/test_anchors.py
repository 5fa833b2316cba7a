"""Tests of nets/anchors.py: totals, hand-computed boxes of the first and last layers."""
import numpy as np
import pytest

from nets import anchors, nets_factory, ssd_params


@pytest.mark.parametrize('name, total', [('ssd_300_vgg', 8732), ('ssd_512_vgg', 24564),
                                         ('ssd_300_mobilenet_v2', 8732)])
def test_totals(name, total):
    params = nets_factory.get_network(name).params
    boxes = anchors.ssd_anchors(params)
    assert boxes.shape == (total, 4)
    assert boxes.dtype == np.float32
    assert anchors.num_anchors(params) == total


def test_mobilenet_reuses_the_ssd300_geometry():
    np.testing.assert_array_equal(nets_factory.get_network('ssd_300_mobilenet_v2').anchors(),
                                  anchors.ssd_anchors(ssd_params.SSD_300_VGG))


def test_boxes_per_cell_of_ssd300():
    params = ssd_params.SSD_300_VGG
    assert [anchors.num_boxes_per_cell(r) for r in params.anchor_ratios] == [4, 6, 6, 6, 4, 4]


def test_first_cell_of_ssd300():
    boxes = anchors.ssd_anchors(ssd_params.SSD_300_VGG)
    c = 4.0 / 300.0                          # (0 + 0.5) * step 8 / 300
    s1 = 15.0 / 300.0                        # min size 30 / 2
    s2 = np.sqrt(30.0 * 60.0) / 2 / 300.0    # sqrt(min * max) / 2
    long_side = 30.0 * np.sqrt(2.0) / 2 / 300.0
    short_side = 30.0 / np.sqrt(2.0) / 2 / 300.0
    expected = [[c - s1, c - s1, c + s1, c + s1],
                [c - s2, c - s2, c + s2, c + s2],
                [c - short_side, c - long_side, c + short_side, c + long_side],   # ratio 2
                [c - long_side, c - short_side, c + long_side, c + short_side]]   # ratio 1/2
    np.testing.assert_allclose(boxes[:4], expected, atol=1e-6)
    # Next cell moves right by one step (x first within a row).
    np.testing.assert_allclose(boxes[4], [c - s1, 12 / 300 - s1, c + s1, 12 / 300 + s1], atol=1e-6)
    # First cell of the second row.
    np.testing.assert_allclose(boxes[38 * 4, 0], 12 / 300 - s1, atol=1e-6)


def test_last_layer_of_ssd300():
    boxes = anchors.ssd_anchors(ssd_params.SSD_300_VGG)[-4:]
    half = [264 / 2 / 300, np.sqrt(264 * 315) / 2 / 300]
    np.testing.assert_allclose(boxes[0], [0.5 - half[0]] * 2 + [0.5 + half[0]] * 2, atol=1e-6)
    np.testing.assert_allclose(boxes[1], [0.5 - half[1]] * 2 + [0.5 + half[1]] * 2, atol=1e-6)
    w = 264 * np.sqrt(2) / 2 / 300
    h = 264 / np.sqrt(2) / 2 / 300
    np.testing.assert_allclose(boxes[2], [0.5 - h, 0.5 - w, 0.5 + h, 0.5 + w], atol=1e-6)
    np.testing.assert_allclose(boxes[3], [0.5 - w, 0.5 - h, 0.5 + w, 0.5 + h], atol=1e-6)


def test_layer_boundaries_of_ssd300():
    params = ssd_params.SSD_300_VGG
    boxes = anchors.ssd_anchors(params)
    # Second layer starts after 38 * 38 * 4 anchors: centre 8 / 300, sizes 60 and sqrt(60*111).
    start = 38 * 38 * 4
    first = boxes[start]
    np.testing.assert_allclose((first[0] + first[2]) / 2, 8 / 300, atol=1e-6)
    np.testing.assert_allclose(first[2] - first[0], 60 / 300, atol=1e-6)
    third_layer_box = boxes[start + 19 * 19 * 6 + 2]     # ratio 2 box of layer 3, cell (0, 0)
    np.testing.assert_allclose(third_layer_box[3] - third_layer_box[1],
                               111 * np.sqrt(2) / 300, atol=1e-6)


def test_first_and_last_of_ssd512():
    boxes = anchors.ssd_anchors(ssd_params.SSD_512_VGG)
    c = 4.0 / 512
    s = 35.84 / 2 / 512
    np.testing.assert_allclose(boxes[0], [c - s, c - s, c + s, c + s], atol=1e-6)
    half = np.sqrt(460.8 * 537.6) / 2 / 512
    np.testing.assert_allclose(boxes[-3], [0.5 - half] * 2 + [0.5 + half] * 2, atol=1e-6)


def test_layer_anchors_rectangular_input():
    boxes = anchors.layer_anchors((100, 200), (1, 2), (20, 20), (), 100)
    # Two cells at x centres 50 and 150 px of a 200 px wide image, y centre 50 px.
    np.testing.assert_allclose(boxes[:, 1] + boxes[:, 3], [0.5, 0.5, 1.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(boxes[0], [0.4, 0.2, 0.6, 0.3], atol=1e-6)
