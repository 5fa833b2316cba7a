"""Waits until a URL answers 200, or until a model server serves an AVAILABLE version.

    python -m web.wait_ready --url=http://127.0.0.1:5000/healthz --timeout=180
    python -m web.wait_ready --serving_address=127.0.0.1:8500 --model_name=ssd --timeout=180

`make demo` waits for the model server first and starts the web app after it, so the app's
/healthz is 200 from its first answer (no expected 503 lines in the log). The polls are
client.waiting's (no TensorFlow).
"""
import argparse
import sys

from client import waiting


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
        if waiting.wait_for_url(args.url, args.timeout, interval_s=0.5):
            return 0
        print('%s did not answer 200 within %.0f s' % (args.url, args.timeout), file=sys.stderr)
        return 1
    if waiting.wait_until_available(args.serving_address, args.model_name, args.timeout,
                                    interval_s=0.5):
        return 0
    print('%s serves no AVAILABLE version of model %r after %.0f s'
          % (args.serving_address, args.model_name, args.timeout), file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
