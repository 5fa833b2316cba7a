"""Server-side drawing of detections (the page's no-JavaScript fallback); colours shared with the JS."""
import colorsys
import io

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from serving.client import decode_image

GOLDEN_ANGLE_DEG = 137.508
SATURATION = 0.85
LIGHTNESS = 0.45


def class_hue(class_id):
    """Hue in degrees of a class: golden-angle steps keep neighbouring ids far apart (same as app.js)."""
    return (int(class_id) * GOLDEN_ANGLE_DEG) % 360.0


def class_colour(class_id):
    """Returns the (r, g, b) uint8 colour of a class (CSS hsl(hue, 85%, 45%))."""
    red, green, blue = colorsys.hls_to_rgb(class_hue(class_id) / 360.0, LIGHTNESS, SATURATION)
    return round(red * 255), round(green * 255), round(blue * 255)


def line_and_font_size(width, height):
    """Box line width and label font size in pixels of an image (same as app.js)."""
    side = max(width, height)
    return max(1, round(side / 250)), max(8, round(side / 36))


def annotate(data, detections, max_pixels):
    """Draws boxes with class name and score on an image.

    Args:
      data: encoded image bytes (already validated).
      detections: list of dicts with class_id, class_name, score, box_px [xmin, ymin, xmax, ymax].
      max_pixels: decoding limit passed to the decoder.

    Returns:
      JPEG bytes of the EXIF-rotated RGB image with the boxes drawn.
    """
    image = PIL.Image.fromarray(decode_image(data, max_pixels))
    draw = PIL.ImageDraw.Draw(image)
    line, font_size = line_and_font_size(*image.size)
    font = PIL.ImageFont.load_default(size=font_size)
    for det in sorted(detections, key=lambda d: d['score']):
        colour = class_colour(det['class_id'])
        xmin, ymin, xmax, ymax = det['box_px']
        draw.rectangle([xmin, ymin, xmax, ymax], outline=colour, width=line)
        text = f"{det['class_name']} {det['score']:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        label_y = ymin - (bottom - top) - 2 * line if ymin - (bottom - top) - 2 * line >= 0 else ymin
        draw.rectangle([xmin, label_y, xmin + right - left + 2 * line, label_y + bottom - top + 2 * line],
                       fill=colour)
        draw.text((xmin + line - left, label_y + line - top), text, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    image.save(out, 'JPEG', quality=90, subsampling=0)  # 4:4:4 keeps thin coloured lines sharp
    return out.getvalue()
