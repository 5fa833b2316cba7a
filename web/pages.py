"""The upload page: GET / and the no-JavaScript single-image form POST /."""
import base64
import json
import math

import flask

from common import drawing as common_drawing
from web import drawing, service
from web.errors import THRESHOLD_STEP, page_context

pages = flask.Blueprint('pages', __name__)


@pages.get('/')
def index():
    return flask.render_template('index.html', **page_context())


@pages.post('/')
def index_post():
    """Detects on one uploaded image and renders it server-side (works without JavaScript)."""
    body, upload = service.detect_request(flask.request)
    annotated = drawing.annotate(upload, body['detections'])
    download = dict(body, filename=upload.filename)
    result = {
        'filename': upload.filename,
        'body': body,
        'rows': [dict(d, box=drawing.display_box(d['box_px']),
                      colour=common_drawing.hex_colour(common_drawing.class_colour(d['class_id'])))
                 for d in body['detections']],
        'image_uri': 'data:image/jpeg;base64,' + base64.b64encode(annotated).decode('ascii'),
        'json_uri': 'data:application/json;base64,' + base64.b64encode(
            json.dumps(download, indent=2).encode('utf-8')).decode('ascii'),
    }
    if body['below_threshold']:
        result['lower_threshold'] = slider_threshold(body['below_threshold'][0]['score'])
    context = dict(page_context(), default_threshold=body['score_threshold'])
    return flask.render_template('index.html', result=result, **context)


def slider_threshold(score):
    """The slider position that shows a detection of `score`: rounded down to the slider's
    step (app.js thresholdFor)."""
    return max(THRESHOLD_STEP, math.floor(score / THRESHOLD_STEP + 1e-9) * THRESHOLD_STEP)
