"""Drawing of the synthetic shapes images (numpy + OpenCV), one image per call.

Five classes with distinct silhouettes, filled or thickly outlined, on noisy
and textured backgrounds with a strong luminance contrast. Object boxes are
the tight boxes of the visible pixels (VOC convention: occluded and cut-off
parts are not in the box).
"""
import collections

import cv2
import numpy as np

CLASS_NAMES = ('circle', 'square', 'triangle', 'star', 'cross')

# Objects smaller than this (longest box side, px and fraction of the image's
# longest side) or with less than MIN_VISIBLE of their pixels visible are
# marked difficult (they do not count in VOC mAP).
TINY_PX = 12
TINY_FRACTION = 0.03
MIN_VISIBLE = 0.45
MIN_CONTRAST = 80.0  # luminance difference shape vs background mean

ShapeObject = collections.namedtuple(
    'ShapeObject', ['name', 'box', 'truncated', 'difficult'])
ShapeObject.__doc__ = """One object; box (col_min, row_min, col_max, row_max), 0-based inclusive."""

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _polygon(name, rng):
    """Unit polygon of a shape class, centred on 0 (before rotation/scaling)."""
    if name == 'square':
        aspect = rng.uniform(0.85, 1.15)
        return np.array([[-aspect, -1 / aspect], [aspect, -1 / aspect],
                         [aspect, 1 / aspect], [-aspect, 1 / aspect]])
    if name == 'triangle':
        angles = np.radians([-90.0, 30.0, 150.0])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if name == 'star':
        angles = np.radians(-90.0 + 36.0 * np.arange(10))
        radius = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    if name == 'cross':
        a = 0.33
        return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a],
                         [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a], [-a, -a]])
    raise ValueError('unknown shape %r' % name)


def shape_mask(name, size, outline, rng):
    """Binary mask of one shape whose box's longest side is `size` px.

    Args:
      name: one of CLASS_NAMES.
      size: longest side of the shape's box in px (>= 2).
      outline: draw a thick outline (16% of the size) instead of a filled shape.
      rng: np.random.Generator (rotation, aspect).

    Returns:
      uint8 mask [h, w] with values 0/1, tight around the shape.
    """
    if name == 'circle':
        side = int(round(size))
        mask = np.zeros((side, side), np.uint8)
        centre = int(round((side - 1) / 2.0 * 16))
        radius = int(round(max(side / 2.0 - 0.5, 0.0) * 16))
        cv2.circle(mask, (centre, centre), radius, 1, -1, cv2.LINE_8, shift=4)
    else:
        mask = _polygon_mask(name, size, rng)
    if outline:
        thickness = max(3, int(round(0.16 * size)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * thickness + 1,) * 2)
        inner = cv2.erode(np.pad(mask, thickness), kernel)
        mask = mask & (1 - inner[thickness:-thickness, thickness:-thickness])
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _polygon_mask(name, size, rng):
    angle = np.radians(rng.uniform(-20.0, 20.0))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = _polygon(name, rng) @ rotation.T
    points -= points.min(axis=0)
    scale = (size - 1) / points.max()
    points *= scale
    w, h = np.ceil(points.max(axis=0)).astype(int) + 1
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask


def _image_size(rng, side_range):
    """(height, width) with sides in side_range and aspect w/h in [0.6, 1.7]."""
    low, high = side_range
    aspect = np.exp(rng.uniform(np.log(max(0.6, low / high)), np.log(min(1.7, high / low))))
    height = rng.uniform(max(low, low / aspect), min(high, high / aspect))
    width = np.clip(height * aspect, low, high)
    return int(round(height)), int(round(width))


def _background(rng, height, width):
    """Textured background float32 [H, W, 3] and its mean luminance."""
    luminance = rng.uniform(40.0, 215.0)
    image = np.empty((height, width, 3), np.float32)
    image[:] = luminance + rng.uniform(-25.0, 25.0, 3)
    amplitude = rng.uniform(8.0, 28.0)
    kind = rng.integers(4)
    if kind == 0:  # low-frequency blobs
        coarse = rng.standard_normal((int(rng.integers(3, 10)), int(rng.integers(3, 10)), 3))
        image += amplitude * 0.6 * cv2.resize(coarse.astype(np.float32), (width, height),
                                              interpolation=cv2.INTER_CUBIC)
    else:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        theta = rng.uniform(0.0, np.pi)
        along = xx * np.cos(theta) + yy * np.sin(theta)
        if kind == 1:  # stripes
            wave = np.sin(2 * np.pi * along / rng.uniform(8.0, 60.0))
        elif kind == 2:  # gradient
            wave = 2 * (along - along.min()) / max(np.ptp(along), 1.0) - 1
        else:  # checkerboard
            period = rng.uniform(10.0, 40.0)
            wave = ((xx // period + yy // period) % 2) * 2 - 1.0
        image += amplitude * wave[..., None]
    return image, luminance


def _pick_color(rng, bg_luminance, neighbour_colors):
    """RGB colour contrasting with the background and the overlapped objects."""
    candidates = rng.integers(0, 256, (256, 3)).astype(np.float32)
    luminance = candidates @ _LUMA
    ok = np.abs(luminance - bg_luminance) >= MIN_CONTRAST
    strict = ok.copy()
    for color in neighbour_colors:
        strict &= np.abs(luminance - color @ _LUMA) >= 40.0
        strict &= np.linalg.norm(candidates - color, axis=1) >= 100.0
    for mask in (strict, ok):
        if mask.any():
            return candidates[np.argmax(mask)]
    return np.full(3, 0.0 if bg_luminance > 127 else 255.0, np.float32)


def _iou(a, b):
    ih = min(a[3], b[3]) - max(a[1], b[1])
    iw = min(a[2], b[2]) - max(a[0], b[0])
    if ih <= 0 or iw <= 0:
        return 0.0
    inter = ih * iw
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _object_size(rng, image_side, first, count):
    """Longest side in px: mostly 15%-90% of the short image side, a few 4%-12%."""
    if rng.random() < 0.07:
        fraction = rng.uniform(0.04, 0.12)
    else:
        high = 0.9 if first and count <= 2 else 0.55
        fraction = np.exp(rng.uniform(np.log(0.15), np.log(high)))
    return max(4.0, fraction * image_side)


def _place(rng, mask_hw, image_hw, boxes):
    """Top-left corner (row, col) of a new shape; None if it overlaps too much."""
    (h, w), (height, width) = mask_hw, image_hw
    cut = rng.random() < 0.25  # may be cut by the border
    max_iou = 0.6 if rng.random() < 0.25 else 0.15
    for _ in range(20):
        if cut:
            row = int(rng.integers(-h // 2, height - h // 2))
            col = int(rng.integers(-w // 2, width - w // 2))
        else:
            row = int(rng.integers(0, max(height - h, 0) + 1))
            col = int(rng.integers(0, max(width - w, 0) + 1))
        box = (col, row, col + w, row + h)
        if all(_iou(box, other) <= max_iou for other in boxes):
            return row, col
    return None


def draw_image(rng, side_range=(200, 500), grayscale_probability=0.08):
    """Draws one synthetic image.

    Args:
      rng: np.random.Generator; the image is a pure function of its state.
      side_range: (min, max) image side in px.
      grayscale_probability: chance of a single-channel image.

    Returns:
      image: uint8 [H, W, 3] RGB or [H, W] grayscale.
      objects: list of ShapeObject (at least one, at most 6).
    """
    height, width = _image_size(rng, side_range)
    image, bg_luminance = _background(rng, height, width)
    if rng.random() < 0.3:  # thin low-contrast clutter lines under the shapes
        for _ in range(int(rng.integers(1, 4))):
            points = [(int(rng.integers(width)), int(rng.integers(height))) for _ in range(2)]
            shade = float(bg_luminance + rng.choice([-40.0, 40.0]))
            cv2.line(image, points[0], points[1], (shade,) * 3, int(rng.integers(1, 3)))
    owner = np.full((height, width), -1, np.int16)
    count = int(rng.choice(np.arange(1, 7), p=[0.2, 0.25, 0.2, 0.15, 0.12, 0.08]))
    placed = []  # (name, full box (col0, row0, col1, row1) exclusive, colour, area)
    for _ in range(count):
        name = CLASS_NAMES[rng.integers(len(CLASS_NAMES))]
        size = _object_size(rng, min(height, width), not placed, count)
        mask = shape_mask(name, size, outline=size >= 30 and rng.random() < 0.3, rng=rng)
        corner = _place(rng, mask.shape, (height, width), [p[1] for p in placed])
        if corner is None:
            continue
        row, col = corner
        box = (col, row, col + mask.shape[1], row + mask.shape[0])
        neighbours = [p[2] for p in placed if _iou(box, p[1]) > 0]
        color = _pick_color(rng, bg_luminance, neighbours)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(box[3], height), min(box[2], width)
        visible = mask[r0 - row:r1 - row, c0 - col:c1 - col].astype(bool)
        image[r0:r1, c0:c1][visible] = color
        owner[r0:r1, c0:c1][visible] = len(placed)
        placed.append((name, box, color, int(mask.sum())))
    objects = _annotate(owner, placed)
    image = _finish(rng, image, grayscale_probability)
    return image, objects


def _annotate(owner, placed):
    height, width = owner.shape
    tiny = max(TINY_PX, TINY_FRACTION * max(height, width))
    objects = []
    for index, (name, box, _, area) in enumerate(placed):
        c0, r0 = max(box[0], 0), max(box[1], 0)
        c1, r1 = min(box[2], width), min(box[3], height)
        visible = owner[r0:r1, c0:c1] == index
        pixels = int(visible.sum())
        if pixels == 0:
            continue
        rows = np.flatnonzero(visible.any(axis=1))
        cols = np.flatnonzero(visible.any(axis=0))
        tight = (c0 + cols[0], r0 + rows[0], c0 + cols[-1], r0 + rows[-1])
        truncated = box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height
        longest = max(tight[2] - tight[0], tight[3] - tight[1]) + 1
        difficult = longest < tiny or pixels < MIN_VISIBLE * area
        objects.append(ShapeObject(name, tuple(int(v) for v in tight), bool(truncated),
                                   bool(difficult)))
    return objects


def _finish(rng, image, grayscale_probability):
    """Adds pixel noise and blur; converts to uint8 (grayscale sometimes)."""
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(3.0, 12.0)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), 0.8)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < grayscale_probability:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image
