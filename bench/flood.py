"""A flood of Predict requests against one model server: its answers and its memory.

    python -m bench.flood [--clients 48 --seconds 20 --deadline 1.0] [--model_base_path BASE]
        [--server_flags='--enable_batching --batching_parameters_file=serving/batching.config']

Starts `python -m serving.model_server` on 127.0.0.1 (by default on a randomly initialised
ssd_300_mobilenet_v2: speed does not depend on the weights), then `--clients` threads send
Predict (serving_default, one preprocessed 300x300 image, 1 MB) in a loop for `--seconds`, each
with a `--deadline` and no retry, far more than 2 cores run. Prints the answers by status code,
the server's resident memory (after warm-up, the peak during the flood, 3 s after it) and the
server's own count at exit: requests answered (and of those, answered after their deadline:
work for clients that had given up), refused at once as busy, ended at their deadline (dropped
while they waited, or cut during their run).
"""
import argparse
import collections
import logging
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time

import grpc
import numpy as np

from bench import machine, record
from bench.web_load import CLASSES, NETWORK, start, wait_for_port
from client import protos, tensor_proto
from common.ports import free_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SUMMARY = re.compile(r'Predict requests: (\d+) answered \((\d+) after their deadline\), (\d+) '
                      r'refused as busy, (\d+) ended at their deadline \((\d+) of them before')


def rss_mb(pid):
    """Resident memory of a process in MB (/proc/<pid>/status VmRSS)."""
    with open(f'/proc/{pid}/status', encoding='utf-8') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def _request():
    request = protos.PredictRequest()
    request.model_spec.name = 'ssd'
    tensor_proto.make_tensor_proto(np.zeros([1, 300, 300, 3], np.float32),
                                   request.inputs['images'])
    return request


def flood(address, clients, seconds, deadline):
    """Counter of status code names of the Predict calls of `clients` threads for `seconds`."""
    codes, lock = collections.Counter(), threading.Lock()
    request = _request()
    end = time.monotonic() + seconds

    def client():
        with grpc.insecure_channel(address, options=protos.MESSAGE_OPTIONS) as channel:
            predict = protos.unary_stub(channel, protos.PREDICTION_SERVICE, 'Predict')
            while time.monotonic() < end:
                try:
                    predict(request, timeout=deadline)
                    code = 'OK'
                except grpc.RpcError as e:
                    code = e.code().name
                with lock:
                    codes[code] += 1
                if code not in ('OK', 'DEADLINE_EXCEEDED'):
                    time.sleep(0.01)  # a refused client comes back at once, as a flood does

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    load = parser.add_argument_group('flood')
    load.add_argument('--clients', type=int, default=48, help='concurrent clients')
    load.add_argument('--seconds', type=float, default=20.0, help='how long they send')
    load.add_argument('--deadline', type=float, default=1.0, help='deadline of each call (s)')
    server = parser.add_argument_group('model server')
    server.add_argument('--model_base_path', default=None,
                        help='SavedModel base path (default: a random ssd_300_mobilenet_v2)')
    server.add_argument('--server_flags', default='', help='more model server flags')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.deadline <= 0:
        parser.error('--clients, --seconds and --deadline must be > 0')
    if args.model_base_path and not os.path.isdir(args.model_base_path):
        parser.error(f'--model_base_path {args.model_base_path} is not a folder')
    return args


def main(argv=None):
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    with tempfile.TemporaryDirectory(prefix='flood_') as scratch:
        if args.model_base_path:
            base = args.model_base_path
        else:
            from export import random_model  # pylint: disable=import-outside-toplevel
            base = random_model.export_random(NETWORK, scratch, CLASSES)
        address = f'127.0.0.1:{free_port()}'
        log_path = os.path.join(scratch, 'model_server.log')
        server = start([sys.executable, '-m', 'serving.model_server', '--host=127.0.0.1',
                        f'--port={address.rsplit(":", 1)[1]}', f'--model_base_path={base}',
                        *shlex.split(args.server_flags)],
                       dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'), log_path)
        try:
            wait_for_port(address, [server], deadline_s=300)
            warm = flood(address, 1, 2.0, 30.0)
            idle_mb = rss_mb(server.pid)
            peak, done = [idle_mb], threading.Event()

            def sample():
                while not done.wait(0.2):
                    peak.append(rss_mb(server.pid))

            sampler = threading.Thread(target=sample)
            sampler.start()
            logging.info('Flooding %s: %d clients for %.0f s', address, args.clients,
                         args.seconds)
            start_time = time.monotonic()
            codes = flood(address, args.clients, args.seconds, args.deadline)
            flood_s = time.monotonic() - start_time
            done.set()
            sampler.join()
            time.sleep(3.0)  # the memory the server keeps, once the flood is over
            after_mb = rss_mb(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        with open(log_path, encoding='utf-8', errors='replace') as f:
            log = f.read()
    summary = _SUMMARY.search(log)
    if summary is None or not warm.get('OK'):
        print('flood: error: the server did not answer or print its summary; its log ends:\n'
              + log[-3000:], file=sys.stderr)
        return 2
    answered, late, refused, expired, dropped = map(int, summary.groups())
    print(f'machine: {machine.describe()}')
    print(f'flood: {args.clients} clients, {args.deadline:.1f} s deadline, no retries, '
          f'{flood_s:.1f} s, server flags: {args.server_flags or "(defaults)"}')
    print('answers: ' + ', '.join(f'{code} {count}' for code, count in codes.most_common()))
    print(f'server RSS MB: after warm-up {idle_mb:.0f}, peak during the flood {max(peak):.0f}, '
          f'3 s after {after_mb:.0f}')
    print(f'server count: {answered} answered ({late} after their deadline: '
          f'{late / max(answered, 1):.1%} of the answers wasted), {refused} refused as busy, '
          f'{expired} ended at their deadline ({dropped} of them before they ran)')
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'flood'))
