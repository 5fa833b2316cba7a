"""Waits until a URL answers 200, e.g. the app's /healthz once the model server is up.

    python -m web.wait_ready --url=http://127.0.0.1:5000/healthz --timeout=180
"""
import argparse
import sys
import time
import urllib.error
import urllib.request


def wait_ready(url, timeout_s, interval_s=0.5):
    """Polls `url` until it returns 200; returns True, or False after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(interval_s)
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--url', required=True)
    parser.add_argument('--timeout', type=float, default=180.0, help='seconds')
    args = parser.parse_args(argv)
    if wait_ready(args.url, args.timeout):
        return 0
    print('%s did not answer 200 within %.0f s' % (args.url, args.timeout), file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
