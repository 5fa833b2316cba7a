"""JSON API: POST /api/v1/detect, GET /api/v1/model, GET /healthz."""
import flask

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
    """200 while at least one replica serves an AVAILABLE version of the model, else 503.

    Every replica is asked at once with a short deadline (SSDClient.replica_status, 0.3 s), so a
    hung one cannot hold the answer past Kubernetes' probe timeout. The body lists each replica
    with its versions and their states, or the error it answered, and `ejected_s` while the
    client avoids it; `versions` are the AVAILABLE ones.
    """
    ssd = service.client()
    replicas = ssd.replica_status()
    available = sorted({v['version'] for replica in replicas for v in replica.get('versions', ())
                        if v['state'] == 'AVAILABLE'})
    if not available:
        errors = '; '.join(r['error'] for r in replicas if 'error' in r)
        return _unhealthy(errors or f'no AVAILABLE version of model {ssd.model_name!r}', replicas)
    return flask.jsonify({'status': 'ok', 'model': ssd.model_name, 'versions': available,
                          'replicas': replicas})


def _unhealthy(reason, replicas):
    retry_after = str(flask.current_app.config['RETRY_AFTER_S'])
    body = {'status': 'unavailable', 'reason': reason, 'replicas': replicas}
    return flask.jsonify(body), 503, {'Retry-After': retry_after}
