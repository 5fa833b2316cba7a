"""The upload page and its no-JavaScript form POST."""
import base64
import io
import json
import re


def test_index_page(fake_app):
    response = fake_app.test_client().get('/')
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'name="image"' in html
    assert 'name="score_threshold"' in html and 'value="0.50"' in html
    assert 'Model <strong>ssd</strong>' in html
    assert not re.search(r'(src|href)="(https?:)?//', html), 'no external resources'
    for asset in ('/static/app.js', '/static/style.css'):
        assert asset in html
        assert fake_app.test_client().get(asset).status_code == 200


def test_form_post_renders_detections_without_javascript(fake_app, images):
    data = images.encode(images.shapes(), 'PNG')
    response = fake_app.test_client().post('/', data={'image': (io.BytesIO(data), 'my<script>.png'),
                                                      'score_threshold': '0.2'})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<script>.png' not in html and 'my&lt;script&gt;.png' in html
    assert html.split('<template')[0].count('<tr>') == 3  # header + 2 detections
    assert 'circle' in html and 'triangle' in html and '0.900' in html
    assert 'fake-ssd v7' in html
    image_uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(image_uri)[:2] == b'\xff\xd8'
    json_uri = re.search(r'href="data:application/json;base64,([^"]+)" download', html).group(1)
    download = json.loads(base64.b64decode(json_uri))
    assert download['filename'] == 'my<script>.png'
    assert [d['class_name'] for d in download['detections']] == ['circle', 'triangle']
    assert 'value="0.20"' in html


def test_form_post_without_detections(fake_app, images):
    data = images.encode(images.shapes(), 'PNG')
    response = fake_app.test_client().post('/', data={'image': (io.BytesIO(data), 'a.png'),
                                                      'score_threshold': '0.95'})
    assert 'No detections above 0.95' in response.get_data(as_text=True)


def test_form_errors_are_shown_on_the_page(fake_app, images):
    client = fake_app.test_client()
    cases = [({'image': (io.BytesIO(b''), '')}, 400, 'No file'),
             ({'image': (io.BytesIO(b''), 'e.png')}, 400, 'empty'),
             ({'image': (io.BytesIO(b'text'), 't.png')}, 400, 'not an image'),
             ({'image': (io.BytesIO(b'x' * (2 * 2**20)), 'big.png')}, 413, 'limit of 1 MB'),
             ({'image': (io.BytesIO(images.encode(images.shapes(), 'JPEG')[:300]), 'cut.jpg')}, 400,
              'truncated')]
    for form, status, text in cases:
        response = client.post('/', data=form)
        assert response.status_code == status
        assert response.mimetype == 'text/html'
        html = response.get_data(as_text=True)
        assert 'role="alert"' in html and text in html and 'Traceback' not in html
        assert 'name="image"' in html  # the form is there to try again


def test_page_when_model_server_down(fake_app, fake_client, images):
    from serving.client import ServingUnavailable
    fake_client.error = ServingUnavailable('UNAVAILABLE from x: refused')
    response = fake_app.test_client().post('/', data={'image': (io.BytesIO(images.encode(images.shapes())),
                                                                'a.png')})
    assert response.status_code == 503 and response.headers['Retry-After'] == '5'
    assert 'model server is unavailable' in response.get_data(as_text=True)


def test_unknown_page_is_html_404(fake_app):
    response = fake_app.test_client().get('/nothing')
    assert response.status_code == 404 and response.mimetype == 'text/html'
