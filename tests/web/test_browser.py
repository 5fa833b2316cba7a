"""Headless Chromium (Debian's package, driven by Playwright) uploads images through the page."""
import os
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = '/usr/lib/chromium/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         'test_artifacts')

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                                      reason=f'{CHROMIUM} missing: run `make browser`')]


@pytest.fixture
def live_url(real_app):
    """The app on a free 127.0.0.1 port in a thread; yields its base URL."""
    server = make_server('127.0.0.1', 0, real_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_port}'
    server.shutdown()
    thread.join(10)


@pytest.fixture
def page():
    playwright_api = pytest.importorskip('playwright.sync_api')
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={'width': 1200, 'height': 900})
        errors = []
        page.on('pageerror', lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert not errors, f'JavaScript errors: {errors}'


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
    boxes = card.locator('svg.overlay rect.box')
    rows = card.locator('table.detections tbody tr:not(.empty)')
    assert boxes.count() > 0
    assert rows.count() == boxes.count()
    assert 'ssd v1' in card.locator('.summary').inner_text()
    assert card.locator('img').evaluate('img => img.naturalWidth') == 320
    assert card.locator('svg.overlay').get_attribute('viewBox') == '0 0 320 240'
    assert card.locator('a.download').get_attribute('download') == 'shapes_one.detections.json'

    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, 'web_page.png'), full_page=True)

    # Raising the threshold filters boxes and rows in place.
    scores = [float(s) for s in rows.locator('td:nth-child(3)').all_inner_texts()]
    page.eval_on_selector('#threshold', "el => { el.value = '0.95'; "
                                        "el.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert boxes.count() == sum(score >= 0.95 for score in scores)
    assert page.locator('#threshold-value').inner_text() == '0.95'
