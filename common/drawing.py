"""Class colours and labelled boxes: one look for every annotated image.

Used by the web page (server-side drawing, and the same palette and sizes sent to app.js),
`serving.detect_image`, `preprocessing.visualize` and the evaluation figures.

The palette is Kelly's (1965) sequence of colours of maximum contrast, without white, black,
grey and the two colours closest to grey: consecutive class ids get colours far apart
(CIELAB distance > 55). Label text is black or white, whichever has the higher WCAG 2 contrast
ratio with the label colour (always >= 4.5 for this palette), and boxes get a thin outline in
that text colour so they stay visible on an object of their own colour.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE = ('#f3c300', '#875692', '#f38400', '#a1caf1', '#be0032', '#008856', '#e68fac',
           '#0067a5', '#f99379', '#604e97', '#f6a600', '#b3446c', '#dcd300', '#882d17',
           '#8db600', '#654522', '#e25822')
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
# At most this many labels are written on an image (highest scores first, never overlapping);
# the other boxes are drawn without a label (the web page shows theirs on hover).
MAX_LABELS = 12
MIN_FONT_PX = 12


def _rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def class_colour(class_id):
    """(r, g, b) uint8 colour of a class: class 1 gets PALETTE[0], cycling after 17 classes."""
    return _rgb(PALETTE[(int(class_id) - 1) % len(PALETTE)])


def hex_colour(rgb):
    """'#rrggbb' of an (r, g, b) tuple."""
    return '#%02x%02x%02x' % tuple(rgb)


def palette_array():
    """The palette as float32 [num_colours, 3] in [0, 1] (e.g. for tf.image.draw_bounding_boxes)."""
    return np.array([_rgb(colour) for colour in PALETTE], np.float32) / 255.0


def relative_luminance(rgb):
    """WCAG 2 relative luminance (0 black .. 1 white) of an sRGB (r, g, b) uint8 colour."""
    channels = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(np.dot(linear, [0.2126, 0.7152, 0.0722]))


def contrast_ratio(first, second):
    """WCAG 2 contrast ratio (1 .. 21) of two (r, g, b) colours."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_colour(background):
    """BLACK or WHITE, whichever contrasts more with `background` (r, g, b)."""
    return max((BLACK, WHITE), key=lambda colour: contrast_ratio(colour, background))


def line_and_font_size(width, height):
    """Box line width and label font size in pixels for an image (app.js uses the same)."""
    side = max(width, height)
    return max(1, round(side / 250)), max(MIN_FONT_PX, round(side / 36))


def _overlaps(first, second):
    return not (first[2] <= second[0] or second[2] <= first[0] or
                first[3] <= second[1] or second[3] <= first[1])


def label_rectangle(box, text_size, line, image_size):
    """Where a label goes: above the box's top-left corner, or inside it at the image's top edge,
    moved left or up where it would leave the image.

    Args:
      box: [xmin, ymin, xmax, ymax] in pixels.
      text_size: (width, height) of the text in pixels.
      line: box line width (the label's padding).
      image_size: (width, height) of the image in pixels.

    Returns:
      [left, top, right, bottom] of the label background.
    """
    width, height = text_size[0] + 2 * line, text_size[1] + 2 * line
    top = box[1] - height if box[1] - height >= 0 else box[1]
    top = min(top, max(0, image_size[1] - height))
    left = min(box[0], max(0, image_size[0] - width))
    return [left, top, left + width, top + height]


def choose_labels(rectangles, scores, max_labels=MAX_LABELS):
    """Indices of the labels to write: highest scores first, skipping any that would overlap.

    Args:
      rectangles: label rectangles [left, top, right, bottom], one per box.
      scores: score per box.
      max_labels: at most this many.

    Returns:
      set of indices into rectangles.
    """
    chosen = []
    for index in sorted(range(len(rectangles)), key=lambda i: -scores[i]):
        if len(chosen) == max_labels:
            break
        if not any(_overlaps(rectangles[index], rectangles[other]) for other in chosen):
            chosen.append(index)
    return set(chosen)


def draw_boxes(rgb, boxes_px, class_ids, labels, scores=None, max_labels=MAX_LABELS,
               dashed=False):
    """Draws boxes in their class colours with legible labels; returns a new image.

    Args:
      rgb: uint8 [H, W, 3] image.
      boxes_px: [N, 4] boxes [xmin, ymin, xmax, ymax] in pixels of `rgb`.
      class_ids: [N] class ids (colours).
      labels: [N] label texts (e.g. 'cat 0.87').
      scores: optional [N] scores: boxes are drawn lowest first and labelled highest first
        (default: in the given order, earlier boxes labelled first).
      max_labels: at most this many labels, none overlapping another.
      dashed: dashed box lines (e.g. ground truth beside solid detections).

    Returns:
      uint8 [H, W, 3].
    """
    image = Image.fromarray(np.ascontiguousarray(rgb, np.uint8))
    draw = ImageDraw.Draw(image)
    line, font_size = line_and_font_size(*image.size)
    font = ImageFont.load_default(size=font_size)
    count = len(labels)
    scores = list(scores) if scores is not None else [count - i for i in range(count)]
    texts, rectangles = [], []
    for box, text in zip(boxes_px, labels):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        texts.append((left, top))
        rectangles.append(label_rectangle(box, (right - left, bottom - top), line, image.size))
    for index in sorted(range(count), key=lambda i: scores[i]):
        _draw_box(draw, boxes_px[index], class_colour(class_ids[index]), line, dashed)
    for index in sorted(choose_labels(rectangles, scores, max_labels), key=lambda i: scores[i]):
        colour = class_colour(class_ids[index])
        rectangle = rectangles[index]
        draw.rectangle(rectangle, fill=colour)
        left, top = texts[index]
        draw.text((rectangle[0] + line - left, rectangle[1] + line - top), labels[index],
                  fill=text_colour(colour), font=font)
    return np.asarray(image)


def _draw_box(draw, box, colour, line, dashed):
    """A box of width `line` inside [xmin, ymin, xmax, ymax], outlined 1 px in the text colour."""
    xmin, xmax = sorted((float(box[0]), float(box[2])))
    ymin, ymax = sorted((float(box[1]), float(box[3])))
    outline = text_colour(colour)
    draw.rectangle([xmin - 1, ymin - 1, xmax + 1, ymax + 1], outline=outline, width=line + 2)
    if not dashed:
        draw.rectangle([xmin, ymin, xmax, ymax], outline=colour, width=line)
        return
    dash = 4 * line + 4
    for start, end, fixed, vertical in ((xmin, xmax, ymin, False), (xmin, xmax, ymax, False),
                                        (ymin, ymax, xmin, True), (ymin, ymax, xmax, True)):
        for position in np.arange(start, end, 2 * dash):
            stop = min(position + dash, end)
            segment = ([fixed, position, fixed, stop] if vertical else
                       [position, fixed, stop, fixed])
            draw.line(segment, fill=colour, width=line)
