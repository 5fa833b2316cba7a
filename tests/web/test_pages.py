"""The upload page and its no-JavaScript form POST."""
import base64
import html as html_lib
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
    assert ('No detection scores 0.95 or more; the highest is 0.90 (circle): lower the threshold '
            'to 0.90 and detect again.') in response.get_data(as_text=True)


def test_form_post_with_nothing_detected_at_all(fake_app, fake_client, images):
    fake_client.detections = []
    data = images.encode(images.shapes(), 'PNG')
    response = fake_app.test_client().post('/', data={'image': (io.BytesIO(data), 'a.png')})
    assert 'Nothing detected in this image, at any threshold.' in response.get_data(as_text=True)


def test_form_errors_are_shown_on_the_page(fake_app, images):
    client = fake_app.test_client()
    cases = [({'image': (io.BytesIO(b''), '')}, 400, 'Choose an image first, then press Detect.'),
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


def test_no_file_message_is_for_people_on_the_page_and_names_the_field_in_the_api(fake_app):
    client = fake_app.test_client()
    html = client.post('/', data={'score_threshold': '0.5'}).get_data(as_text=True)
    assert 'Choose an image first' in html and 'form field' not in html
    api = client.post('/api/v1/detect', data={'score_threshold': '0.5'}).json
    assert 'field "image"' in api['error']['message']


def test_page_lists_formats_palette_and_hint(fake_client, images):
    from web import create_app
    app = create_app({'CLIENT': fake_client, 'TESTING': True,
                      'MODEL_HINT': 'Trained on synthetic shapes: try demo_work/shapes_voc.'})
    html = app.test_client().get('/').get_data(as_text=True)
    assert 'JPEG, PNG, GIF, BMP or WebP, up to 10 MB each' in html
    assert 'accept="image/jpeg,image/png,image/gif,image/bmp,image/webp"' in html
    assert 'id="class-list"' in html
    assert 'Trained on synthetic shapes: try demo_work/shapes_voc.' in html
    palette = json.loads(html_lib.unescape(re.search(r'data-palette="([^"]+)"', html).group(1)))
    assert palette[0] == {'fill': '#f3c300', 'text': '#000000'}
    assert palette[1] == {'fill': '#875692', 'text': '#ffffff'}
    assert 'data-max-labels="12"' in html
    assert 'model-hint' not in create_app({'CLIENT': fake_client}).test_client().get('/').get_data(
        as_text=True)


def test_server_table_rounds_boxes_as_the_javascript_table(fake_app, fake_client, images):
    """Math.round: 186.5 -> 187; the old table truncated (186)."""
    from client.ssd_client import Detection
    fake_client.detections = [Detection(2, 'square', 0.8, [26.4, 32.5, 86.5, 95.7])]
    data = images.encode(images.shapes(), 'PNG')
    html = fake_app.test_client().post('/', data={'image': (io.BytesIO(data), 'a.png')}).get_data(
        as_text=True)
    assert '<td class="box">26, 33, 87, 96</td>' in html


def test_page_when_model_server_down(fake_app, fake_client, images):
    from client.ssd_client import ServingUnavailable
    fake_client.error = ServingUnavailable('UNAVAILABLE from x: refused')
    data = images.encode(images.shapes())
    response = fake_app.test_client().post('/', data={'image': (io.BytesIO(data), 'a.png')})
    assert response.status_code == 503 and response.headers['Retry-After'] == '5'
    assert 'model server is unavailable' in response.get_data(as_text=True)


def test_unknown_page_is_html_404(fake_app):
    response = fake_app.test_client().get('/nothing')
    assert response.status_code == 404 and response.mimetype == 'text/html'
