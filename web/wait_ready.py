"""Waits until a URL answers 200, or until a model server serves an AVAILABLE version.

    python -m web.wait_ready --url=http://127.0.0.1:5000/healthz --timeout=180
    python -m web.wait_ready --serving_address=127.0.0.1:8500 --model_name=ssd --timeout=180

`make demo` waits for the model server first and starts the web app after it, so the app's
/healthz is 200 from its first answer (no expected 503 lines in the log). Polling a URL needs
only the standard library; polling a model server imports the TensorFlow-free gRPC client.
"""
import argparse
import sys
import time
import urllib.error
import urllib.request


def _poll(ready, timeout_s, interval_s):
    """Calls `ready()` every `interval_s` seconds until it is true (True) or `timeout_s` ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(interval_s)
    return False


def _url_answers_200(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(url, timeout_s, interval_s=0.5):
    """Polls `url` until it returns 200; returns True, or False after `timeout_s` seconds."""
    return _poll(lambda: _url_answers_200(url), timeout_s, interval_s)


def wait_serving(address, model_name, timeout_s, interval_s=0.5):
    """Polls the model server(s) at `address` until one reports an AVAILABLE version of
    `model_name`; returns True, or False after `timeout_s` seconds."""
    from client import ssd_client as client_lib  # pylint: disable=import-outside-toplevel

    with client_lib.SSDClient(address, model_name, retries=0) as client:
        def available():
            try:
                versions = client.status(timeout=min(2.0, timeout_s))['versions']
            except client_lib.ServingError:
                return False
            return any(v['state'] == 'AVAILABLE' for v in versions)

        return _poll(available, timeout_s, interval_s)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--url', help='URL that must answer 200')
    target.add_argument('--serving_address', help='model server(s) that must serve the model')
    parser.add_argument('--model_name', default='ssd', help='with --serving_address')
    parser.add_argument('--timeout', type=float, default=180.0, help='seconds')
    args = parser.parse_args(argv)
    if args.url:
        if wait_ready(args.url, args.timeout):
            return 0
        print('%s did not answer 200 within %.0f s' % (args.url, args.timeout), file=sys.stderr)
        return 1
    if wait_serving(args.serving_address, args.model_name, args.timeout):
        return 0
    print('%s serves no AVAILABLE version of model %r after %.0f s'
          % (args.serving_address, args.model_name, args.timeout), file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
