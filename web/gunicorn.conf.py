"""gunicorn settings: `gunicorn -c web/gunicorn.conf.py 'web:create_app()'`.

Each worker process builds its own app, so each holds its own SSDClient and gRPC channel
(the app is not preloaded: gRPC channels must not cross a fork). Override with
WEB_BIND, WEB_WORKERS, WEB_THREADS, WEB_TIMEOUT and WEB_LOG_LEVEL.

In production an nginx front (web/nginx/default.conf.template) reads every request whole before
passing it on: slow clients hold an nginx connection, not one of these threads.

Request lines up to gunicorn's maximum (8190 bytes) reach the app, which answers a query string
over web.app.MAX_QUERY_BYTES with a JSON 414; only a longer request line, or a header over
8190 bytes, still gets gunicorn's own plain 400 page.
"""
import multiprocessing
import os


def _positive_int(name, default):
    text = os.environ.get(name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(f'gunicorn.conf.py: {name}={text!r} must be a positive integer')
    return int(text)


bind = os.environ.get('WEB_BIND') or '127.0.0.1:5000'
workers = _positive_int('WEB_WORKERS', min(4, 2 * multiprocessing.cpu_count()))
worker_class = 'gthread'
threads = _positive_int('WEB_THREADS', 4)
# Longer than the client's deadline and retries: a slow model server yields a 503, not a killed
# worker.
timeout = _positive_int('WEB_TIMEOUT', 60)
graceful_timeout = 20
preload_app = False
limit_request_line = 8190  # gunicorn's maximum (default 4094)
limit_request_field_size = 8190
accesslog = '-'
# Control bytes of User-Agent, Referer and the other request text are escaped (\xNN).
logger_class = 'web.access_log.EscapingLogger'
errorlog = '-'
loglevel = os.environ.get('WEB_LOG_LEVEL') or 'info'
