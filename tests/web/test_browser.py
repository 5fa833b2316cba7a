"""Headless Chromium (Debian's package, driven by Playwright) uploads images through the page."""
import base64
import os
import threading

import pytest
from werkzeug.serving import make_server

from client.ssd_client import Detection
from common import drawing as common_drawing
from web import drawing
from web.screenshot import CHROMIUM, CHROMIUM_ARGS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(REPO, 'test_artifacts')
VIEWPORT = {'width': 1200, 'height': 900}

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                                      reason=f'{CHROMIUM} missing: run '
                                                             '`make browser`')]


def _serve(app):
    """Serves `app` on a free 127.0.0.1 port in a thread; yields its base URL."""
    server = make_server('127.0.0.1', 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_port}'
    server.shutdown()
    thread.join(10)


@pytest.fixture
def live_url(real_app):
    """The app with the real model server, on a free port; yields its base URL."""
    yield from _serve(real_app)


@pytest.fixture
def fake_url(fake_app):
    """The app with the fake client (fixed detections), on a free port; yields its base URL."""
    yield from _serve(fake_app)


@pytest.fixture(scope='module')
def browser():
    playwright_api = pytest.importorskip('playwright.sync_api')
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page that fails the test on any JavaScript error."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f'JavaScript errors: {errors}'


def _screenshot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, name), full_page=True)


def test_upload_shows_boxes_and_table(live_url, page, images, tmp_path):
    first, second = tmp_path / 'shapes one.png', tmp_path / 'notes.txt'
    first.write_bytes(images.encode(images.shapes(240, 320), 'PNG'))
    second.write_bytes(b'not an image at all')
    page.goto(live_url + '/')
    page.wait_for_selector('#model-info >> text=v1')
    page.set_input_files('#image-input', [str(first), str(second)])

    page.wait_for_selector('.card.failed .status >> text=not an image', timeout=60_000)
    card = page.locator('.card', has_text='shapes one.png')
    card.locator('a.download').wait_for(state='visible', timeout=120_000)
    boxes = card.locator('svg.overlay g.detection:not(.faded) rect.box')
    rows = card.locator('table.detections tbody tr:not(.empty)')
    assert boxes.count() > 0
    assert rows.count() == boxes.count()
    assert 'ssd v1' in card.locator('.summary').inner_text()
    assert card.locator('img').evaluate('img => img.naturalWidth') == 320
    assert card.locator('svg.overlay').get_attribute('viewBox') == '0 0 320 240'
    assert card.locator('a.download').get_attribute('download') == 'shapes_one.detections.json'
    _screenshot(page, 'web_page.png')

    # Raising the threshold filters boxes and rows in place.
    scores = [float(s) for s in rows.locator('td:nth-child(3)').all_inner_texts()]
    page.eval_on_selector('#threshold', "el => { el.value = '0.95'; "
                                        "el.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert boxes.count() == sum(score >= 0.95 for score in scores)
    assert page.locator('#threshold-value').inner_text() == '0.95'


def test_cards_in_upload_order_classes_and_legible_labels(live_url, page, images, tmp_path):
    paths = []
    for index, (height, width) in enumerate([(240, 320), (200, 260), (180, 300)]):
        path = tmp_path / f'{index + 1}.png'
        path.write_bytes(images.encode(images.shapes(height, width), 'PNG'))
        paths.append(str(path))
    page.goto(live_url + '/')
    page.wait_for_selector('#class-list:not([hidden])')
    assert 'detects 5 classes: circle, square, triangle, star, cross.' in page.inner_text(
        '#class-list')
    page.eval_on_selector('#threshold', "el => { el.value = '0.05'; }")
    page.set_input_files('#image-input', paths)
    page.wait_for_function('document.querySelectorAll(".card a.download:not([hidden])")'
                           '.length == 3', timeout=120_000)
    assert page.locator('.card h2').all_inner_texts() == ['1.png', '2.png', '3.png']

    card = page.locator('.card', has_text='1.png')
    body = card.locator('a.download').evaluate('a => fetch(a.href).then(r => r.json())')
    boxes = [d['box_px'] for d in body['detections']]
    rows = card.locator('table.detections tbody tr').locator('td.box').all_inner_texts()
    assert rows == [', '.join(str(v) for v in drawing.display_box(box)) for box in boxes]

    # A random model at 0.05 finds many boxes: at most MAX_LABELS labels, the rest on hover.
    assert len(boxes) > common_drawing.MAX_LABELS
    labels = card.locator('svg.overlay g.label')
    assert labels.count() == len(boxes)
    shown = card.locator('svg.overlay g.label:not(.on-hover)')
    assert 0 < shown.count() <= common_drawing.MAX_LABELS
    hidden = card.locator('svg.overlay g.label.on-hover')
    assert not hidden.first.is_visible()
    index = labels.evaluate_all('labels => labels.findIndex(l => l.classList.contains("on-hover"))')
    card.locator('svg.overlay g.detection').nth(len(boxes) - 1 - index).dispatch_event(
        'mouseenter')
    assert card.locator('svg.overlay g.label.on-hover.highlight').is_visible()
    fills = shown.locator('text').evaluate_all('texts => texts.map(t => t.getAttribute("fill"))')
    assert set(fills) <= {'#000000', '#ffffff'}
    _screenshot(page, 'web_page_low_threshold.png')


def test_an_empty_result_names_the_highest_score_and_a_click_lowers_the_slider(
        fake_url, fake_client, page, images, tmp_path):
    fake_client.detections = [Detection(3, 'triangle', 0.3, [10.0, 10.0, 60.0, 50.0]),
                              Detection(1, 'circle', 0.12, [80.0, 20.0, 120.0, 60.0])]
    path = tmp_path / 'short demo.png'
    path.write_bytes(images.encode(images.shapes(), 'PNG'))
    page.goto(fake_url + '/')
    page.set_input_files('#image-input', [str(path)])
    card = page.locator('.card', has_text='short demo.png')
    card.locator('a.download').wait_for(state='visible', timeout=60_000)
    empty = card.locator('table.detections tr.empty')
    assert empty.inner_text().startswith(
        'No detection scores 0.50 or more; the highest is 0.30 (triangle).')
    # The best ones under the threshold are drawn faded, with their labels.
    assert card.locator('svg.overlay g.detection.faded').count() == 2
    assert card.locator('svg.overlay g.detection:not(.faded)').count() == 0
    assert 'triangle 0.30' in card.locator('svg.overlay g.label.faded text').all_text_contents()
    _screenshot(page, 'web_page_empty_result.png')

    button = card.locator('button.lower-threshold')
    assert button.inner_text() == 'Lower the threshold to 0.30'
    button.click()
    assert page.locator('#threshold-value').inner_text() == '0.30'
    page.wait_for_function('document.querySelectorAll(".card svg.overlay g.detection:not(.faded)")'
                           '.length == 1', timeout=60_000)
    assert card.locator('table.detections tbody tr:not(.empty)').count() == 1
    assert card.locator('svg.overlay g.detection.faded').count() == 0
    # Lowering the slider below the threshold of the request asks again (each card once).
    page.wait_for_function('!document.querySelector(".card .status").textContent',
                           timeout=60_000)
    assert len(fake_client.calls) == 2


def test_detect_without_a_file_says_so(live_url, page):
    page.goto(live_url + '/')
    assert not page.locator('#error').is_visible()
    page.click('#detect-button')
    assert page.locator('#error').is_visible()
    assert 'Choose one or more images first' in page.inner_text('#error')
    assert page.locator('.card').count() == 0


def test_drag_and_drop(live_url, page, images):
    page.goto(live_url + '/')
    encoded = base64.b64encode(images.encode(images.shapes(100, 150), 'JPEG')).decode('ascii')
    page.evaluate("""data => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
        document.getElementById('dropzone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", encoded)
    card = page.locator('.card', has_text='dropped.jpg')
    card.locator('a.download').wait_for(state='visible', timeout=120_000)
    assert card.locator('svg.overlay').get_attribute('viewBox') == '0 0 150 100'
    assert card.locator('table.detections tbody tr').count() >= 1


def test_form_works_without_javascript(live_url, browser, images, tmp_path):
    path = tmp_path / 'plain.png'
    path.write_bytes(images.encode(images.shapes(120, 160), 'PNG'))
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    page = context.new_page()
    page.goto(live_url + '/')
    page.set_input_files('#image-input', str(path))
    page.click('#detect-button')
    page.wait_for_selector('.card img[src^="data:image/jpeg"]', timeout=120_000)
    assert page.locator('.card h2').inner_text() == 'plain.png'
    assert page.locator('table.detections tbody tr').count() >= 1
    assert page.locator('.card img').evaluate('img => img.naturalWidth') == 640  # enlarged x4
    _screenshot(page, 'web_page_no_js.png')
    context.close()
