"""Screenshot of the page with detections, for the docs (needs requirements-test.txt + chromium).

    python -m web.screenshot --url=http://127.0.0.1:5000 --image=a.jpg [--image=b.jpg] \
        --output=docs/web_page.png [--score_threshold=0.5]

Uploads the images through the page in headless Chromium (Debian's /usr/lib/chromium/chromium),
waits for every result and saves a full-page PNG (written atomically).
"""
import argparse
import os
import sys

from common.files import atomic_write

CHROMIUM = '/usr/lib/chromium/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']


def take_screenshot(url, image_paths, output, score_threshold=None, width=1200, timeout_s=120):
    """Uploads image_paths on the page at url and writes a PNG screenshot to output."""
    from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': width, 'height': 800})
            page.goto(url.rstrip('/') + '/')
            if score_threshold is not None:
                page.eval_on_selector('#threshold', '(el, v) => { el.value = v; }',
                                      str(score_threshold))
                page.dispatch_event('#threshold', 'input')
            page.set_input_files('#image-input', list(image_paths))
            page.wait_for_function(
                'n => document.querySelectorAll('
                '".card a.download:not([hidden]), .card.failed").length >= n',
                arg=len(image_paths), timeout=timeout_s * 1000)
            page.evaluate('window.scrollTo(0, 0)')
            atomic_write(output, page.screenshot(full_page=True))
        finally:
            browser.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--url', default='http://127.0.0.1:5000',
                        help='base URL of the running web app')
    parser.add_argument('--image', action='append', required=True,
                        help='image to upload (repeatable)')
    parser.add_argument('--output', required=True, help='PNG file to write')
    parser.add_argument('--score_threshold', type=float, default=None,
                        help='slider value (0.05-0.95)')
    args = parser.parse_args(argv)
    for path in args.image:
        if not os.path.isfile(path):
            parser.error(f'--image {path}: no such file')
    if not os.path.exists(CHROMIUM):
        parser.error(f'{CHROMIUM} is missing: run `make browser`')
    if args.score_threshold is not None and not 0.05 <= args.score_threshold <= 0.95:
        parser.error('--score_threshold must be between 0.05 and 0.95')
    take_screenshot(args.url, args.image, args.output, args.score_threshold)
    print(f'Wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
