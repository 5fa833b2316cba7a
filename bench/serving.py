"""Serving benchmark for ssd_300_mobilenet_v2: in-process vs gRPC Predict (serving_default, detect).

    python -m bench.serving [--iterations=40] [--model_name=ssd_300_mobilenet_v2]
        [--precision=mixed_bfloat16] [--skip_batching] [--batching_config=FILE] [--skip_split]

Exports a randomly initialised checkpoint (speed does not depend on the weights), starts
`python -m serving.model_server` as a separate process on 127.0.0.1 and measures, at batch 1
with 1 and 4 concurrent clients: (a) the signature's session callable in-process on a
preprocessed image, (b) `SSDClient.predict` on `serving_default` with the same float input (the
TensorFlow-free client: numpy in, gRPC Predict, numpy out), (c) gRPC Predict `detect` with JPEG
bytes, (d) SSDClient.detect (decode + numpy preprocessing + (b) + numpy NMS). Prints images/s,
p50/p99 latency, request size, the gRPC overhead of (b) over (a), and the machine.

Then (unless --skip_split) where the overhead goes: each step of (b) besides the run, timed
apart at batch 1 (median of 200): the client's request (TensorProto + serialization), the
server's parsing and decoding, its answer (TensorProtos + serialization), the gRPC round trip
of messages of the same sizes (an echo server in this process), and the client's parsing of the
answer into numpy. And (unless --skip_batching) 8 clients of (b) against the server without and
with `--enable_batching --batching_parameters_file=serving/batching.config` (or
--batching_config): images/s, p50, p99 and the mean batch the server ran.

With --precision the export is made with export_model's --precision (the graph stays float32)
and both the in-process session and the server (`--precision`) run it in that precision.
"""
import argparse
import os
import sys
import tempfile
import threading
import time

import cv2
import grpc
import numpy as np
import tensorflow as tf

from bench import machine, record
from client import protos, tensor_proto
from client import ssd_client as client_lib
from common import np_preprocessing
from common import precision as precision_lib
from common import signatures as sig
from export import random_model
from nets import nets_factory
from nets import precision as nets_precision
from serving import launch
from serving.model_server import GRPC_OPTIONS

NUM_CLASSES = 21
CLASS_NAMES = ['background'] + ['class%d' % i for i in range(1, NUM_CLASSES)]
BATCHING_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               'serving', 'batching.config')
SPLIT_ITERATIONS = 200
BATCHING_CLIENTS = 8


def _picture(height=480, width=640):
    """A smooth synthetic photo-like RGB image (JPEG size like a real photo's, not like noise)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([128 + 100 * np.sin(x / 37.0), 128 + 100 * np.cos(y / 23.0),
                      (x + y) % 256], -1)
    cv2.circle(image, (width // 3, height // 2), height // 5, (250, 40, 40), -1)
    cv2.rectangle(image, (width // 2, height // 4), (width * 4 // 5, height * 3 // 4),
                  (30, 200, 60), -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def _measure(call, iterations, concurrency):
    """Runs call() iterations times per worker thread. Returns (images/s, p50 ms, p99 ms)."""
    for _ in range(2):
        call()
    latencies = []
    lock = threading.Lock()

    def worker():
        mine = []
        for _ in range(iterations):
            start = time.perf_counter()
            call()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    return len(latencies) / elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _median_ms(call, iterations=SPLIT_ITERATIONS):
    """Median wall time of call() in ms, after 5 warm-up calls."""
    for _ in range(5):
        call()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _echo_round_trip(request_bytes, response_bytes):
    """Median ms of a gRPC unary call carrying request_bytes and answering response_bytes
    (no protobuf: the serializers pass bytes through), on a server in this process."""
    from concurrent import futures  # pylint: disable=import-outside-toplevel
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=GRPC_OPTIONS)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: response_bytes)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler('echo',
                                                                          {'Echo': handler})])
    port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    channel = grpc.insecure_channel('127.0.0.1:%d' % port, options=GRPC_OPTIONS)
    try:
        echo = channel.unary_unary('/echo/Echo')
        return _median_ms(lambda: echo(request_bytes, timeout=60))
    finally:
        channel.close()
        server.stop(0)


def split(images, outputs):
    """Times each step of a serving_default Predict besides the run, apart.

    Args:
      images: float32 [1, H, W, 3], the request's input.
      outputs: dict alias -> array, the signature's answer (scores [1, A, C], boxes [1, A, 4]).
    Returns:
      list of (step, median ms).
    """
    def client_request():
        request = protos.PredictRequest()
        request.model_spec.name = sig.DEFAULT_MODEL_NAME
        request.model_spec.signature_name = sig.DEFAULT_SIGNATURE
        tensor_proto.make_tensor_proto(images, request.inputs[sig.IMAGES])
        return request.SerializeToString()

    def server_request():
        request = protos.PredictRequest.FromString(request_bytes)
        proto = request.inputs[sig.IMAGES]
        tensor_proto.decoded_size(proto)
        return tensor_proto.make_ndarray(proto)

    def server_response():
        response = protos.PredictResponse()
        response.model_spec.name = sig.DEFAULT_MODEL_NAME
        response.model_spec.version.value = 1
        for alias, value in outputs.items():
            tensor_proto.make_tensor_proto(value, response.outputs[alias])
        return response.SerializeToString()

    def client_response():
        response = protos.PredictResponse.FromString(response_bytes)
        return {alias: tensor_proto.make_ndarray(proto)
                for alias, proto in response.outputs.items()}

    request_bytes, response_bytes = client_request(), server_response()
    return [('client: numpy -> TensorProto -> request bytes (%d)' % len(request_bytes),
             _median_ms(client_request)),
            ('server: parse request, check, decode to numpy', _median_ms(server_request)),
            ('server: numpy -> TensorProtos -> answer bytes (%d)' % len(response_bytes),
             _median_ms(server_response)),
            ('gRPC round trip of those bytes (HTTP/2 over loopback)',
             _echo_round_trip(request_bytes, response_bytes)),
            ('client: parse answer, decode to numpy', _median_ms(client_response))]


def _batching(base, images, args, batching):
    """8 clients of SSDClient.predict against a server with or without batching.

    Returns:
      (images/s, p50 ms, p99 ms, the server's log line on its batches or '').
    """
    flags = ['--precision=%s' % args.precision]
    if batching:
        flags += ['--enable_batching', '--batching_parameters_file=%s' % args.batching_config]
    with tempfile.TemporaryFile('w+') as log:
        process, address = launch.start_model_server(base, flags=flags, log=log)
        try:
            launch.wait_until_serving(address, process, deadline_s=300)
            with client_lib.SSDClient(address, timeout=120) as ssd_client:
                figures = _measure(lambda: ssd_client.predict({sig.IMAGES: images}),
                                   args.iterations, BATCHING_CLIENTS)
        finally:
            launch.stop_process(process, timeout=60)
        log.seek(0)
        batches = [line.split('INFO ', 1)[-1].strip() for line in log if 'Batching:' in line]
    return figures + (batches[-1] if batches else '',)


def _request(signature, alias, value):
    request = protos.PredictRequest()
    request.model_spec.name = sig.DEFAULT_MODEL_NAME
    request.model_spec.signature_name = signature
    tensor_proto.make_tensor_proto(value, request.inputs[alias])
    if signature == sig.DETECT_SIGNATURE:
        request.output_filter.extend(sig.DETECTION_OUTPUTS)
    return request


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iterations', type=int, default=40, help='requests per client and case')
    parser.add_argument('--model_name', default='ssd_300_mobilenet_v2',
                        choices=nets_factory.NETWORK_NAMES)
    precision_lib.add_flag(parser)
    parser.add_argument('--skip_batching', action='store_true',
                        help='do not measure 8 clients with and without server-side batching')
    parser.add_argument('--batching_config', default=BATCHING_CONFIG,
                        help='BatchingParameters file of the batched server')
    parser.add_argument('--skip_split', action='store_true',
                        help='do not time the steps of the gRPC path apart')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error('--iterations must be >= 1')
    try:
        nets_precision.check_machine(args.precision)
    except ValueError as error:
        parser.error(str(error))
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    tf.compat.v1.disable_eager_execution()
    tf.get_logger().setLevel('ERROR')

    picture = _picture()
    jpeg = cv2.imencode('.jpg', cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    with tempfile.TemporaryDirectory(prefix='bench_serving_') as work:
        base = random_model.export_random(args.model_name, work, CLASS_NAMES,
                                          precision=args.precision)
        params = nets_factory.get_network(args.model_name, NUM_CLASSES).params
        images = np_preprocessing.preprocess_image(picture, params.img_shape,
                                                   params.normalization)[None]

        session = tf.compat.v1.Session(graph=tf.Graph(),
                                       config=nets_precision.session_config(args.precision))
        meta = tf.compat.v1.saved_model.loader.load(session, [sig.SERVE_TAG],
                                                    os.path.join(base, '1'))
        signature = meta.signature_def[sig.DEFAULT_SIGNATURE]
        # The same session callable the model server makes for a signature.
        run_in_process = session.make_callable(
            [signature.outputs[alias].name for alias in sorted(signature.outputs)],
            feed_list=[signature.inputs[sig.IMAGES].name])

        process, address = launch.start_model_server(
            base, flags=['--precision=%s' % args.precision])
        launch.wait_until_serving(address, process, deadline_s=300)
        channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        predict = protos.unary_stub(channel, protos.PREDICTION_SERVICE, 'Predict')
        float_request = _request(sig.DEFAULT_SIGNATURE, sig.IMAGES, images)
        jpeg_request = _request(sig.DETECT_SIGNATURE, sig.ENCODED_IMAGES, [jpeg])
        ssd_client = client_lib.SSDClient(address, timeout=60)
        cases = [
            ('(a) in-process session callable', '-', lambda: run_in_process(images)),
            ('(b) SSDClient.predict float', float_request.ByteSize(),
             lambda: ssd_client.predict({sig.IMAGES: images}, sig.DEFAULT_SIGNATURE)),
            ('(c) gRPC detect JPEG', jpeg_request.ByteSize(),
             lambda: predict(jpeg_request, timeout=60)),
            ('(d) SSDClient.detect JPEG', float_request.ByteSize(),
             lambda: ssd_client.detect(jpeg)),
        ]
        results = {}
        try:
            for name, size, call in cases:
                for concurrency in (1, 4):
                    results[name, concurrency] = _measure(call, args.iterations,
                                                          concurrency) + (size,)
            steps = None if args.skip_split else split(images, dict(zip(
                sorted(signature.outputs), run_in_process(images))))
        finally:
            ssd_client.close()
            channel.close()
            launch.stop_process(process, timeout=60)
            session.close()
        batched = {} if args.skip_batching else {
            batching: _batching(base, images, args, batching) for batching in (False, True)}

    print('Serving benchmark: %s in %s, batch 1, %d requests per client, %dx%d JPEG of %d '
          'bytes' % (args.model_name, args.precision, args.iterations, picture.shape[1],
                     picture.shape[0], len(jpeg)))
    print('machine: %s' % machine.describe())
    print('%-32s %7s %10s %9s %9s %14s' % ('case', 'clients', 'images/s', 'p50 ms', 'p99 ms',
                                           'request bytes'))
    for (name, concurrency), (rate, p50, p99, size) in results.items():
        print('%-32s %7d %10.1f %9.1f %9.1f %14s' % (name, concurrency, rate, p50, p99, size))
    in_process = results['(a) in-process session callable', 1][1]
    grpc_float = results['(b) SSDClient.predict float', 1][1]
    print('gRPC overhead at batch 1 (p50 of (b) over (a)): %+.1f%% = %.2f ms (goal <= 15%%)'
          % (100.0 * (grpc_float / in_process - 1.0), grpc_float - in_process))
    if steps:
        print('where the overhead goes (each step timed apart, median of %d):' % SPLIT_ITERATIONS)
        for step, ms in steps:
            print('  %-58s %6.3f ms' % (step, ms))
        print('  %-58s %6.3f ms (measured (b) - (a): %.2f ms)'
              % ('sum', sum(ms for _, ms in steps), grpc_float - in_process))
    for batching, (rate, p50, p99, batches) in batched.items():
        print('%d clients of (b), server batching %-3s: %6.1f images/s, p50 %6.1f ms, '
              'p99 %6.1f ms %s' % (BATCHING_CLIENTS, 'on' if batching else 'off', rate, p50, p99,
                                   batches))
    if batched:
        with open(args.batching_config, encoding='utf-8') as config:
            print('batching: %s: %s' % (args.batching_config, ' '.join(
                line.strip() for line in config if line.strip() and not line.startswith('#'))))
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'serving'))
