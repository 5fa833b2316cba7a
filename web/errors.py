"""Errors shown to users and the handlers that turn every failure into JSON or a page."""
import logging

import flask
from werkzeug import exceptions

from common import drawing, images

LOG = logging.getLogger(__name__)


class UploadError(Exception):
    """A request the app refuses, with its HTTP status and a message for the user.

    `page_message`, when given, replaces `message` on the HTML page (the API keeps the message
    that names form fields and content types).
    """

    def __init__(self, status, code, message, retry_after=None, page_message=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.page_message = page_message or message


class FormLimitExceeded(exceptions.RequestEntityTooLarge):
    """A multipart form over one of Flask's form limits; `code` and the description name it."""

    def __init__(self, code, message):
        super().__init__(message)
        self.error_code = code


def wants_json():
    """True when the request is for the API (answers are JSON, not pages)."""
    path = flask.request.path
    return path.startswith('/api/') or path == '/healthz'


def error_response(error):
    """Renders an UploadError as JSON for the API or as the page for browsers."""
    if wants_json():
        body = {'error': {'status': error.status, 'code': error.code, 'message': error.message}}
        response = flask.make_response(flask.jsonify(body), error.status)
    else:
        html = flask.render_template('index.html', error=error.page_message, **page_context())
        response = flask.make_response(html, error.status)
    if error.retry_after:
        response.headers['Retry-After'] = str(error.retry_after)
    return response


THRESHOLD_STEP = 0.01
"""Step (and lowest value) of the page's score-threshold slider."""


def page_context():
    """Template values every page needs."""
    config = flask.current_app.config
    return {'default_threshold': config['SCORE_THRESHOLD'],
            'threshold_step': THRESHOLD_STEP,
            'max_upload_mb': config['MAX_UPLOAD_MB'],
            'model_name': config['MODEL_NAME'],
            'model_hint': config['MODEL_HINT'],
            'formats': images.format_list(),
            'accept': ','.join('image/' + name.lower() for name in images.SUPPORTED_FORMATS),
            'palette': _palette(),
            'max_labels': drawing.MAX_LABELS,
            'min_font_px': drawing.MIN_FONT_PX}


def _palette():
    """The class colours and their label text colours, for app.js (index = class id - 1)."""
    return [{'fill': drawing.hex_colour(drawing.class_colour(class_id)),
             'text': drawing.hex_colour(drawing.text_colour(drawing.class_colour(class_id)))}
            for class_id in range(1, len(drawing.PALETTE) + 1)]


def _too_large(error):
    if isinstance(error, FormLimitExceeded):
        return error_response(UploadError(413, error.error_code, error.description))
    limit = flask.current_app.config['MAX_UPLOAD_MB']
    return error_response(UploadError(413, 'file_too_large',
                                      f'The upload is larger than the limit of {limit:g} MB.'))


def _http_error(error):
    return error_response(UploadError(error.code, error.name.lower().replace(' ', '_'),
                                      error.description))


def _unexpected(error):
    LOG.exception('Unexpected error while serving %s', flask.request.path)
    return error_response(UploadError(500, 'internal_error',
                                      'Something went wrong on the server; the error was logged.'))


def register_error_handlers(app):
    """Installs handlers so no request ends in a traceback."""
    app.register_error_handler(UploadError, error_response)
    app.register_error_handler(exceptions.RequestEntityTooLarge, _too_large)
    app.register_error_handler(exceptions.HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
