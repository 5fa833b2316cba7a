"""gunicorn settings: `gunicorn -c web/gunicorn.conf.py 'web:create_app()'`.

Each worker process builds its own app, so each holds its own SSDClient and gRPC channel
(the app is not preloaded: gRPC channels must not cross a fork). Override with
WEB_BIND, WEB_WORKERS, WEB_THREADS and WEB_TIMEOUT.
"""
import multiprocessing
import os

bind = os.environ.get('WEB_BIND', '127.0.0.1:5000')
workers = int(os.environ.get('WEB_WORKERS', min(4, 2 * multiprocessing.cpu_count())))
worker_class = 'gthread'
threads = int(os.environ.get('WEB_THREADS', 4))
# Longer than the client's deadline and retries, so a slow model server yields a 503, not a killed worker.
timeout = int(os.environ.get('WEB_TIMEOUT', 60))
graceful_timeout = 20
preload_app = False
accesslog = '-'
errorlog = '-'
loglevel = os.environ.get('WEB_LOG_LEVEL', 'info')
