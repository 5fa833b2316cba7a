"""The detection work behind both the API and the page: validate, decode, call the model server."""
import dataclasses
import time

import flask

from client.ssd_client import InvalidImage, ServingError, ServingUnavailable
from common import images
from common.budget import BudgetTimeout
from web import uploads
from web.errors import UploadError

THRESHOLD_FIELD = 'score_threshold'
# Detections under the threshold returned beside those above it (`below_threshold`, highest
# first), so that a page can say what the model saw when no box passes.
BELOW_THRESHOLD_COUNT = 3
# The phases of a request in the order they run, each in ms in the answer's `timing_ms`:
# reading the upload, decoding the picture (both in the web app), then the client's
# preprocessing, the model server's call and the post-processing (NMS). `total` is the whole
# request in the app, so it is at least their sum.
TIMING_PHASES = ('read', 'decode', 'preprocess', 'predict', 'postprocess')
# Pictures are decoded at 1/2, 1/4 or 1/8 scale while both sides stay at least this many times
# the network input (the network sees e.g. 300x300; a 4000x3000 photo decodes as 1000x750).
DECODE_OVERSAMPLING = 2


@dataclasses.dataclass
class Upload:
    """The decoded image of a request.

    rgb: uint8 [h, w, 3], the upright picture, possibly decoded at a reduced scale.
    size: (width, height) of the full upright picture.
    filename: as uploaded (display only).
    """
    rgb: object
    size: tuple
    filename: str

    @property
    def scale(self):
        """(sx, sy): pixels of the full picture per pixel of `rgb`."""
        return self.size[0] / self.rgb.shape[1], self.size[1] / self.rgb.shape[0]


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


def decode_upload(data, filename):
    """Reads the header once and decodes once, within the worker's pixel budget.

    Returns:
      Upload.

    Raises:
      UploadError: 400/413/415 for refused images, 503 when the worker is saturated.
    """
    config = flask.current_app.config
    header = uploads.read_header(data, filename, config['MAX_IMAGE_PIXELS'])
    input_hw = call_model(client().model_info, filename).input_hw
    min_size = tuple(DECODE_OVERSAMPLING * side for side in input_hw)
    budget = flask.current_app.extensions['pixel_budget']
    try:
        with budget.hold(images.decoded_pixels(header, min_size), config['SERVING_TIMEOUT']):
            rgb = images.decode_image(data, header=header, min_size=min_size)
    except images.ImageError as e:
        raise uploads.image_error(e, filename) from None
    except BudgetTimeout:
        raise UploadError(503, 'busy', 'The server is decoding too many large images; please '
                          'retry shortly.', retry_after=config['RETRY_AFTER_S']) from None
    return Upload(rgb, header.upright_size, filename)


def detect_request(request):
    """Runs detection on the image in a request.

    Returns:
      (result dict as documented for POST /api/v1/detect, Upload).

    Raises:
      UploadError: for every refused input and for an unavailable model server.
    """
    start = time.perf_counter()
    config = flask.current_app.config
    threshold = score_threshold(request)
    data, filename = uploads.read_image_bytes(request, int(config['MAX_UPLOAD_MB'] * 2**20))
    received = time.perf_counter()
    upload = decode_upload(data, filename)
    decoded = time.perf_counter()
    # Every detection (the client's post-processing keeps scores above its own minimum), so
    # that the best ones under the threshold can be named.
    result = call_model(lambda: client().detect(upload.rgb, score_threshold=0.0), filename)
    scale = upload.scale * 2  # xmin, ymin, xmax, ymax
    detections = [{'class_id': int(d.class_id), 'class_name': str(d.class_name),
                   'score': round(float(d.score), 4),
                   'box_px': [round(float(v) * s, 1) for v, s in zip(d.box_px, scale)]}
                  for d in sorted(result.detections, key=lambda d: -d.score)]
    phases = {'read': received - start, 'decode': decoded - received}
    phases.update((name, result.timing_ms[name] / 1e3) for name in TIMING_PHASES[2:])
    body = {
        'model': dict(result.model),
        'image': {'width': upload.size[0], 'height': upload.size[1]},
        'score_threshold': threshold,
        'detections': [d for d in detections if d['score'] >= threshold],
        'below_threshold': [d for d in detections
                            if d['score'] < threshold][:BELOW_THRESHOLD_COUNT],
        'timing_ms': {**{name: round(phases[name] * 1e3, 1) for name in TIMING_PHASES},
                      'total': round((time.perf_counter() - start) * 1e3, 1)},
    }
    return body, upload


def model_description():
    """{'name', 'version', 'signature', 'network', 'input_size', 'classes': {id: name}};
    network and input size as the export's manifest states them."""
    ssd = client()
    info = call_model(ssd.model_info)
    return {'name': ssd.model_name, 'version': info.version, 'signature': ssd.signature,
            'network': info.network, 'input_size': list(info.input_hw),
            'classes': {str(k): v for k, v in sorted(info.class_names.items())}}


def call_model(call, filename=''):
    """Calls the model server; its errors become UploadErrors (503 with Retry-After, 4xx, 502)."""
    try:
        return call()
    except ServingUnavailable as e:
        raise UploadError(503, 'serving_unavailable',
                          f'The model server is unavailable or too slow ({e}); please retry '
                          'shortly.',
                          retry_after=flask.current_app.config['RETRY_AFTER_S']) from None
    except InvalidImage as e:
        raise uploads.image_error(e, filename) from None
    except ServingError as e:
        raise UploadError(502, 'serving_error',
                          f'The model server refused the request: {e}.') from None
