"""Load test of the web app under gunicorn: N requests from C concurrent clients on 127.0.0.1.

    python -m bench.web_load [--requests 300 --concurrency 8 --workers 2] [--image small]
        [--model_base_path exports/ssd | --serving_address host:port | --url http://host:port]

By default it exports a randomly initialised ssd_300_mobilenet_v2 (speed does not depend on the
weights), starts `python -m serving.model_server` and gunicorn (web/gunicorn.conf.py) on free
ports, posts a synthetic image to /api/v1/detect and prints latency percentiles, throughput and
(when it started gunicorn) the peak memory of the web workers. --image chooses the upload:
`small` (a 400x300 JPEG), `png6000` (a 6000x6000 PNG of about 150 KB, mostly flat) or
`jpeg6000` (a 6000x4000 JPEG photo-like gradient). With --serving_address it uses that model
server; with --url it loads a running app. Exits 1 when any request failed.
"""
import argparse
import concurrent.futures
import http.client
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import cv2
import numpy as np

from bench import machine

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


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def export_random_model(root):
    """Exports a random network with export_model.py as `<root>/ssd/1`; returns the base path."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tf_slim  # pylint: disable=import-outside-toplevel

    from datasets import labels as labels_lib  # pylint: disable=import-outside-toplevel
    from nets import nets_factory  # pylint: disable=import-outside-toplevel

    tf.compat.v1.disable_eager_execution()
    labels = os.path.join(root, labels_lib.LABELS_FILENAME)
    labels_lib.write_labels(labels, dict(enumerate(CLASSES)))
    network = nets_factory.get_network(NETWORK, num_classes=len(CLASSES))
    height, width = network.params.img_shape
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        with tf_slim.arg_scope(network.arg_scope()):
            network.net(tf.zeros([1, height, width, 3]), is_training=False)
        session.run(tf.compat.v1.global_variables_initializer())
        checkpoint = tf.compat.v1.train.Saver().save(session, os.path.join(root, 'model.ckpt'))
    base = os.path.join(root, 'ssd')
    subprocess.run([sys.executable, 'export_model.py', f'--checkpoint_path={checkpoint}',
                    f'--model_name={NETWORK}', f'--labels_file={labels}',
                    f'--export_dir={base}', '--version=1'],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return base


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
    parsed = urllib.parse.urlsplit(url)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        _check_running(processes)
        try:
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
            connection.request('GET', '/healthz')
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f'{url}/healthz not healthy after {deadline_s} s')


def post_image(url, data, content_type='image/jpeg'):
    """POSTs the image as the raw body; returns (HTTP status, seconds)."""
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
    return status, time.perf_counter() - start


def run_load(url, data, num_requests, concurrency, content_type='image/jpeg'):
    """Sends num_requests POSTs from `concurrency` threads.

    Returns:
      dict with latencies_ms (sorted list of successful requests), errors (dict status -> count),
      seconds (wall time).
    """
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: post_image(url, data, content_type),
                                range(num_requests)))
    seconds = time.perf_counter() - start
    errors = {}
    for status, _ in results:
        if status != 200:
            errors[status] = errors.get(status, 0) + 1
    latencies = sorted(1e3 * s for status, s in results if status == 200)
    return {'latencies_ms': latencies, 'errors': errors, 'seconds': seconds}


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
    for name in ('model_server.log', 'gunicorn.log'):
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
    args = parser.parse_args(argv)
    for flag in ('requests', 'concurrency', 'workers'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag} must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    if sum(x is not None for x in (args.url, args.serving_address, args.model_base_path)) > 1:
        parser.error('give at most one of --url, --serving_address and --model_base_path')
    if args.model_base_path and not os.path.isdir(args.model_base_path):
        parser.error(f'--model_base_path {args.model_base_path} is not a folder')
    return args


def start_servers(args, scratch, processes):
    """Starts the model server (unless given) and gunicorn; returns (url, gunicorn process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    address = args.serving_address
    if address is None:
        base = args.model_base_path
        if base is None:
            logging.info('Exporting a randomly initialised %s', NETWORK)
            base = export_random_model(scratch)
        address = f'127.0.0.1:{free_port()}'
        processes.append(start([sys.executable, '-m', 'serving.model_server', '--host=127.0.0.1',
                                f'--port={address.rsplit(":", 1)[1]}',
                                f'--model_base_path={base}'],
                               env, os.path.join(scratch, 'model_server.log')))
        # Started before the server listens, the app's gRPC channels would sit in backoff.
        wait_for_port(address, processes, deadline_s=180)
    bind = f'127.0.0.1:{free_port()}'
    env.update(SERVING_ADDRESS=address, WEB_BIND=bind, WEB_WORKERS=str(args.workers),
               WEB_LOG_LEVEL='warning')
    gunicorn = start([sys.executable, '-m', 'gunicorn', '-c', 'web/gunicorn.conf.py',
                      'web:create_app()'], env, os.path.join(scratch, 'gunicorn.log'))
    processes.append(gunicorn)
    return f'http://{bind}', gunicorn


def main(argv=None):
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    content_type, make_image = IMAGES[args.image]
    data = make_image()
    processes, memory = [], None
    with tempfile.TemporaryDirectory(prefix='web_load_') as scratch:
        try:
            url, gunicorn = args.url, None
            if url is None:
                url, gunicorn = start_servers(args, scratch, processes)
            logging.info('Waiting for %s/healthz', url)
            wait_until_healthy(url, processes, deadline_s=180)
            run_load(url, data, args.warmup, min(args.warmup, args.concurrency) or 1,
                     content_type)
            idle = worker_memory_mb(gunicorn.pid)[0] if gunicorn else None
            logging.info('Sending %d requests from %d clients', args.requests, args.concurrency)
            result = run_load(url, data, args.requests, args.concurrency, content_type)
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
    print(f'machine: {machine.describe()}')
    print(f'web load: {args.requests} requests, {args.concurrency} concurrent, '
          f'{args.image} image ({len(data)} bytes, {content_type}), '
          f'{"gunicorn " + str(args.workers) + " workers" if not args.url else args.url}')
    print(f'ok {len(latencies)}  errors {sum(errors.values())} {errors or ""}')
    print(f'latency ms: p50 {percentile(latencies, 50):.1f}  p90 {percentile(latencies, 90):.1f}  '
          f'p99 {percentile(latencies, 99):.1f}  '
          f'max {latencies[-1] if latencies else float("nan"):.1f}')
    print(f'throughput: {len(latencies) / result["seconds"]:.1f} requests/s')
    if memory:
        print(f'web worker memory MB: after warm-up {memory[0]:.0f}, peak {memory[1]:.0f}')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
