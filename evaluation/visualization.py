"""Pictures of evaluated images: the ground truth beside the detections, as PNG.

Each picture has two panels of the same image, scaled so its longer side is
DISPLAY_SIDE pixels: the ground truth on the left (dashed boxes, class names) and
the detections on the right (solid boxes, class name and score, those with a
score >= the threshold), in the class colours of common/drawing.py, under a title
naming the image and the checkpoint step. The TF Object Detection API's evaluator
shows its side-by-side images the same way.
"""
import io
import os
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common import drawing, fields, np_post_processing, progress
from common.files import atomic_write

DISPLAY_SIDE = 480
SCORE_THRESHOLD = np_post_processing.DISPLAY_THRESHOLD
MAX_DETECTIONS = 20
_MARGIN = 8
_BACKGROUND = (255, 255, 255)
_TEXT = (0, 0, 0)


def _scaled(image):
    """The uint8 [H, W, 3] image resized so its longer side is DISPLAY_SIDE."""
    height, width = image.shape[:2]
    scale = DISPLAY_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image, np.uint8)).resize(
        size, Image.BILINEAR))


def _pixels(boxes, height, width):
    """Normalised [N, 4] ymin, xmin, ymax, xmax -> [N, 4] xmin, ymin, xmax, ymax pixels."""
    boxes = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0.0, 1.0)
    return boxes[:, [1, 0, 3, 2]] * [width, height, width, height]


def _name(class_names, class_id):
    return class_names.get(int(class_id), 'class %d' % int(class_id))


def ground_truth_panel(image, example, class_names):
    """The scaled image with the ground-truth boxes (dashed); difficult ones say so."""
    labels = [_name(class_names, c) + (' (difficult)' if d else '')
              for c, d in zip(example[fields.LABELS], example[fields.DIFFICULT])]
    boxes = _pixels(example[fields.BOXES], *image.shape[:2])
    return drawing.draw_boxes(image, boxes, example[fields.LABELS], labels, dashed=True)


def detections_panel(image, example, class_names, score_threshold):
    """The scaled image with the detections scored >= score_threshold (at most
    MAX_DETECTIONS); returns (uint8 [H, W, 3], number drawn)."""
    scores = np.asarray(example[fields.DETECTION_SCORES], np.float64)
    keep = np.flatnonzero(scores >= score_threshold)
    keep = keep[np.argsort(-scores[keep], kind='stable')][:MAX_DETECTIONS]
    classes = np.asarray(example[fields.DETECTION_CLASSES]).astype(np.int64)[keep]
    labels = ['%s %.2f' % (_name(class_names, c), s) for c, s in zip(classes, scores[keep])]
    boxes = _pixels(np.asarray(example[fields.DETECTION_BOXES])[keep], *image.shape[:2])
    return drawing.draw_boxes(image, boxes, classes, labels, scores=scores[keep]), keep.size


def side_by_side(example, class_names, score_threshold=SCORE_THRESHOLD, title=''):
    """The picture of one evaluated image.

    Args:
        example: dict with the original `fields.IMAGE` uint8 [H, W, 3], the ground truth
            `fields.BOXES` [N, 4] (normalised ymin, xmin, ymax, xmax), `fields.LABELS` [N],
            `fields.DIFFICULT` [N], and the detections `fields.DETECTION_BOXES` [K, 4],
            `fields.DETECTION_SCORES` [K], `fields.DETECTION_CLASSES` [K].
        class_names: dict class id -> name.
        score_threshold: lowest score of a drawn detection.
        title: first line of the title (e.g. the file name and step).

    Returns:
        uint8 [height, width, 3].
    """
    image = _scaled(example[fields.IMAGE])
    truth = ground_truth_panel(image, example, class_names)
    found, count = detections_panel(image, example, class_names, score_threshold)
    height, width = image.shape[:2]
    font_size = drawing.line_and_font_size(DISPLAY_SIDE, DISPLAY_SIDE)[1]
    font = ImageFont.load_default(size=font_size)
    header = 2 * (font_size + _MARGIN) + _MARGIN
    canvas = Image.new('RGB', (2 * width + 3 * _MARGIN, height + header + _MARGIN), _BACKGROUND)
    canvas.paste(Image.fromarray(truth), (_MARGIN, header))
    canvas.paste(Image.fromarray(found), (2 * _MARGIN + width, header))
    draw = ImageDraw.Draw(canvas)
    draw.text((_MARGIN, _MARGIN), title, fill=_TEXT, font=font)
    line_y = header - font_size - _MARGIN
    draw.text((_MARGIN, line_y), 'ground truth: %s (dashed)'
              % progress.counted(len(example[fields.LABELS]), 'object'), fill=_TEXT, font=font)
    draw.text((2 * _MARGIN + width, line_y), 'detections with score >= %.2f: %d'
              % (score_threshold, count), fill=_TEXT, font=font)
    return np.asarray(canvas)


def encode_png(rgb):
    """PNG bytes of a uint8 [H, W, 3] picture."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format='PNG')
    return out.getvalue()


def file_name(index, filename):
    """'03_<filename without extension>.png': the index keeps the evaluation order."""
    stem = os.path.splitext(os.path.basename(filename))[0]
    return '%02d_%s.png' % (index, re.sub(r'[^A-Za-z0-9_.-]+', '_', stem) or 'image')


def write_pictures(output_dir, examples, class_names, score_threshold=SCORE_THRESHOLD,
                   title_suffix=''):
    """Writes one side-by-side PNG per example into output_dir (created if needed).

    Returns:
        list of (path, uint8 [H, W, 3] picture, PNG bytes), in the order of `examples`.
    """
    if examples:
        os.makedirs(output_dir, exist_ok=True)
    written = []
    for index, example in enumerate(examples):
        filename = example[fields.FILENAME]
        if isinstance(filename, bytes):
            filename = filename.decode('utf-8', 'replace')
        picture = side_by_side(example, class_names, score_threshold, filename + title_suffix)
        png = encode_png(picture)
        path = os.path.join(output_dir, file_name(index, filename))
        atomic_write(path, png)
        written.append((path, picture, png))
    return written
