"""Slow clients against the web tier: the /healthz probe while clients trickle requests.

    python -m bench.slow_clients [--clients 40 --seconds 10] [--fronts direct,nginx]
        [--workers 2 --threads 4] [--serving_address host:port]

Starts gunicorn (web/gunicorn.conf.py) on 127.0.0.1 and, for the `nginx` front, nginx with
web/nginx/default.conf.template in front of it (`make nginx` installs Debian's nginx-light).
Per front, `--clients` connections send a request head one byte per second for `--seconds`
while a probe asks GET /healthz in a loop (each probe waits at most `--seconds` + 5 s), and the
probe latencies are printed: gunicorn's threads each wait on one slow client, nginx reads the
slow requests itself. Without --serving_address the app points at a port where nothing listens
(/healthz answers 503 at once): the figure is the web tier's own delay.
"""
import argparse
import http.client
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from bench import machine, record
from common.ports import free_port
from web import nginx_front

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRONTS = ('direct', 'nginx')


def wait_for(port, process, deadline_s=120):
    """Waits until something answers HTTP on 127.0.0.1:port (any status)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f'{process.args[0]} exited with {process.returncode}')
        try:
            probe(port, 5)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f'nothing answers on port {port} after {deadline_s} s')


def probe(port, timeout):
    """GET /healthz; returns (HTTP status, seconds)."""
    start = time.monotonic()
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        connection.request('GET', '/healthz')
        status = connection.getresponse().status
    finally:
        connection.close()
    return status, time.monotonic() - start


class Tricklers:
    """Connections that each send a request head one byte per second until stopped."""

    HEAD = b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 4000

    def __init__(self, port, count):
        self._port, self._count = port, count
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._trickle, daemon=True)
                         for _ in range(count)]
        self.connected = 0

    def _trickle(self):
        try:
            with socket.create_connection(('127.0.0.1', self._port), timeout=5) as sock:
                self.connected += 1
                for byte in self.HEAD:
                    sock.sendall(bytes([byte]))
                    if self._stop.wait(1.0):
                        return
        except OSError:
            pass  # cut off by the server: what a front should do

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def measure(port, clients, seconds):
    """(answered, seconds) of each probe while `clients` trickle."""
    results = []
    with Tricklers(port, clients):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.monotonic()
            try:
                results.append((True, probe(port, seconds + 5)[1]))
            except OSError as e:
                logging.warning('probe failed: %s', e)
                results.append((False, time.monotonic() - start))
            time.sleep(0.2)
    return results


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    load = parser.add_argument_group('slow clients')
    load.add_argument('--clients', type=int, default=40, help='trickling connections')
    load.add_argument('--seconds', type=float, default=10.0, help='how long they trickle')
    web = parser.add_argument_group('web tier')
    web.add_argument('--fronts', default=','.join(FRONTS),
                     help='comma-separated: direct (gunicorn alone), nginx (nginx in front)')
    web.add_argument('--workers', type=int, default=2, help='gunicorn workers')
    web.add_argument('--threads', type=int, default=4, help='threads per gunicorn worker')
    web.add_argument('--serving_address', default=None,
                     help='model server(s) of the app (default: a port where nothing listens)')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    args.fronts = [front.strip() for front in args.fronts.split(',') if front.strip()]
    if not args.fronts or set(args.fronts) - set(FRONTS):
        parser.error(f'--fronts must list some of {", ".join(FRONTS)}')
    for flag in ('clients', 'workers', 'threads'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag} must be >= 1')
    if args.seconds <= 0:
        parser.error('--seconds must be > 0')
    if 'nginx' in args.fronts and nginx_front.executable() is None:
        parser.error('--fronts nginx needs nginx (make nginx: apt-get install nginx-light)')
    return args


def main(argv=None):
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    results, processes = {}, []
    with tempfile.TemporaryDirectory(prefix='slow_clients_') as scratch:
        try:
            web_port = free_port()
            env = dict(os.environ, WEB_BIND=f'127.0.0.1:{web_port}',
                       WEB_WORKERS=str(args.workers), WEB_THREADS=str(args.threads),
                       WEB_LOG_LEVEL='warning', SERVING_RETRIES='0',
                       SERVING_ADDRESS=args.serving_address or f'127.0.0.1:{free_port()}')
            log = open(os.path.join(scratch, 'gunicorn.log'), 'wb')
            gunicorn = subprocess.Popen([sys.executable, '-m', 'gunicorn', '-c',
                                         'web/gunicorn.conf.py', 'web:create_app()'],
                                        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            processes.append(gunicorn)
            wait_for(web_port, gunicorn)
            for front in args.fronts:
                port = web_port
                if front == 'nginx':
                    port = free_port()
                    nginx = nginx_front.start_local(
                        os.path.join(scratch, 'nginx'), port, f'127.0.0.1:{web_port}',
                        open(os.path.join(scratch, 'nginx.log'), 'wb'))
                    processes.append(nginx)
                    wait_for(port, nginx)
                logging.info('%s: %d clients trickle for %.0f s', front, args.clients,
                             args.seconds)
                results[front] = measure(port, args.clients, args.seconds)
        except (RuntimeError, OSError) as e:
            print(f'slow_clients: error: {e}', file=sys.stderr)
            return 2
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
    print(f'machine: {machine.describe()}')
    print(f'slow clients: {args.clients} connections sending a request head at 1 byte/s for '
          f'{args.seconds:.0f} s; gunicorn {args.workers} workers x {args.threads} threads')
    for front, probes in results.items():
        seconds = sorted(s for _, s in probes)
        failed = sum(not answered for answered, _ in probes)
        print(f'{front:6s}: /healthz probes {len(probes)}, unanswered {failed}, '
              f'p50 {1e3 * seconds[len(seconds) // 2]:.1f} ms, max {1e3 * seconds[-1]:.1f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'slow_clients'))
