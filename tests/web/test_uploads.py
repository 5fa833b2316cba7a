"""web/uploads.py: what the upload path accepts and how it names what it refuses."""
import io

import numpy as np
import PIL.Image
import pytest

from web import uploads


def _post_file(client, data, filename='a.jpg', path='/api/v1/detect', **fields):
    return client.post(path, data={'image': (io.BytesIO(data), filename), **fields})


def test_jpeg_with_data_after_its_end_marker_is_accepted(fake_app, fake_client, images):
    """Motion photos append a video; the old check refused half of these as truncated."""
    data = images.encode(images.shapes(), 'JPEG')
    rng = np.random.default_rng(0)
    client = fake_app.test_client()
    for copy in range(20):
        trailing = rng.integers(0, 256, 4000 + 500 * copy, dtype=np.uint8).tobytes()
        if copy % 2:
            trailing = trailing[:1000] + b'\xff\xda' + trailing[1000:]  # a start-of-scan marker
        response = _post_file(client, data + trailing, f'motion{copy}.jpg')
        assert response.status_code == 200, response.json
        assert response.json['image'] == {'width': 160, 'height': 120}
    assert len(fake_client.calls) == 20


def test_mpo_from_a_phone_camera_is_accepted(fake_app, images):
    first = PIL.Image.fromarray(images.shapes())
    buffer = io.BytesIO()
    first.save(buffer, 'MPO', save_all=True, append_images=[first.transpose(0)])
    response = _post_file(fake_app.test_client(), buffer.getvalue(), 'photo.mpo')
    assert response.status_code == 200, response.json
    assert response.json['image'] == {'width': 160, 'height': 120}


def test_too_many_form_parts_names_the_limit(fake_app, images):
    """1001 small fields (about 100 KB, far under the 1 MB upload limit)."""
    fields = {f'f{i}': 'x' for i in range(1001)}
    response = _post_file(fake_app.test_client(), images.encode(images.shapes()), **fields)
    assert response.status_code == 413
    error = response.json['error']
    assert error['code'] == 'too_many_form_parts'
    assert '1,000 parts' in error['message'] and 'MAX_FORM_PARTS' in error['message']
    assert 'MB' not in error['message']


def test_large_form_field_names_the_limit(fake_app, images):
    response = _post_file(fake_app.test_client(), images.encode(images.shapes()),
                          score_threshold='0' * 600_000)
    assert response.status_code == 413
    error = response.json['error']
    assert error['code'] == 'form_field_too_large'
    assert '500,000 bytes' in error['message'] and 'MAX_FORM_MEMORY_SIZE' in error['message']


def test_form_limit_on_the_page(fake_app, images):
    fields = {f'f{i}': 'x' for i in range(1001)}
    response = _post_file(fake_app.test_client(), images.encode(images.shapes()), path='/',
                          **fields)
    assert response.status_code == 413 and response.mimetype == 'text/html'
    assert 'more than 1,000 parts' in response.get_data(as_text=True)


def test_upload_over_the_size_limit_still_says_so(fake_app):
    response = _post_file(fake_app.test_client(), b'\0' * (2 * 2**20), 'big.png')
    assert response.status_code == 413
    assert response.json['error']['code'] == 'file_too_large'
    assert 'limit of 1 MB' in response.json['error']['message']


@pytest.mark.parametrize('chunk', [1, 7, 64, 10_000])
def test_boundary_counter_counts_markers_split_across_reads(chunk):
    body = (b'--XyZ\r\na\r\n' * 5) + b'--XyZ--\r\n'
    counter = uploads._BoundaryCounter(io.BytesIO(body), b'XyZ')
    while counter.read(chunk):
        pass
    assert counter.parts == 5


def test_long_query_string_is_a_json_414(fake_app):
    response = fake_app.test_client().get('/api/v1/model?x=' + 'a' * 5000)
    assert response.status_code == 414 and response.is_json
    assert response.json['error']['code'] == 'query_too_long'
    assert '4,096' in response.json['error']['message']
    assert fake_app.test_client().get('/api/v1/model?x=' + 'a' * 4000).status_code == 200
