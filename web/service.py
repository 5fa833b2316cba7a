"""The detection work behind both the API and the page: validate, call the model server, shape JSON."""
import time

import flask

from serving.client import InvalidImage, ServingError, ServingUnavailable
from web import uploads
from web.errors import UploadError

THRESHOLD_FIELD = 'score_threshold'


def client():
    """The app's one SSDClient (or the object a test put in config['CLIENT'])."""
    return flask.current_app.extensions['ssd_client']


def score_threshold(request):
    """Reads `score_threshold` from the form or query string; default from config."""
    text = request.values.get(THRESHOLD_FIELD, '').strip()
    if not text:
        return flask.current_app.config['SCORE_THRESHOLD']
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not 0.0 <= value <= 1.0:
        raise UploadError(400, 'invalid_score_threshold',
                          f'{THRESHOLD_FIELD}={text[:20]!r} must be a number between 0 and 1.')
    return value


def detect_request(request):
    """Runs detection on the image in a request.

    Returns:
      (result dict as documented for POST /api/v1/detect, image bytes, filename).

    Raises:
      UploadError: for every refused input and for an unavailable model server.
    """
    start = time.perf_counter()
    config = flask.current_app.config
    threshold = score_threshold(request)
    data, filename = uploads.read_image_bytes(request, int(config['MAX_UPLOAD_MB'] * 2**20))
    uploads.check_image(data, filename, config['MAX_IMAGE_PIXELS'])
    result = call_model(lambda: client().detect(data, score_threshold=threshold), filename)
    body = {
        'model': dict(result.model),
        'image': {'width': int(result.width), 'height': int(result.height)},
        'score_threshold': threshold,
        'detections': [{'class_id': int(d.class_id), 'class_name': str(d.class_name),
                        'score': round(float(d.score), 4),
                        'box_px': [round(float(v), 1) for v in d.box_px]} for d in result.detections],
        'timing_ms': {**{k: round(float(v), 1) for k, v in result.timing_ms.items()},
                      'request': round((time.perf_counter() - start) * 1e3, 1)},
    }
    return body, data, filename


def model_description():
    """Returns {'name', 'version', 'signature', 'network', 'classes': {id: name}} of the served model."""
    ssd = client()
    info = call_model(ssd.model_info)
    return {'name': ssd.model_name, 'version': info.version, 'signature': ssd.signature,
            'network': ssd.network, 'input_size': list(info.input_hw),
            'classes': {str(k): v for k, v in sorted(info.class_names.items())}}


def call_model(call, filename=''):
    """Calls the model server, turning its errors into UploadErrors (503 with Retry-After, 400, 502)."""
    try:
        return call()
    except ServingUnavailable as e:
        raise UploadError(503, 'serving_unavailable',
                          f'The model server is unavailable or too slow ({e}); please retry shortly.',
                          retry_after=flask.current_app.config['RETRY_AFTER_S']) from None
    except InvalidImage as e:
        named = f'The image "{filename}"' if filename else 'The image'
        raise UploadError(400, 'invalid_image', f'{named} cannot be used: {e}.') from None
    except ServingError as e:
        raise UploadError(502, 'serving_error', f'The model server refused the request: {e}.') from None
