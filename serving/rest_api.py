"""TF Serving's REST API for the model server (`--rest_api_port`), with its routes and answers.

- `POST /v1/models/<name>[/versions/<v> | /labels/<label>]:predict` with
  `{"signature_name": ..., "instances": [...]}` (row format, answers `{"predictions": [...]}`) or
  `{"inputs": ...}` (columnar, answers `{"outputs": ...}`), one of the two; bytes are
  `{"b64": "..."}` both ways.
- `GET /v1/models/<name>[/versions/<v> | /labels/<label>]` (status) and `.../metadata`
  (signature defs).

Answers as TF Serving's: errors are `{"error": "..."}` with the HTTP status of the error code
(400 INVALID_ARGUMENT and malformed requests, 404 NOT_FOUND and paths outside /v1/, 429
RESOURCE_EXHAUSTED, 503 UNAVAILABLE, ...); 411 for a POST without Content-Length, 413 over the
body limit. The query string is ignored; the model name is percent-decoded. This server serves
no version labels (400 naming the label, as over gRPC).

Limits are checked while reading, before parsing: the body size (serving.http_server), then the
batch: the items of `instances` (or of each `inputs` value) are parsed one at a time and the
request is refused as soon as they pass the model's max_batch_size, before the rest is parsed.
The server (serving.http_server.BoundedHTTPServer) has a fixed thread pool and read timeouts.
"""
import base64
import binascii
import json
import re
import threading

import numpy as np
from google.protobuf import json_format

from client import tensor_proto
from common.signatures import DEFAULT_SIGNATURE, INT64_MAX, MAX_MESSAGE_BYTES, ServingError
from serving import http_server

_PREDICT = re.compile(r'/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+)|'
                      r'/labels/(?P<label>[^/:]+))?:(?P<verb>classify|regress|predict)', re.I)
_STATUS = re.compile(r'/v1/models(?:/(?P<name>[^/:]+))?(?:/versions/(?P<version>[0-9]+)|'
                     r'/labels/(?P<label>[^/:]+))?(?P<metadata>/metadata)?', re.I)
_API = re.compile(r'/v1/.*', re.I | re.S)
# TF Serving's mapping of error codes to HTTP statuses (model_servers/http_server.cc).
_HTTP_STATUS = {'CANCELLED': 499, 'UNKNOWN': 500, 'INVALID_ARGUMENT': 400,
                'DEADLINE_EXCEEDED': 504, 'NOT_FOUND': 404, 'ALREADY_EXISTS': 409,
                'PERMISSION_DENIED': 403, 'RESOURCE_EXHAUSTED': 429, 'FAILED_PRECONDITION': 400,
                'ABORTED': 409, 'OUT_OF_RANGE': 400, 'UNIMPLEMENTED': 501, 'INTERNAL': 500,
                'UNAVAILABLE': 503, 'DATA_LOSS': 500, 'UNAUTHENTICATED': 401}
MAX_BODY_BYTES = MAX_MESSAGE_BYTES
_WHITESPACE = re.compile(r'[ \t\n\r]*')
_DECODER = json.JSONDecoder()


def _invalid(message, *args):
    return ServingError(message % args if args else message, 'INVALID_ARGUMENT')


def _decode_value(value):
    """JSON value -> python value with {"b64": ...} turned into bytes and text into UTF-8."""
    if isinstance(value, dict) and set(value) == {'b64'}:
        if not isinstance(value['b64'], str):
            raise _invalid('"b64" must hold a string')
        try:
            return base64.b64decode(value['b64'], validate=True)
        except (binascii.Error, ValueError) as e:
            raise _invalid('"b64" value is not base64: %s', e) from None
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    if isinstance(value, str):
        try:
            return value.encode('utf-8')
        except UnicodeEncodeError as e:
            raise _invalid('a string is not valid Unicode: %s', e) from None
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
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        raise _invalid('input "%s" cannot be converted to %s: %s', alias,
                       tensor_proto.dtype_name(tensor_info.dtype), e) from e


class _Reader:
    """Parses a JSON object from text one value at a time (json's C scanner for each value)."""

    def __init__(self, text):
        self.text = text
        self.at = 0

    def skip(self):
        self.at = _WHITESPACE.match(self.text, self.at).end()

    def expect(self, char):
        self.skip()
        if self.text[self.at:self.at + 1] != char:
            raise _invalid('the body is not JSON: expected %r at character %d', char, self.at)
        self.at += 1

    def peek(self):
        self.skip()
        return self.text[self.at:self.at + 1]

    def value(self):
        self.skip()
        try:
            value, self.at = _DECODER.raw_decode(self.text, self.at)
        except json.JSONDecodeError as e:
            raise _invalid('the body is not JSON: %s', e) from None
        except RecursionError:
            raise _invalid('the body is not JSON this server reads: nested too deeply') from None
        return value

    def items(self, name, limit):
        """A JSON list of at most `limit` items; refused at item limit + 1, unparsed beyond."""
        if self.peek() != '[':
            return self.value()
        self.at += 1
        items = []
        if self.peek() == ']':
            self.at += 1
            return items
        while True:
            items.append(self.value())
            if len(items) > limit:
                raise _invalid('"%s" has more than %d items, over the batch limit of this '
                               'server (--max_batch_size)', name, limit)
            if self.peek() == ']':
                self.at += 1
                return items
            self.expect(',')

    def fields(self, on_field):
        """Reads an object; on_field(key) reads each value and returns it."""
        self.expect('{')
        fields = {}
        if self.peek() == '}':
            self.at += 1
            return fields
        while True:
            self.skip()
            key = self.value()
            if not isinstance(key, str):
                raise _invalid('the body is not JSON: object keys must be strings')
            self.expect(':')
            fields[key] = on_field(key)
            if self.peek() == '}':
                self.at += 1
                return fields
            self.expect(',')

    def end(self):
        self.skip()
        if self.at != len(self.text):
            raise _invalid('the body is not JSON: extra data at character %d', self.at)


def parse_predict_body(data, max_items):
    """Parses a predict body, counting the batch while parsing.

    Args:
      data: the body bytes.
      max_items: most items of "instances", or of each value of "inputs".
    Returns:
      dict: the body's fields.
    Raises:
      ServingError: INVALID_ARGUMENT naming what is wrong (not UTF-8, not a JSON object, too
        deep, over the batch limit).
    """
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        raise _invalid('the body is not UTF-8: %s', e) from None
    reader = _Reader(text)
    if reader.peek() != '{':
        raise _invalid('the body must be a JSON object')

    def field(key):
        if key == 'instances':
            return reader.items(key, max_items)
        if key == 'inputs' and reader.peek() == '{':
            return reader.fields(lambda alias: reader.items('inputs.%s' % alias, max_items))
        if key == 'inputs':
            return reader.items(key, max_items)
        return reader.value()

    body = reader.fields(field)
    reader.end()
    return body


def _columns(body, aliases):
    """The request's inputs as {alias: decoded python value}."""
    if ('instances' in body) == ('inputs' in body):
        raise _invalid('the body must hold exactly one of "instances" (row format) and "inputs" '
                       '(columnar format)')
    if 'instances' in body:
        rows = body['instances']
        if not isinstance(rows, list):
            raise _invalid('"instances" must be a list, got %s', json.dumps(rows)[:40])
        rows = [_decode_value(row) for row in rows]
        if len(aliases) > 1 or (rows and isinstance(rows[0], dict)):
            if not all(isinstance(row, dict) for row in rows):
                raise _invalid('every instance must be an object of the inputs %s', aliases)
            missing = sorted({a for row in rows for a in aliases if a not in row})
            if missing:
                raise _invalid('an instance lacks input(s) %s', missing)
            return {a: [row[a] for row in rows] for a in aliases}
        return {aliases[0]: rows}
    inputs = body['inputs']
    if inputs is None:
        raise _invalid('"inputs" must not be null')
    if isinstance(inputs, dict):
        return {alias: _decode_value(value) for alias, value in inputs.items()}
    return {aliases[0]: _decode_value(inputs)}


def predict(manager, name, version, body):
    """Runs a parsed predict body against the manager. Returns the JSON-ready answer."""
    signature_name = body.get('signature_name') or DEFAULT_SIGNATURE
    if not isinstance(signature_name, str):
        raise _invalid('"signature_name" must be a string')
    loaded = manager.acquire(name, version)
    try:
        signature = loaded.signature_defs.get(signature_name)
        if signature is None:
            raise _invalid('Serving signature key "%s" not found', signature_name)
        aliases = sorted(signature.inputs)
        columns = _columns(body, aliases)
        unknown = sorted(set(columns) - set(aliases))
        if unknown:
            raise _invalid('signature "%s" has no inputs %s; inputs: %s', signature_name,
                           unknown, aliases)
        protos = {a: _to_proto(a, v, signature.inputs[a]) for a, v in columns.items()}
        outputs = loaded.run(signature_name, protos)
    finally:
        loaded.release()
    encoded = {alias: _encode_array(np.asarray(value)) for alias, value in outputs.items()}
    if 'instances' in body:
        if len(encoded) == 1:
            return {'predictions': next(iter(encoded.values()))}
        counts = {len(v) for v in encoded.values()}
        if len(counts) != 1:
            raise _invalid('outputs have different batch sizes %s; use the columnar "inputs" '
                           'format', sorted(counts))
        count = counts.pop()
        return {'predictions': [{a: v[i] for a, v in encoded.items()} for i in range(count)]}
    return {'outputs': next(iter(encoded.values())) if len(encoded) == 1 else encoded}


def status(manager, name, version):
    """JSON-ready GetModelStatus answer."""
    states = manager.status(version) if name == manager.model_name else []
    if not states:
        raise ServingError('Could not find any versions of model "%s"%s' % (
            name, '' if version is None else ' version %d' % version), 'NOT_FOUND')
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


def _version(match):
    """The version of a route (None for the latest). Raises ServingError (400) otherwise."""
    if match['label']:
        raise _invalid('version labels are not supported by this server ("%s"); use a version '
                       'number', match['label'])
    if match['version'] is None:
        return None
    version = int(match['version']) if len(match['version']) <= 19 else INT64_MAX + 1
    if version > INT64_MAX:
        raise _invalid('Failed to convert version: %s to numeric.', match['version'][:40])
    return version


def route(manager, method, path, body):
    """Answers one request. Returns (HTTP status, JSON-ready payload)."""
    if not _API.fullmatch(path):
        return 404, {'error': 'no route %s %s (the API is under /v1/)' % (method, path[:200])}
    try:
        match = (_PREDICT.fullmatch(path) if method == 'POST' else
                 _STATUS.fullmatch(path) if method == 'GET' else None)
        if match is None:
            raise _invalid('Malformed request: %s %s', method, path[:200])
        version = _version(match)
        if method == 'POST':
            if match['verb'].lower() != 'predict':
                raise _invalid('this server implements :predict only, not :%s',
                               match['verb'].lower())
            parsed = parse_predict_body(body, manager.limits.max_batch_size)
            return 200, predict(manager, match['name'], version, parsed)
        if not match['name']:
            raise _invalid('Missing model name in request.')
        if match['metadata']:
            return 200, metadata(manager, match['name'], version)
        return 200, status(manager, match['name'], version)
    except ServingError as e:
        return _HTTP_STATUS.get(e.code, 500), {'error': str(e)}
    except RecursionError:
        return 400, {'error': 'the request is nested too deeply'}


def start(manager, host, port, threads=8, timeout_s=30.0):
    """Starts the REST server in a daemon thread. Returns it (call .shutdown() to stop).

    Args:
      threads: connections served at once (more wait, up to 8 per thread, then get 503).
      timeout_s: the most time a request's head and body may take to arrive.
    """
    class Handler(http_server.Handler):
        def answer(self, method, path, body):
            return route(manager, method, path, body)

    server = http_server.BoundedHTTPServer(
        (host, port), Handler, threads=threads, backlog=8 * threads,
        read_timeout=min(10.0, timeout_s), request_timeout=timeout_s,
        max_body_bytes=MAX_BODY_BYTES)
    threading.Thread(target=server.serve_forever, name='rest-api', daemon=True).start()
    return server
