"""SSD default boxes (anchors) in numpy, in the order of the network's flattened outputs.

Per feature layer, cells are visited row-major (y, then x) and, per cell, boxes in this
order: size s_k at ratio 1, size sqrt(s_k * s_k+1) at ratio 1, then for each ratio r
of the layer a box of width s_k * sqrt(r) and height s_k / sqrt(r) (Liu et al., 2016,
section 2.2 and the original Caffe PriorBox layer). With `params.anchor_clip` (torchvision's
DefaultBoxGenerator) each width and height is first clipped to the image side; the boxes
themselves are never clipped to the image.
"""
import numpy as np


def num_boxes_per_cell(ratios):
    """Number of anchors per cell for a layer with these extra ratios."""
    return 2 + len(ratios)


def layer_anchors(img_shape, feat_shape, sizes, ratios, step, offset=0.5, clip_size=False):
    """Anchors of one feature layer.

    Args:
      img_shape: (height, width) of the network input in pixels.
      feat_shape: (height, width) of the feature layer.
      sizes: (min_size, max_size) in pixels.
      ratios: aspect ratios (width / height) besides 1.
      step: cell step in pixels.
      offset: cell centre offset in cells.
      clip_size: clip widths and heights to the image side (1 in normalised units).

    Returns:
      float32 [feat_h * feat_w * num_boxes, 4] boxes ymin, xmin, ymax, xmax normalised.
    """
    img_h, img_w = img_shape
    feat_h, feat_w = feat_shape
    min_size, max_size = sizes
    heights = [min_size, np.sqrt(min_size * max_size)]
    widths = [min_size, np.sqrt(min_size * max_size)]
    for ratio in ratios:
        heights.append(min_size / np.sqrt(ratio))
        widths.append(min_size * np.sqrt(ratio))
    heights = np.asarray(heights, np.float64) / img_h
    widths = np.asarray(widths, np.float64) / img_w
    if clip_size:
        heights, widths = np.minimum(heights, 1.0), np.minimum(widths, 1.0)
    cy = (np.arange(feat_h, dtype=np.float64) + offset) * step / img_h
    cx = (np.arange(feat_w, dtype=np.float64) + offset) * step / img_w
    cy, cx = np.meshgrid(cy, cx, indexing='ij')
    cy = cy.reshape(-1, 1)
    cx = cx.reshape(-1, 1)
    boxes = np.stack([cy - heights / 2, cx - widths / 2, cy + heights / 2, cx + widths / 2],
                     axis=-1)
    return boxes.reshape(-1, 4).astype(np.float32)


def ssd_anchors(params):
    """All anchors of a network.

    Args:
      params: an SSDParams.

    Returns:
      float32 [num_anchors, 4] ymin, xmin, ymax, xmax normalised.
    """
    layers = [layer_anchors(params.img_shape, shape, sizes, ratios, step, params.anchor_offset,
                            params.anchor_clip)
              for shape, sizes, ratios, step in zip(params.feat_shapes, params.anchor_sizes,
                                                     params.anchor_ratios, params.anchor_steps)]
    return np.concatenate(layers, axis=0)


def num_anchors(params):
    """Total anchor count of a network (8732 for SSD300)."""
    return sum(h * w * num_boxes_per_cell(r) for (h, w), r in zip(params.feat_shapes,
                                                                  params.anchor_ratios))
