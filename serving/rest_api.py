"""TF Serving's REST API for the model server (`--rest_api_port`).

- `POST /v1/models/<name>[/versions/<v>]:predict` with `{"signature_name": ..., "instances": [...]}`
  (row format, answers `{"predictions": [...]}`) or `{"inputs": ...}` (columnar, answers
  `{"outputs": ...}`); bytes are `{"b64": "..."}` both ways.
- `GET /v1/models/<name>[/versions/<v>]` (status) and `.../metadata` (signature defs).
Errors answer `{"error": "..."}` with 404 (NOT_FOUND), 400 (INVALID_ARGUMENT / bad JSON) or 429
(RESOURCE_EXHAUSTED).
"""
import base64
import http.server
import json
import re
import threading

import numpy as np
from google.protobuf import json_format

from client import tensor_proto
from common.signatures import DEFAULT_SIGNATURE, MAX_MESSAGE_BYTES, ServingError

_PATH = re.compile(r'^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?'
                   r'(?P<verb>:predict|/metadata)?$')
_HTTP_STATUS = {'NOT_FOUND': 404, 'INVALID_ARGUMENT': 400, 'RESOURCE_EXHAUSTED': 429}
MAX_BODY_BYTES = MAX_MESSAGE_BYTES


def _decode_value(value):
    """JSON value -> python value with {"b64": ...} turned into bytes."""
    if isinstance(value, dict) and set(value) == {'b64'}:
        return base64.b64decode(value['b64'])
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    if isinstance(value, str):
        return value.encode('utf-8')
    return value


def _encode_array(array):
    """numpy array -> JSON-ready nested lists (bytes as UTF-8 text or {"b64": ...})."""
    if array.dtype == object:
        def text(value):
            try:
                return value.decode('utf-8')
            except UnicodeDecodeError:
                return {'b64': base64.b64encode(value).decode('ascii')}
        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def _to_proto(alias, value, tensor_info):
    try:
        if tensor_info.dtype == tensor_proto.DT_STRING:
            return tensor_proto.make_tensor_proto(np.array(value, dtype=object))
        dtype = tensor_proto.DTYPE_TO_NUMPY[tensor_info.dtype]
        return tensor_proto.make_tensor_proto(np.asarray(value, dtype=dtype))
    except (ValueError, TypeError, KeyError) as e:
        raise ServingError('input "%s" cannot be converted to %s: %s'
                           % (alias, tensor_proto.dtype_name(tensor_info.dtype), e),
                           'INVALID_ARGUMENT') from e


def predict(manager, name, version, body):
    """Runs a REST predict body against the manager. Returns the JSON-ready answer."""
    signature_name = body.get('signature_name') or DEFAULT_SIGNATURE
    loaded = manager.acquire(name, version)
    try:
        signature = loaded.signature_defs.get(signature_name)
        if signature is None:
            raise ServingError('Serving signature key "%s" not found' % signature_name,
                               'INVALID_ARGUMENT')
        aliases = sorted(signature.inputs)
        if 'instances' in body:
            rows = [_decode_value(row) for row in body['instances']]
            columns = ({a: [row[a] for row in rows] for a in aliases} if len(aliases) > 1 or
                       (rows and isinstance(rows[0], dict)) else {aliases[0]: rows})
        elif 'inputs' in body:
            inputs = _decode_value(body['inputs'])
            columns = inputs if isinstance(inputs, dict) else {aliases[0]: inputs}
        else:
            raise ServingError('request body needs "instances" or "inputs"', 'INVALID_ARGUMENT')
        unknown = sorted(set(columns) - set(aliases))
        if unknown:
            raise ServingError('signature "%s" has no inputs %s; inputs: %s'
                               % (signature_name, unknown, aliases), 'INVALID_ARGUMENT')
        protos = {a: _to_proto(a, v, signature.inputs[a]) for a, v in columns.items()}
        outputs = loaded.run(signature_name, protos)
    except KeyError as e:
        raise ServingError('instance lacks input %s' % e, 'INVALID_ARGUMENT') from e
    finally:
        loaded.release()
    encoded = {alias: _encode_array(np.asarray(value)) for alias, value in outputs.items()}
    if 'instances' in body:
        if len(encoded) == 1:
            return {'predictions': next(iter(encoded.values()))}
        counts = {len(v) for v in encoded.values()}
        if len(counts) != 1:
            raise ServingError('outputs have different batch sizes %s; use the columnar '
                               '"inputs" format' % sorted(counts), 'INVALID_ARGUMENT')
        count = counts.pop()
        return {'predictions': [{a: v[i] for a, v in encoded.items()} for i in range(count)]}
    return {'outputs': next(iter(encoded.values())) if len(encoded) == 1 else encoded}


def status(manager, name, version):
    """JSON-ready GetModelStatus answer."""
    states = manager.status(version) if name == manager.model_name else []
    if not states:
        raise ServingError('Could not find any versions of model "%s"' % name, 'NOT_FOUND')
    ok = {'error_code': 'OK', 'error_message': ''}
    return {'model_version_status': [{'version': str(v), 'state': s, 'status': ok}
                                     for v, s in states]}


def metadata(manager, name, version):
    """JSON-ready GetModelMetadata answer."""
    loaded = manager.acquire(name, version)
    loaded.release()
    signatures = {k: json_format.MessageToDict(v) for k, v in loaded.signature_defs.items()}
    return {'model_spec': {'name': name, 'version': str(loaded.version), 'signature_name': ''},
            'metadata': {'signature_def': {'signature_def': signatures}}}


def _handler(manager):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def _answer(self, code, payload):
            data = json.dumps(payload).encode('utf-8')
            self.send_response(code)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method):
            match = _PATH.match(self.path)
            if not match or (method == 'POST') != (match['verb'] == ':predict'):
                return self._answer(404, {'error': 'no route %s %s' % (method, self.path)})
            version = int(match['version']) if match['version'] else None
            try:
                if method == 'POST':
                    length = int(self.headers.get('Content-Length') or 0)
                    if length > MAX_BODY_BYTES:
                        raise ServingError('body of %d bytes exceeds %d' % (length, MAX_BODY_BYTES),
                                           'INVALID_ARGUMENT')
                    try:
                        body = json.loads(self.rfile.read(length) or b'{}')
                    except ValueError as e:
                        raise ServingError('body is not JSON: %s' % e, 'INVALID_ARGUMENT') from e
                    if not isinstance(body, dict):
                        raise ServingError('body must be a JSON object', 'INVALID_ARGUMENT')
                    return self._answer(200, predict(manager, match['name'], version, body))
                if match['verb'] == '/metadata':
                    return self._answer(200, metadata(manager, match['name'], version))
                return self._answer(200, status(manager, match['name'], version))
            except ServingError as e:
                return self._answer(_HTTP_STATUS.get(e.code, 500), {'error': str(e)})

        def do_GET(self):  # noqa: N802 (http.server API)
            self._route('GET')

        def do_POST(self):  # noqa: N802
            self._route('POST')

        def log_message(self, *args):
            pass

    return Handler


def start(manager, host, port):
    """Starts the REST server in a daemon thread. Returns it (call .shutdown() to stop)."""
    server = http.server.ThreadingHTTPServer((host, port), _handler(manager))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name='rest-api', daemon=True).start()
    return server
