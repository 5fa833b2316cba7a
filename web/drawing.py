"""Server-side drawing of detections (the page's no-JavaScript fallback)."""
import io
import math

import numpy as np
import PIL.Image

from common import drawing

# Smaller pictures are enlarged (whole pixels) to about this many pixels on their longer side
# before drawing, so labels keep their size when the page shows the picture at card width.
DISPLAY_SIDE = 640


def display_box(box_px):
    """Integer box coordinates for tables, rounded half up as app.js's Math.round does."""
    return [math.floor(float(v) + 0.5) for v in box_px]


def annotate(upload, detections):
    """Draws boxes with class name and score on an uploaded image.

    Args:
      upload: web.service.Upload (the decoded picture, maybe at a reduced scale).
      detections: list of dicts with class_id, class_name, score, box_px [xmin, ymin, xmax,
        ymax] in pixels of the full picture.

    Returns:
      JPEG bytes of the upright RGB picture (at the decoded scale, small ones enlarged) with the
      boxes drawn.
    """
    rgb = upload.rgb
    zoom = max(1, DISPLAY_SIDE // max(rgb.shape[:2]))
    rgb = np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1) if zoom > 1 else rgb
    sx, sy = (scale / zoom for scale in upload.scale)
    boxes = [[d['box_px'][0] / sx, d['box_px'][1] / sy, d['box_px'][2] / sx, d['box_px'][3] / sy]
             for d in detections]
    drawn = drawing.draw_boxes(rgb, boxes, [d['class_id'] for d in detections],
                               [f"{d['class_name']} {d['score']:.2f}" for d in detections],
                               scores=[d['score'] for d in detections])
    out = io.BytesIO()
    # 4:4:4 chroma keeps thin coloured lines sharp.
    PIL.Image.fromarray(drawn).save(out, 'JPEG', quality=90, subsampling=0)
    return out.getvalue()
