"""The Flask application factory."""
import logging

import flask

from client.ssd_client import SSDClient
from common.budget import Budget
from web import config as web_config
from web.api import api, health
from web.errors import UploadError, register_error_handlers
from web.pages import pages
from web.uploads import UploadRequest

# Multipart parts larger than the file limit never reach a handler; this covers the form envelope.
MULTIPART_SLACK_BYTES = 64 * 1024
# Longest query string answered (a JSON 414 beyond); gunicorn.conf.py lets longer lines through.
MAX_QUERY_BYTES = 4096


def make_client(config):
    """Creates the app's SSDClient from the settings."""
    return SSDClient(config['SERVING_ADDRESS'], model_name=config['MODEL_NAME'],
                     signature=config['SIGNATURE'], normalization=config['NORMALIZATION'],
                     timeout=config['SERVING_TIMEOUT'], retries=config['SERVING_RETRIES'],
                     attempt_timeout=config['SERVING_ATTEMPT_TIMEOUT'],
                     score_threshold=config['SCORE_THRESHOLD'],
                     labels_path=config['LABELS_FILE'], max_pixels=config['MAX_IMAGE_PIXELS'],
                     version=config['MODEL_VERSION'], version_label=config['MODEL_VERSION_LABEL'])


def _refuse_long_query():
    if len(flask.request.query_string) > MAX_QUERY_BYTES:
        raise UploadError(414, 'query_too_long',
                          f'The query string is {len(flask.request.query_string):,} bytes; the '
                          f'limit is {MAX_QUERY_BYTES:,} (send the image in the request body).')


def create_app(test_config=None):
    """Builds the app.

    Args:
      test_config: optional mapping applied over the defaults, before environment variables;
        a `CLIENT` entry replaces the SSDClient (tests pass a fake or a client of their own).

    Raises:
      web.config.ConfigError: naming the invalid setting.
    """
    app = flask.Flask(__name__)
    app.request_class = UploadRequest
    app.config.from_mapping(web_config.load_config(test_config))
    app.config['MAX_CONTENT_LENGTH'] = (int(app.config['MAX_UPLOAD_MB'] * 2**20) +
                                        MULTIPART_SLACK_BYTES)
    client = app.config.pop('CLIENT', None) or make_client(app.config)
    app.extensions['ssd_client'] = client
    app.extensions['pixel_budget'] = Budget(app.config['DECODE_PIXEL_BUDGET'], 'pixels')
    app.before_request(_refuse_long_query)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(health)
    register_error_handlers(app)
    logging.getLogger(__name__).info('Web app using model %r at %s', app.config['MODEL_NAME'],
                                     app.config['SERVING_ADDRESS'])
    return app
