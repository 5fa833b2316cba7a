"""The REST API speaks TF Serving's JSON: instances/inputs, b64 bytes, status, errors."""
import base64
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from serving import rest_api


@pytest.fixture
def rest_url(toy_server):
    server = rest_api.start(toy_server[1], '127.0.0.1', 0)
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


def _call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_predict_instances_and_inputs(rest_url, toy):
    images = np.random.RandomState(0).uniform(-1, 1, [2, 4, 4, 3]).astype(np.float32)
    scores, boxes = toy.outputs(images)
    code, answer = _call(rest_url + '/v1/models/ssd:predict', {'instances': images.tolist()})
    assert code == 200 and len(answer['predictions']) == 2
    np.testing.assert_allclose(answer['predictions'][1]['scores'], scores[1], rtol=1e-5)
    np.testing.assert_allclose(answer['predictions'][0]['boxes'], boxes[0])
    code, answer = _call(rest_url + '/v1/models/ssd/versions/1:predict',
                         {'inputs': {'images': images.tolist()}})
    assert code == 200
    np.testing.assert_allclose(answer['outputs']['scores'], scores, rtol=1e-5)


def test_b64_bytes_and_signature(rest_url):
    body = {'signature_name': 'detect',
            'instances': [{'b64': base64.b64encode(b'\xff\xd8abc').decode()}, {'b64': ''}]}
    code, answer = _call(rest_url + '/v1/models/ssd:predict', body)
    assert code == 200
    assert [p['num_detections'] for p in answer['predictions']] == [5.0, 0.0]


def test_status_metadata_and_errors(rest_url):
    assert _call(rest_url + '/v1/models/ssd') == (200, {'model_version_status': [
        {'version': '1', 'state': 'AVAILABLE',
         'status': {'error_code': 'OK', 'error_message': ''}}]})
    code, answer = _call(rest_url + '/v1/models/ssd/metadata')
    assert code == 200 and 'detect' in answer['metadata']['signature_def']['signature_def']
    code, answer = _call(rest_url + '/v1/models/nope:predict', {'instances': [1]})
    assert code == 404 and 'nope' in answer['error']
    code, answer = _call(rest_url + '/v1/models/ssd:predict', {'instances': [[[1.0]]]})
    assert code == 400 and 'images' in answer['error']
    code, answer = _call(rest_url + '/v1/models/ssd:predict',
                         {'signature_name': 'bogus', 'instances': [1]})
    assert code == 400 and 'bogus' in answer['error']
    code, answer = _call(rest_url + '/v1/models/ssd:predict', {'foo': 1})
    assert code == 400 and 'instances' in answer['error']
