"""Load test of the web app under gunicorn: N requests from C concurrent clients on 127.0.0.1.

    python -m bench.web_load [--requests 300 --concurrency 8 --workers 2] [--image small]
        [--model_base_path exports/ssd | --serving_address host:port | --url http://host:port]
        [--servers 2 [--kill | --stop SECONDS]] [--serving_timeout S --attempt_timeout S]

By default it exports a randomly initialised ssd_300_mobilenet_v2 (speed does not depend on the
weights), starts `python -m serving.model_server` and gunicorn (web/gunicorn.conf.py) on free
ports, posts a synthetic image to /api/v1/detect and prints latency percentiles, throughput and
(when it started gunicorn) the peak memory of the web workers. --image chooses the upload:
`small` (a 400x300 JPEG), `png6000` (a 6000x6000 PNG of about 150 KB, mostly flat) or
`jpeg6000` (a 6000x4000 JPEG photo-like gradient). With --serving_address it uses that model
server; with --url it loads a running app. --servers N starts N model servers on the same export
and gives gunicorn all their addresses (SERVING_ADDRESS=a:p,b:q, balanced round-robin); --kill
SIGKILLs the first server once a third of the requests are done, starts it again on its port and
reports p50/p99 before, during (until it listens again) and after (clients go on until as many
requests as before the kill have started after it and --after_seconds have passed), and the
CPU seconds each of the two servers spent since the restart (similar figures: requests reach the
restarted one again). --stop SECONDS hangs the first server instead (SIGSTOP, then SIGCONT after
SECONDS) and reports the same phases, the share of requests answered, the longest request and
GET /healthz, probed every 0.1 s during the load. Exits 1 when any request failed (with --stop:
when fewer than --min_success of them succeeded).
"""
import argparse
import concurrent.futures
import contextlib
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import cv2
import numpy as np

from bench import machine, record
from client import waiting
from common import ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORK = 'ssd_300_mobilenet_v2'
CLASSES = ['background', 'circle', 'square', 'triangle', 'star', 'cross']


def synthetic_picture(height, width):
    """A few filled shapes on a grey background, uint8 [H, W, 3] (BGR)."""
    image = np.full((height, width, 3), 190, np.uint8)
    cv2.circle(image, (width // 3, height // 3), height // 6, (40, 40, 220), -1)
    cv2.rectangle(image, (width // 2, height // 2), (width - 30, height - 25), (200, 80, 30), -1)
    return image


def synthetic_jpeg(height=300, width=400):
    """A JPEG of a few filled shapes on a grey background."""
    image = synthetic_picture(height, width)
    return cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def large_png(side=6000):
    """A side x side PNG of flat shapes: small file (~150 KB), many pixels."""
    return cv2.imencode('.png', synthetic_picture(side, side))[1].tobytes()


def large_jpeg(height=4000, width=6000):
    """A height x width JPEG with gradients and shapes (a few MB, like a phone photo)."""
    image = synthetic_picture(height, width)
    ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :, None]
    image = np.clip(image + ramp + np.linspace(0, 40, height, dtype=np.float32)[:, None, None],
                    0, 255).astype(np.uint8)
    return cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


IMAGES = {'small': ('image/jpeg', synthetic_jpeg), 'png6000': ('image/png', large_png),
          'jpeg6000': ('image/jpeg', large_jpeg)}


def _export_random_model(root):
    """A randomly initialised NETWORK exported as `<root>/ssd/1` (imports TensorFlow)."""
    from export import random_model  # pylint: disable=import-outside-toplevel
    return random_model.export_random(NETWORK, root, CLASSES)


def wait_for_port(address, processes, deadline_s):
    """Waits until host:port accepts TCP connections (the model server binds after loading)."""
    host, port = address.rsplit(':', 1)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        _check_running(processes)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f'nothing listens on {address} after {deadline_s} s')


def _check_running(processes):
    for process in processes:
        if process.poll() is not None:
            raise RuntimeError(f'{process.args[2]} exited with status {process.returncode}')


def wait_until_healthy(url, processes, deadline_s):
    """Polls GET /healthz until 200; raises RuntimeError when a process exits or time runs out."""
    if not waiting.wait_for_url(url + '/healthz', deadline_s, interval_s=0.5,
                                alive=lambda: all(p.poll() is None for p in processes)):
        _check_running(processes)
        raise RuntimeError(f'{url}/healthz not healthy after {deadline_s} s')


def post_image(url, data, content_type='image/jpeg'):
    """POSTs the image as the raw body; returns (HTTP status, seconds, start time)."""
    parsed = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    try:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        connection.request('POST', '/api/v1/detect', body=data,
                           headers={'Content-Type': content_type})
        response = connection.getresponse()
        body = response.read()
        status = response.status
        if status != 200:
            logging.warning('HTTP %d: %s', status, body[:300].decode('utf-8', 'replace'))
        connection.close()
    except OSError as e:
        logging.warning('request failed: %s', e)
        status = 0
    return status, time.perf_counter() - start, start


def run_load(url, data, num_requests, concurrency, content_type='image/jpeg', on_done=None,
             more=None):
    """Sends num_requests POSTs (or more) from `concurrency` threads.

    Args:
      on_done: optional callable(number of requests done), called from the client threads after
        each request (e.g. to kill a server midway).
      more: optional callable(results so far) -> bool: clients keep sending past num_requests
        while it is True.

    Returns:
      dict with latencies_ms (sorted list of successful requests), errors (dict status -> count),
      seconds (wall time), results (list of (status, seconds, start perf_counter)).
    """
    results, lock = [], threading.Lock()
    started = [0]

    def client():
        while True:
            with lock:
                if started[0] >= num_requests and not (more is not None and more(results)):
                    return
                started[0] += 1
            result = post_image(url, data, content_type)
            with lock:
                results.append(result)
                done = len(results)
            if on_done is not None:
                on_done(done)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    seconds = time.perf_counter() - start
    errors = {}
    for status, _, _ in results:
        if status != 200:
            errors[status] = errors.get(status, 0) + 1
    latencies = sorted(1e3 * s for status, s, _ in results if status == 200)
    return {'latencies_ms': latencies, 'errors': errors, 'seconds': seconds, 'results': results}


def phase_latencies(results, fault_at, back_at):
    """Sorted latencies (ms) of the successful requests started before the fault, while the
    server was down or stopped (until it served again) and after."""
    phases = {'before': [], 'during': [], 'after': []}
    for status, seconds, start in results:
        if status == 200:
            phase = 'before' if start < fault_at else 'during' if start < back_at else 'after'
            phases[phase].append(1e3 * seconds)
    return {name: sorted(values) for name, values in phases.items()}


def cpu_seconds(pid):
    """User + system CPU seconds a process has used (/proc/<pid>/stat)."""
    with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class _Fault:
    """A fault injected into the first model server after `after` requests, in a thread of its
    own (subclasses: _inject).

    Attributes:
      fault_at, back_at: perf_counter times of the fault and of the server serving again.
    """

    def __init__(self, after, after_seconds):
        self._after, self._after_seconds = after, after_seconds
        self._lock = threading.Lock()
        self._thread = None
        self.fault_at = self.back_at = None

    def __call__(self, done):
        with self._lock:
            if done < self._after or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._inject, daemon=True)
            self._thread.start()

    def _inject(self):
        raise NotImplementedError

    def more(self, results):
        """True until the server is back, `after` requests have started since (the "after"
        phase gets as many requests as the "before" one) and `after_seconds` have passed (the
        clients' channels reconnect to it within about a second)."""
        if self._thread is None:
            return False
        if self.back_at is None:
            return self._thread.is_alive()  # False when the restart failed
        return (time.perf_counter() < self.back_at + self._after_seconds or
                sum(start >= self.back_at for _, _, start in results) < self._after)

    def join(self, timeout):
        """Waits for the server to be back (the run is reported only then)."""
        if self._thread is not None:
            self._thread.join(timeout)


class ServerKiller(_Fault):
    """Kills a model server with SIGKILL after `after` requests, then starts it again.

    Attributes:
      process: the restarted server's process.
      cpu_at_start: CPU seconds of the restarted server and of its peer (processes[index + 1])
        when it listened again.
    """

    def __init__(self, processes, index, address, env, log_path, after, after_seconds):
        super().__init__(after, after_seconds)
        self._processes, self._index, self._address = processes, index, address
        self._command, self._env, self._log_path = processes[index].args, env, log_path
        self.peer = processes[index + 1]
        self.process = self.cpu_at_start = None

    def _inject(self):
        victim = self._processes[self._index]
        self.fault_at = time.perf_counter()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        logging.info('Killed model server pid %d; starting it again', victim.pid)
        self.process = start(self._command, self._env, self._log_path)
        self._processes[self._index] = self.process
        wait_for_port(self._address, [self.process], deadline_s=180)
        self.cpu_at_start = (cpu_seconds(self.process.pid), cpu_seconds(self.peer.pid))
        self.back_at = time.perf_counter()
        logging.info('Model server pid %d listens again', self.process.pid)


class ServerStopper(_Fault):
    """Hangs a model server (SIGSTOP) after `after` requests for `seconds`, then SIGCONTs it:
    its kernel still accepts connections, the process answers nothing."""

    def __init__(self, process, seconds, after, after_seconds):
        super().__init__(after, after_seconds)
        self._process, self._seconds = process, seconds

    def _inject(self):
        self.fault_at = time.perf_counter()
        self._process.send_signal(signal.SIGSTOP)
        logging.info('Stopped model server pid %d for %.0f s', self._process.pid, self._seconds)
        try:
            time.sleep(self._seconds)  # the length of the fault
        finally:
            self._process.send_signal(signal.SIGCONT)
        self.back_at = time.perf_counter()
        logging.info('Model server pid %d continues', self._process.pid)


class HealthProbe:
    """GET /healthz every 0.1 s in a thread until stopped, as Kubernetes' probe (1 s timeout,
    recorded as failed beyond).

    Attributes:
      results: (HTTP status or 0, seconds) of each probe.
    """

    def __init__(self, url, timeout=1.0):
        self._url, self._timeout = urllib.parse.urlsplit(url), timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.results = []

    def _run(self):
        while not self._stop.wait(0.1):
            start = time.perf_counter()
            try:
                connection = http.client.HTTPConnection(self._url.hostname, self._url.port,
                                                        timeout=self._timeout)
                connection.request('GET', '/healthz')
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = 0
            self.results.append((status, time.perf_counter() - start))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def percentile(sorted_values, q):
    """Nearest-rank percentile (q in [0, 100]) of a sorted list."""
    if not sorted_values:
        return float('nan')
    rank = max(1, int(np.ceil(q / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


def _kib(status, field):
    """A `field:  N kB` value of a /proc/<pid>/status text, in KiB (0 when absent)."""
    for line in status.splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    return 0


def worker_memory_mb(master_pid):
    """(current, peak) resident MB of the largest child of a process (a gunicorn worker)."""
    best = (0, 0)
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/status', encoding='utf-8') as f:
                status = f.read()
        except OSError:
            continue
        if _kib(status, 'PPid') == master_pid:
            best = max(best, (_kib(status, 'VmRSS') / 1024, _kib(status, 'VmHWM') / 1024),
                       key=lambda pair: pair[1])
    return best


def start(command, env, log_path):
    log = open(log_path, 'wb')
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(processes):
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _show_logs(folder):
    """Writes the last lines of the servers' logs to stderr."""
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.log'):
            continue
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, errors='replace') as log:
                sys.stderr.write(f'--- {name} (last lines)\n' + ''.join(log.readlines()[-20:]))


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    load = parser.add_argument_group('load')
    load.add_argument('--requests', type=int, default=300, help='total requests')
    load.add_argument('--concurrency', type=int, default=8, help='concurrent clients')
    load.add_argument('--warmup', type=int, default=4, help='requests sent before timing')
    load.add_argument('--image', default='small', choices=sorted(IMAGES), help='what to upload')
    target = parser.add_argument_group(
        'target (default: a random model, model server and gunicorn)')
    target.add_argument('--url', default=None, help='base URL of a running web app')
    target.add_argument('--serving_address', default=None,
                        help='host:port of a running model server')
    target.add_argument('--model_base_path', default=None, help='SavedModel base path to serve')
    target.add_argument('--workers', type=int, default=2, help='gunicorn workers')
    target.add_argument('--servers', type=int, default=1, help='model servers to start')
    target.add_argument('--kill', action='store_true',
                        help='SIGKILL the first model server after a third of the requests and '
                             'start it again')
    target.add_argument('--stop', type=float, default=0.0,
                        help='SIGSTOP the first model server after a third of the requests, '
                             'for this many seconds, then SIGCONT it')
    target.add_argument('--after_seconds', type=float, default=3.0,
                        help='with --kill or --stop: the least time the load goes on after the '
                             'server is back')
    target.add_argument('--threads', type=int, default=4, help='threads per gunicorn worker')
    target.add_argument('--serving_timeout', type=float, default=None,
                        help="the app's SERVING_TIMEOUT (default: the app's)")
    target.add_argument('--attempt_timeout', type=float, default=None,
                        help="the app's SERVING_ATTEMPT_TIMEOUT (default: the app's)")
    target.add_argument('--min_success', type=float, default=1.0,
                        help='with --stop: the share of requests that must succeed')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    for flag in ('requests', 'concurrency', 'workers', 'servers', 'threads'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag} must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    if sum(x is not None for x in (args.url, args.serving_address, args.model_base_path)) > 1:
        parser.error('give at most one of --url, --serving_address and --model_base_path')
    if args.model_base_path and not os.path.isdir(args.model_base_path):
        parser.error(f'--model_base_path {args.model_base_path} is not a folder')
    if (args.servers > 1 or args.kill) and (args.url or args.serving_address):
        parser.error('--servers and --kill start their own model servers: '
                     'not with --url or --serving_address')
    if args.after_seconds < 0:
        parser.error('--after_seconds must be >= 0')
    if (args.kill or args.stop) and args.servers < 2:
        parser.error('--kill and --stop need --servers >= 2 (the others answer meanwhile)')
    if args.kill and args.stop:
        parser.error('give --kill or --stop, not both')
    if args.stop < 0:
        parser.error('--stop must be >= 0')
    if not 0 <= args.min_success <= 1:
        parser.error('--min_success must be between 0 and 1')
    return args


def server_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')


def start_servers(args, scratch, processes):
    """Starts the model servers (unless given) and gunicorn.

    Returns:
      (url, gunicorn process, addresses of the model servers started, in `processes` order).
    """
    env = server_env()
    address, addresses = args.serving_address, []
    if address is None:
        base = args.model_base_path
        if base is None:
            logging.info('Exporting a randomly initialised %s', NETWORK)
            base = _export_random_model(scratch)
        for index in range(args.servers):
            addresses.append(f'127.0.0.1:{ports.free_port()}')
            processes.append(start([sys.executable, '-m', 'serving.model_server',
                                    '--host=127.0.0.1', f'--port={addresses[-1].rsplit(":")[1]}',
                                    f'--model_base_path={base}'],
                                   env, os.path.join(scratch, f'model_server{index}.log')))
        # Started before the servers listen, the app's gRPC channels would sit in backoff.
        for server in addresses:
            wait_for_port(server, processes, deadline_s=180)
        address = ','.join(addresses)
    bind = f'127.0.0.1:{ports.free_port()}'
    env = dict(env, SERVING_ADDRESS=address, WEB_BIND=bind, WEB_WORKERS=str(args.workers),
               WEB_THREADS=str(args.threads), WEB_LOG_LEVEL='warning')
    for name, value in (('SERVING_TIMEOUT', args.serving_timeout),
                        ('SERVING_ATTEMPT_TIMEOUT', args.attempt_timeout)):
        if value is not None:
            env[name] = str(value)
    gunicorn = start([sys.executable, '-m', 'gunicorn', '-c', 'web/gunicorn.conf.py',
                      'web:create_app()'], env, os.path.join(scratch, 'gunicorn.log'))
    processes.append(gunicorn)
    return f'http://{bind}', gunicorn, addresses


def main(argv=None):
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    content_type, make_image = IMAGES[args.image]
    data = make_image()
    processes, memory = [], None
    with tempfile.TemporaryDirectory(prefix='web_load_') as scratch:
        try:
            url, gunicorn, killer = args.url, None, None
            if url is None:
                url, gunicorn, addresses = start_servers(args, scratch, processes)
                if args.kill:
                    killer = ServerKiller(processes, 0, addresses[0], server_env(),
                                          os.path.join(scratch, 'model_server0.restarted.log'),
                                          after=max(1, args.requests // 3),
                                          after_seconds=args.after_seconds)
                elif args.stop:
                    killer = ServerStopper(processes[0], args.stop,
                                           after=max(1, args.requests // 3),
                                           after_seconds=args.after_seconds)
            started = time.monotonic()
            logging.info('Waiting for %s/healthz', url)
            wait_until_healthy(url, processes, deadline_s=180)
            startup_s = time.monotonic() - started
            run_load(url, data, args.warmup, min(args.warmup, args.concurrency) or 1,
                     content_type)
            idle = worker_memory_mb(gunicorn.pid)[0] if gunicorn else None
            logging.info('Sending %d requests from %d clients', args.requests, args.concurrency)
            health = HealthProbe(url) if killer else contextlib.nullcontext()
            with health:
                result = run_load(url, data, args.requests, args.concurrency, content_type,
                                  on_done=killer, more=killer.more if killer else None)
            if killer:
                killer.join(timeout=180)
                if killer.back_at is None:
                    raise RuntimeError('the model server did not serve again in time')
            if args.kill:
                restarted_cpu_s = (cpu_seconds(killer.process.pid) - killer.cpu_at_start[0],
                                   cpu_seconds(killer.peer.pid) - killer.cpu_at_start[1])
            if gunicorn:
                memory = (idle, worker_memory_mb(gunicorn.pid)[1])
        except (RuntimeError, subprocess.CalledProcessError) as e:
            _show_logs(scratch)
            print(f'web_load.py: error: {e}', file=sys.stderr)
            return 2
        finally:
            stop(processes)
        if result['errors']:
            _show_logs(scratch)
    latencies, errors = result['latencies_ms'], result['errors']
    sent = len(result['results'])
    print(f'machine: {machine.describe()}')
    print(f'web load: {sent} requests, {args.concurrency} concurrent, '
          f'{args.image} image ({len(data)} bytes, {content_type}), '
          f'{"gunicorn " + str(args.workers) + " workers" if not args.url else args.url}')
    print(f'ok {len(latencies)}  errors {sum(errors.values())} {errors or ""}')
    print(f'latency ms: p50 {percentile(latencies, 50):.1f}  p90 {percentile(latencies, 90):.1f}  '
          f'p99 {percentile(latencies, 99):.1f}  '
          f'max {latencies[-1] if latencies else float("nan"):.1f}')
    print(f'throughput: {len(latencies) / result["seconds"]:.1f} requests/s')
    if killer:
        phases = phase_latencies(result['results'], killer.fault_at, killer.back_at)
        print(f'server 0 {"killed (SIGKILL)" if args.kill else "stopped (SIGSTOP)"} after '
              f'{args.requests // 3} requests, {"listening" if args.kill else "continued"} again '
              f'{killer.back_at - killer.fault_at:.1f} s later')
        for name, values in phases.items():
            print(f'  {name:6s}: {len(values):4d} ok, p50 {percentile(values, 50):.1f} ms, '
                  f'p99 {percentile(values, 99):.1f} ms')
    if args.kill:
        print(f'  CPU s since it listened again: restarted server {restarted_cpu_s[0]:.2f}, '
              f'other server {restarted_cpu_s[1]:.2f}')
    if killer:
        longest = max(seconds for _, seconds, _ in result['results'])
        print(f'success {len(latencies) / max(sent, 1):.1%}, longest request '
              f'{1e3 * longest:.1f} ms')
        probes = sorted(seconds for _, seconds in health.results)
        print(f'/healthz: {len(probes)} probes, {sum(s != 200 for s, _ in health.results)} not '
              f'200, p50 {1e3 * percentile(probes, 50):.1f} ms, max '
              f'{1e3 * max(probes, default=0):.1f} ms')
    if memory:
        print(f'web worker memory MB: after warm-up {memory[0]:.0f}, peak {memory[1]:.0f}')
        print(f'gunicorn start-up (spawn to first healthy /healthz): {startup_s:.1f} s')
    if args.stop:
        return 0 if len(latencies) >= args.min_success * sent else 1
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'web_load'))
