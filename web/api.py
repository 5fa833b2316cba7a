"""JSON API: POST /api/v1/detect, GET /api/v1/model, GET /healthz."""
import flask

from serving.client import ServingError
from web import service

api = flask.Blueprint('api', __name__, url_prefix='/api/v1')
health = flask.Blueprint('health', __name__)


@api.post('/detect')
def detect():
    body, _ = service.detect_request(flask.request)
    return flask.jsonify(body)


@api.get('/model')
def model():
    return flask.jsonify(service.model_description())


@health.get('/healthz')
def healthz():
    """200 when the model server reports an AVAILABLE version of the model, else 503."""
    try:
        status = service.client().status()
    except ServingError as e:
        return _unhealthy(str(e))
    available = [v['version'] for v in status['versions'] if v['state'] == 'AVAILABLE']
    if not available:
        return _unhealthy(f'no AVAILABLE version of model {status["name"]!r}')
    return flask.jsonify({'status': 'ok', 'model': status['name'], 'versions': available})


def _unhealthy(reason):
    retry_after = str(flask.current_app.config['RETRY_AFTER_S'])
    body = {'status': 'unavailable', 'reason': reason}
    return flask.jsonify(body), 503, {'Retry-After': retry_after}
