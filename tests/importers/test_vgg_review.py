"""The VGG SSD reviewed layer by layer against the reference implementations.

- Geometry (SSD300 and SSD512) against the SSD authors' Caffe deploy.prototxt
  (tests/importers/caffe_reference.py): every convolution's kernel, stride, dilation and padding
  (symmetric, as Caffe pads) and output size, every pooling's kernel, stride and ceil-mode output
  size, as the graph really builds them (the ops, not the code).
- Anchors: all 8732 / 24564 equal Caffe's PriorBox layer (prior_box_layer.cpp) applied to the
  release's PriorBox parameters, in the network's output order.
- Values (torch installed): every block output of the network equals torchvision's
  ssd300_vgg16 on the same seeded weights and the same photo crop.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim

from importers import caffe_ssd, torchvision_ssd, weights
from nets import nets_factory
from tests.importers import caffe_reference
from tests.importers import torchvision_reference as reference

NETWORKS = {300: 'ssd_300_vgg', 512: 'ssd_512_vgg'}


def _graph_ops(name):
    """The network's Conv2D and MaxPool ops by the Caffe layer they implement."""
    network = nets_factory.get_network(name)
    size = network.params.img_shape[0]
    graph = tf.Graph()
    with graph.as_default():
        with slim.arg_scope(network.arg_scope()):
            network.net(tf.compat.v1.placeholder(tf.float32, [1, size, size, 3]))
    count = len(network.params.feat_layers)
    caffe_names = caffe_ssd.layer_names(count)
    ops = {}
    for op in graph.get_operations():
        if op.type == 'Conv2D':
            layer = op.name[len(name) + 1:-len('/Conv2D')]
            ops[caffe_names[layer]] = op
        elif op.type == 'MaxPool':
            ops[op.name.split('/')[1]] = op
    return ops


def _padding(op):
    """(top, bottom, left, right) zeros around the conv input: its explicit Pad op (VALID), or
    what SAME adds."""
    source = op.inputs[0].op
    strides, dilations = op.get_attr('strides'), op.get_attr('dilations')
    kernel = op.inputs[1].shape[0]
    if op.get_attr('padding') == b'VALID':
        if source.type != 'Pad':
            return (0, 0, 0, 0)
        pads = tf.get_static_value(source.inputs[1])
        return tuple(int(v) for v in pads[1]) + tuple(int(v) for v in pads[2])
    size, out = op.inputs[0].shape[1], op.outputs[0].shape[1]
    total = max((out - 1) * strides[1] + (kernel - 1) * dilations[1] + 1 - size, 0)
    return (total // 2, total - total // 2) * 2


@pytest.mark.parametrize('size', [300, 512])
def test_every_convolution_is_the_releases(size):
    ops = _graph_ops(NETWORKS[size])
    convs = caffe_reference.convolutions(size)
    assert sorted(name for name in ops if 'pool' not in name) == sorted(c[0] for c in convs)
    for name, outputs, kernel, pad, stride, dilation, inputs in convs:
        op = ops[name]
        assert op.inputs[1].shape.as_list() == [kernel, kernel, inputs, outputs], name
        assert op.get_attr('strides')[1:3] == [stride, stride], name
        assert op.get_attr('dilations')[1:3] == [dilation, dilation], name
        assert _padding(op) == (pad,) * 4, name            # symmetric, as Caffe pads
        size_in = op.inputs[0].shape[1] - (2 * pad if op.inputs[0].op.type == 'Pad' else 0)
        caffe_out = (size_in + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
        assert op.outputs[0].shape[1] == caffe_out, name


@pytest.mark.parametrize('size', [300, 512])
def test_every_pooling_is_max_pooling_in_caffes_ceil_mode(size):
    ops = _graph_ops(NETWORKS[size])
    sides = {}
    for name, (kernel, stride, pad) in caffe_reference.POOLS.items():
        op = ops[name]
        assert op.get_attr('ksize')[1:3] == [kernel, kernel], name
        assert op.get_attr('strides')[1:3] == [stride, stride], name
        side = op.inputs[0].shape[1]
        # Caffe's pooling rounds up: ceil((side + 2 pad - kernel) / stride) + 1.
        assert op.outputs[0].shape[1] == math.ceil((side + 2 * pad - kernel) / stride) + 1, name
        sides[name] = (side, op.outputs[0].shape[1])
    if size == 300:
        assert sides['pool3'] == (75, 38)       # the one odd side: ceil mode keeps the last row
        assert sides['pool5'] == (19, 19)


@pytest.mark.parametrize('size', [300, 512])
def test_the_importers_geometry_table_is_the_releases(size):
    count = 6 if size == 300 else 7
    expected = {name: (kernel, pad, stride, dilation)
                for name, _, kernel, pad, stride, dilation, _ in caffe_reference.convolutions(size)}
    expected.update(caffe_reference.POOLS)
    assert caffe_ssd.network_geometry(count) == expected


def caffe_prior_boxes(size, sources):
    """Caffe's PriorBox forward (prior_box_layer.cpp), all layers: [N, 4] ymin, xmin, ymax, xmax.

    Per cell (row-major) the boxes are: min_size square, sqrt(min_size * max_size) square, then
    for each aspect ratio ar (flipped: ar, 1 / ar) a box of width min_size * sqrt(ar) and height
    min_size / sqrt(ar); centres at (index + offset) * step; no clipping.
    """
    boxes = []
    for _, _, ratios, min_size, max_size, step in sources:
        side = math.ceil(size / step)                   # the feature map's side
        aspect = [1.0]
        for ratio in ratios:
            aspect += [float(ratio), 1.0 / ratio]
        for h in range(side):
            for w in range(side):
                cx, cy = (w + 0.5) * step, (h + 0.5) * step
                sizes = [(min_size, min_size), (math.sqrt(min_size * max_size),) * 2]
                sizes += [(min_size * math.sqrt(a), min_size / math.sqrt(a)) for a in aspect[1:]]
                for bw, bh in sizes:
                    boxes.append([(cy - bh / 2) / size, (cx - bw / 2) / size,
                                  (cy + bh / 2) / size, (cx + bw / 2) / size])
    return np.asarray(boxes, np.float64)


@pytest.mark.parametrize('name, size, dataset, total', [
    ('ssd_300_vgg', 300, 'voc', 8732), ('ssd_512_vgg', 512, 'voc', 24564),
    ('ssd_300_vgg_caffe_voc', 300, 'voc', 8732), ('ssd_512_vgg_caffe_voc', 512, 'voc', 24564),
    ('ssd_300_vgg_caffe_coco', 300, 'coco', 8732), ('ssd_512_vgg_caffe_coco', 512, 'coco', 24564),
    # SSD-Tensorflow's ssd_vgg_300.py / ssd_vgg_512.py: the same formula with the COCO sizes.
    ('ssd_300_vgg_ssdtf', 300, 'coco', 8732), ('ssd_512_vgg_ssdtf', 512, 'coco', 24564)])
def test_all_anchors_equal_caffes_prior_boxes(name, size, dataset, total):
    network = nets_factory.get_network(name)
    expected = caffe_prior_boxes(size, caffe_reference.MODELS[size][1][dataset])
    assert expected.shape == (total, 4)
    np.testing.assert_allclose(network.anchors(), expected, atol=1e-6)


def torchvision_default_boxes(size=300):
    """torchvision's DefaultBoxGenerator for ssd300_vgg16 (scales 0.07 ... 1.05, steps 8 ...
    300, aspect ratios [2], [2, 3], ...; clip=True clamps each width and height to [0, 1]),
    as [N, 4] ymin, xmin, ymax, xmax."""
    scales = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
    ratios = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
    steps = (8, 16, 32, 64, 100, 300)
    boxes = []
    for k, (layer_ratios, step) in enumerate(zip(ratios, steps)):
        pairs = [(scales[k], scales[k]), (math.sqrt(scales[k] * scales[k + 1]),) * 2]
        for ratio in layer_ratios:
            w, h = scales[k] * math.sqrt(ratio), scales[k] / math.sqrt(ratio)
            pairs += [(w, h), (h, w)]
        pairs = [(min(max(w, 0.0), 1.0), min(max(h, 0.0), 1.0)) for w, h in pairs]
        side = math.ceil(size / step)
        for i in range(side):
            for j in range(side):
                cx, cy = (j + 0.5) / (size / step), (i + 0.5) / (size / step)
                boxes += [[cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2] for w, h in pairs]
    return np.asarray(boxes)


def test_torchvision_anchors_equal_its_default_boxes():
    anchors = nets_factory.get_network('ssd_300_vgg_torchvision').anchors()
    expected = torchvision_default_boxes()
    assert expected.shape == (8732, 4)
    np.testing.assert_allclose(anchors, expected, atol=1e-6)
    # Only the last layer's 2:1 and 1:2 boxes reach the clip: 0.87 * sqrt(2) -> 1.
    sizes = anchors[:, 2:] - anchors[:, :2]
    np.testing.assert_allclose(sizes[-2:], [[0.87 / math.sqrt(2), 1.0], [1.0, 0.87 / math.sqrt(2)]],
                               atol=1e-6)
    assert np.sum(np.isclose(sizes, 1.0)) == 2


def test_torchvision_anchors_equal_its_generators_output(torchvision_live):
    _, found, _ = torchvision_live
    xyxy = found['anchors'] / 300.0
    np.testing.assert_allclose(nets_factory.get_network('ssd_300_vgg_torchvision').anchors(),
                               xyxy[:, [1, 0, 3, 2]], atol=1e-5)


def test_every_block_equals_torchvisions_on_the_same_weights(torchvision_live):
    _, found, _ = torchvision_live
    values = weights.convert(reference.seeded_state_dict(), torchvision_ssd.variable_keys(),
                             weights.OIHW, 'seeded')
    network = nets_factory.get_network('ssd_300_vgg', reference.NUM_CLASSES)
    names = [name for name in found if name not in ('input', 'anchors', 'logits', 'locs')]
    assert len(names) == 12
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 300, 300, 3])
        with slim.arg_scope(network.arg_scope()):
            logits, locs, end_points = network.net(images)
        with tf.compat.v1.Session() as session:
            for variable in tf.compat.v1.global_variables():
                variable.load(values[variable.op.name[len(network.name) + 1:]], session)
            ours = session.run({'logits': logits, 'locs': locs,
                                **{name: end_points[name] for name in names}},
                               {images: found['input']})
    for name in names + ['logits', 'locs']:     # locs: both in the heads' own order
        scale = np.abs(found[name]).max()
        np.testing.assert_allclose(ours[name], found[name], atol=1e-4 * scale, err_msg=name)
