"""Serving benchmark for ssd_300_mobilenet_v2: in-process vs gRPC Predict (serving_default, detect).

    python -m bench.serving [--iterations=40] [--model_name=ssd_300_mobilenet_v2]
        [--precision=mixed_bfloat16]

Exports a randomly initialised checkpoint (speed does not depend on the weights), starts
`python -m serving.model_server` as a separate process on 127.0.0.1 and measures, at batch 1
with 1 and 4 concurrent clients: (a) session.run in-process on a preprocessed image, (b) gRPC
Predict `serving_default` with the same float input, (c) gRPC Predict `detect` with JPEG bytes,
(d) SSDClient.detect (decode + numpy preprocessing + (b) + numpy NMS). Prints images/s, p50/p99
latency, request size, the gRPC overhead of (b) over (a), and the machine. With --precision
the export is made with export_model's --precision (the graph stays float32) and both the
in-process session and the server (`--precision`) run it in that precision.
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
import tf_slim as slim

from bench import machine
from common import labels as labels_lib
from common import np_preprocessing
from common import precision as precision_lib
from common import signatures as sig
from export import ssd_export
from nets import nets_factory
from nets import precision as nets_precision
from serving import client as client_lib
from serving import protos, tensor_proto
from serving.model_server import GRPC_OPTIONS
from tests import helpers

NUM_CLASSES = 21


def _export(model_name, work, precision=precision_lib.FLOAT32):
    """Random-init checkpoint -> export. Returns the export base path."""
    network = nets_factory.get_network(model_name, NUM_CLASSES)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        size = network.params.img_shape
        with slim.arg_scope(network.arg_scope()):
            network.net(tf.zeros([1, size[0], size[1], 3]), is_training=False)
        session.run(tf.compat.v1.global_variables_initializer())
        checkpoint = tf.compat.v1.train.Saver().save(session,
                                                     os.path.join(work, 'train', 'model.ckpt'))
    labels_file = os.path.join(work, 'labels.txt')
    labels_lib.write_labels(labels_file, {i: 'class%d' % i for i in range(1, NUM_CLASSES)})
    base = os.path.join(work, 'exports', 'ssd')
    ssd_export.export(model_name, checkpoint, base, labels_file, precision=precision)
    return base


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
        base = _export(args.model_name, work, args.precision)
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

        process, address = helpers.start_model_server(
            base, flags=['--precision=%s' % args.precision])
        helpers.wait_until_serving(address, process, deadline_s=300)
        channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        predict = protos.unary_stub(channel, protos.PREDICTION_SERVICE, 'Predict')
        float_request = _request(sig.DEFAULT_SIGNATURE, sig.IMAGES, images)
        jpeg_request = _request(sig.DETECT_SIGNATURE, sig.ENCODED_IMAGES, [jpeg])
        ssd_client = client_lib.SSDClient(address, network=args.model_name, timeout=60)
        cases = [
            ('(a) in-process session.run', '-', lambda: run_in_process(images)),
            ('(b) gRPC serving_default float', float_request.ByteSize(),
             lambda: predict(float_request, timeout=60)),
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
        finally:
            ssd_client.close()
            channel.close()
            helpers.stop_process(process, timeout=60)
            session.close()

    print('Serving benchmark: %s in %s, batch 1, %d requests per client, %dx%d JPEG of %d '
          'bytes' % (args.model_name, args.precision, args.iterations, picture.shape[1],
                     picture.shape[0], len(jpeg)))
    print('machine: %s' % machine.describe())
    print('%-32s %7s %10s %9s %9s %14s' % ('case', 'clients', 'images/s', 'p50 ms', 'p99 ms',
                                           'request bytes'))
    for (name, concurrency), (rate, p50, p99, size) in results.items():
        print('%-32s %7d %10.1f %9.1f %9.1f %14s' % (name, concurrency, rate, p50, p99, size))
    in_process = results['(a) in-process session.run', 1][1]
    grpc_float = results['(b) gRPC serving_default float', 1][1]
    print('gRPC overhead at batch 1 (p50 of (b) over (a)): %+.1f%% (goal <= 15%%)'
          % (100.0 * (grpc_float / in_process - 1.0)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
