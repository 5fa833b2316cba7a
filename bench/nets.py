"""Benchmark of the SSD networks: forward images/s and numpy post-processing time.

Prints the machine (CPU model, cores, load, TF version, the float32 matmul GFLOP/s
reached right now, which shows how much of the CPU other processes leave), then for each
network and batch size the forward throughput of a session run of the serving graph
(network + softmax + box decoding, NHWC), then the median time of
common.np_post_processing.postprocess for one image of 8732 anchors x 21 classes.

With --precision=mixed_bfloat16 (or mixed_float16) each case runs in float32 and in that
precision, in two sessions of the same graph with the same weights, taking turns run by run
so that both see the same machine load; it prints both rates, their ratio, the ops the
rewrite converted and the largest score change (random weights: a check of the numbers, not
of the accuracy). --batch_norm=both adds the graph without batch norm folded into the
convolutions (nets/batch_norm.py), again taking turns.

With --tflite it times the LiteRT (TFLite) models instead (export/tflite_export.py, raw
variant, random weights; int8 calibrated on random images): for each network and each of
--tflite_quantizations, batch 1 in the LiteRT interpreter (XNNPACK) with each of
--tflite_threads threads, against the TensorFlow session in float32 at batch 1 with as many
intra-op threads (and in --precision, when this CPU runs it).

    python -m bench.nets [--networks=ssd_300_vgg,...] [--batch_sizes=1,8]
        [--intra_op_threads=2] [--inter_op_threads=1] [--iterations=10]
        [--precision=mixed_bfloat16] [--batch_norm=folded|unfolded|both]
    python -m bench.nets --tflite [--networks=ssd_300_mobilenet_v2]
        [--tflite_quantizations=none,float16,int8] [--tflite_threads=1,2]
"""
import argparse
import functools
import logging
import os
import sys
import time

import numpy as np

from bench import machine, record
from common import np_box_ops, np_post_processing, tflite_model
from common import precision as precision_lib
from nets import anchors as anchors_lib
from nets import nets_factory, ssd_params


def _gflop(outputs):
    """GFLOP of the ops `outputs` need (the TF profiler on that part of the graph only: with
    batch norm folded, the unfolded convolutions stay in the graph but never run)."""
    import tensorflow as tf
    needed = tf.compat.v1.graph_util.extract_sub_graph(
        outputs[0].graph.as_graph_def(), [t.op.name for t in outputs])
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(needed, name='')
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options['output'] = 'none'
        return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops / 1e9


def forward_images_per_second(name, batch_size, iterations, warmup, config,
                              precisions=(precision_lib.FLOAT32,), folds=(True,)):
    """Forward speed of the serving graph of network `name` at `batch_size`.

    Args:
      precisions: run the graph in these precisions (common.precision).
      folds: build the graph with batch norm folded into the convolutions (True, the
        default of nets.batch_norm) and/or not (False); every (fold, precision) case has its
        own session and the cases take turns, run by run.

    Returns:
      dict (fold, precision) -> images/s from the median run time; GFLOP per image (TF
      profiler); dict (fold, precision) -> (ops in the precision's low dtype, largest score
      change from the first precision).
    """
    import tensorflow as tf
    import tf_slim as slim

    from nets import batch_norm
    from nets import precision as nets_precision
    network = nets_factory.get_network(name)
    height, width = network.params.img_shape
    images = np.random.default_rng(0).uniform(-1, 1, [batch_size, height, width, 3])
    runs, details = {}, {}
    for fold in folds:
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(0)
            inputs = tf.compat.v1.placeholder(tf.float32, [batch_size, height, width, 3])
            with slim.arg_scope([batch_norm.batch_norm], fold_into_conv=fold):
                logits, locs, _ = network.net(inputs, is_training=False)
            outputs = network.decode_outputs(logits, locs)
            gflop = _gflop(outputs)
            initialize = tf.compat.v1.global_variables_initializer()
            for precision in precisions:
                session = tf.compat.v1.Session(config=nets_precision.session_config(precision,
                                                                                    config))
                session.run(initialize)
                values, graphs = nets_precision.run_graphs(session, outputs, {inputs: images})
                low = precision_lib.LOW_DTYPES.get(precision)
                counts = nets_precision.dtype_op_counts(graphs)
                first = details.get((fold, precisions[0]), (0, 0, values[0]))[2]
                details[fold, precision] = (sum(counts[low].values()) if low in counts else 0,
                                            float(np.abs(values[0] - first).max()), values[0])
                runs[fold, precision] = session.make_callable(outputs, [inputs]), session
    for _ in range(warmup):
        for run, _ in runs.values():
            run(images)
    times = {case: [] for case in runs}
    for _ in range(iterations):
        for case, (run, _) in runs.items():
            start = time.perf_counter()
            run(images)
            times[case].append(time.perf_counter() - start)
    for _, session in runs.values():
        session.close()
    rates = {case: batch_size / float(np.median(found)) for case, found in times.items()}
    return rates, gflop / batch_size, {case: found[:2] for case, found in details.items()}


def tflite_images_per_second(name, quantizations, threads, iterations, warmup, folder,
                             extra_precision=None, calibration_images=8):
    """Batch-1 speed of network `name` (random weights) as raw .tflite models and in the
    TensorFlow session, per thread count; the cases take turns run by run, so that all see the
    same machine load.

    Returns:
      dict (case, threads) -> images/s from the median run time, case = a quantization or
      'tensorflow <precision>'; dict quantization -> file size in MB.
    """
    import tensorflow as tf

    from export import tflite_export
    from nets import precision as nets_precision
    network = nets_factory.get_network(name)
    height, width = network.params.img_shape
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, [1, height, width, 3]).astype(np.float32)

    def initialize(session):
        tf.compat.v1.set_random_seed(0)
        session.run(tf.compat.v1.global_variables_initializer())

    def representative():
        return (rng.uniform(-1, 1, [1, height, width, 3]).astype(np.float32)
                for _ in range(calibration_images))

    paths, sizes = {}, {}
    for quantize in quantizations:
        logging.info('converting %s (%s)', name, quantize)
        data = tflite_export.convert_network(network, initialize, quantize, ('raw',),
                                             representative=representative)['raw']
        paths[quantize] = os.path.join(folder, '%s_%s.tflite' % (name, quantize))
        with open(paths[quantize], 'wb') as f:
            f.write(data)
        sizes[quantize] = len(data) / 1e6
    graph_def, input_name, outputs = tflite_export.frozen_graph(network, initialize)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name='')
    precisions = [precision_lib.FLOAT32] + ([extra_precision] if extra_precision else [])
    rates = {}
    for count in threads:
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=count,
                                          inter_op_parallelism_threads=1)
        runners, sessions = {}, []
        for precision in precisions:
            session = tf.compat.v1.Session(
                graph=graph, config=nets_precision.session_config(precision, config))
            sessions.append(session)
            call = session.make_callable([outputs['scores'], outputs['boxes']], [input_name])
            runners['tensorflow ' + precision] = functools.partial(call, image)
        for quantize, path in paths.items():
            model = tflite_model.TFLiteModel(path, num_threads=count)
            runners[quantize] = functools.partial(model.run, image)
        logging.info('timing %s with %d thread(s): %s', name, count, ', '.join(runners))
        for _ in range(warmup):
            for run in runners.values():
                run()
        times = {case: [] for case in runners}
        for _ in range(iterations):
            for case, run in runners.items():
                start = time.perf_counter()
                run()
                times[case].append(time.perf_counter() - start)
        for session in sessions:
            session.close()
        rates.update(((case, count), 1.0 / float(np.median(found)))
                     for case, found in times.items())
    return rates, sizes


def tflite_lines(networks, quantizations, threads, iterations, warmup, extra_precision):
    """The --tflite report: LiteRT per quantization and thread count against the TensorFlow
    session at batch 1 with as many intra-op threads."""
    import tempfile
    lines = []
    extra = None
    if extra_precision != precision_lib.FLOAT32:
        try:
            lines += ['warning: %s' % w for w in precision_lib.check(extra_precision, 0)]
            extra = extra_precision
        except ValueError as error:
            lines.append('not measured: TensorFlow session in %s: %s' % (extra_precision, error))
    for name in networks:
        with tempfile.TemporaryDirectory() as folder:
            rates, sizes = tflite_images_per_second(name, quantizations, threads, iterations,
                                                    warmup, folder, extra)
        for count in threads:
            session = rates['tensorflow ' + precision_lib.FLOAT32, count]
            for case in ['tensorflow ' + precision_lib.FLOAT32] + (
                    ['tensorflow ' + extra] if extra else []) + list(quantizations):
                rate = rates[case, count]
                if case.startswith('tensorflow'):
                    what = '%-30s' % ('TF session ' + case.split()[1])
                else:
                    what = '%-30s' % ('LiteRT %s (%.1f MB)' % (case, sizes[case]))
                lines.append('%-22s batch 1, %d thread(s): %s %7.2f images/s, x%.2f of the '
                             'float32 session' % (name, count, what, rate, rate / session))
                key = case.replace(' ', '_')
                record.figure('tflite_bench_%s_%s_%dt' % (name, key, count), round(rate, 2),
                              'images/s', '%s %s, batch 1, %d thread(s)' % (name, case, count))
    return lines


def detector_like_outputs(rng, anchors, num_classes, num_objects=5):
    """Scores [A, C] and boxes [A, 4] shaped like a trained SSD's output.

    Background dominates everywhere except on the anchors overlapping one of
    `num_objects` random objects (IoU > 0.3), which score their object's class highly and
    carry jittered copies of its box.
    """
    logits = rng.normal(0.0, 1.0, [len(anchors), num_classes])
    logits[:, 0] += 9.0
    boxes = anchors + rng.normal(0.0, 0.01, anchors.shape)
    for _ in range(num_objects):
        ymin, xmin = rng.uniform(0.0, 0.7, 2)
        box = np.array([ymin, xmin, ymin + rng.uniform(0.1, 0.3), xmin + rng.uniform(0.1, 0.3)])
        near = np_box_ops.iou(box[None], anchors)[0] > 0.3
        logits[near, rng.integers(1, num_classes)] = logits[near, 0] + rng.normal(0.5, 1.5,
                                                                                  near.sum())
        boxes[near] = box + rng.normal(0.0, 0.02, [near.sum(), 4])
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    return scores.astype(np.float32), boxes.astype(np.float32)


def random_outputs(rng, anchors, num_classes):
    """Worst case: softmax of standard normal logits (every class has ~all anchors > 0.01)."""
    logits = rng.normal(0.0, 1.0, [len(anchors), num_classes])
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mins = rng.uniform(0.0, 0.8, [len(anchors), 2])
    boxes = np.concatenate([mins, mins + rng.uniform(0.02, 0.3, [len(anchors), 2])], axis=1)
    return scores.astype(np.float32), boxes.astype(np.float32)


def postprocess_milliseconds(make_outputs, repeats=30):
    """Median ms of the numpy post-processing of one SSD300 image (8732 anchors, 21 classes)."""
    anchors = anchors_lib.ssd_anchors(ssd_params.SSD_300_VGG)
    scores, boxes = make_outputs(np.random.default_rng(0), anchors, 21)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np_post_processing.postprocess(scores, boxes)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def matmul_gflops(config, size=2048, repeats=5):
    """Measured float32 matmul GFLOP/s of TF now (shows how loaded the machine is)."""
    import tensorflow as tf
    with tf.Graph().as_default():
        a = tf.random.uniform([size, size])
        product = tf.reduce_sum(tf.matmul(a, a))
        with tf.compat.v1.Session(config=config) as sess:
            sess.run(product)
            start = time.perf_counter()
            for _ in range(repeats):
                sess.run(product)
            elapsed = time.perf_counter() - start
    return 2.0 * size ** 3 * repeats / elapsed / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--networks', default=','.join(nets_factory.TRAINING_NETWORKS),
                        help='comma-separated network names (default: the trained ones; an '
                        'imported variant computes as its base network)')
    parser.add_argument('--batch_sizes', default='1,8', help='comma-separated batch sizes')
    parser.add_argument('--iterations', type=int, default=10, help='timed runs per case')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs per case')
    parser.add_argument('--intra_op_threads', type=int, default=0, help='0: TF default')
    parser.add_argument('--inter_op_threads', type=int, default=0, help='0: TF default')
    precision_lib.add_flag(parser, help='also time each case in this precision, against float32')
    parser.add_argument('--batch_norm', default='folded', choices=('folded', 'unfolded', 'both'),
                        help='inference batch norm folded into the convolutions (the '
                        'networks\' default), not, or both, taking turns')
    parser.add_argument('--tflite', action='store_true',
                        help='time the LiteRT (TFLite) models against the TensorFlow session')
    parser.add_argument('--tflite_quantizations', default=','.join(tflite_model.QUANTIZATIONS),
                        help='with --tflite: comma-separated quantizations')
    parser.add_argument('--tflite_threads', default='1,2',
                        help='with --tflite: comma-separated interpreter (and session) threads')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    networks = [n for n in args.networks.split(',') if n]
    for name in networks:
        if name not in nets_factory.NETWORK_NAMES:
            parser.error('--networks: unknown network %r (choose from %s)'
                         % (name, ', '.join(nets_factory.NETWORK_NAMES)))
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(',') if b]
    except ValueError:
        parser.error('--batch_sizes must be comma-separated integers, got %r' % args.batch_sizes)
    if not batch_sizes or min(batch_sizes) < 1:
        parser.error('--batch_sizes must be positive integers')
    if args.iterations < 1 or args.warmup < 0:
        parser.error('--iterations must be >= 1 and --warmup >= 0')
    if args.intra_op_threads < 0 or args.inter_op_threads < 0:
        parser.error('--intra_op_threads and --inter_op_threads must be >= 0')

    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    if args.tflite:
        return _main_tflite(parser, args, networks)
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.intra_op_threads,
                                      inter_op_parallelism_threads=args.inter_op_threads)
    lines = ['machine: %s' % machine.describe(),
             'threads: intra_op %s, inter_op %s (0 = TF default); TF matmul now %.0f GFLOP/s'
             % (args.intra_op_threads, args.inter_op_threads, matmul_gflops(config))]
    precisions = tuple(dict.fromkeys((precision_lib.FLOAT32, args.precision)))
    folds = {'folded': (True,), 'unfolded': (False,), 'both': (True, False)}[args.batch_norm]
    try:
        warnings = precision_lib.check(args.precision,
                                       len(tf.config.list_physical_devices('GPU')))
    except ValueError as error:
        parser.error(str(error))
    lines += ['warning: %s' % warning for warning in warnings]
    for name in networks:
        for batch_size in batch_sizes:
            logging.info('timing %s at batch %d', name, batch_size)
            rates, gflop, details = forward_images_per_second(
                name, batch_size, args.iterations, args.warmup, config, precisions, folds)
            for fold, precision in rates:
                rate = rates[fold, precision]
                line = ('forward %-22s batch %2d: %7.2f images/s (%.1f GFLOP/image, '
                        '%.0f GFLOP/s)' % (name, batch_size, rate, gflop, rate * gflop))
                if len(folds) > 1:
                    line += ' batch norm %-8s' % ('folded' if fold else 'unfolded')
                if len(precisions) > 1:
                    low_ops, change = details[fold, precision]
                    line += ' %-14s' % precision
                    if precision != precision_lib.FLOAT32:
                        line += ' x%.2f of float32, %d ops in %s, largest score change %.4f' % (
                            rate / rates[fold, precision_lib.FLOAT32], low_ops,
                            precision_lib.LOW_DTYPES[precision], change)
                lines.append(line)
    lines.append('numpy post-processing, 8732 anchors x 21 classes, detector-like scores: '
                 '%.2f ms median' % postprocess_milliseconds(detector_like_outputs))
    lines.append('numpy post-processing, 8732 anchors x 21 classes, worst case (random '
                 'scores, 400 candidates per class): %.2f ms median'
                 % postprocess_milliseconds(random_outputs))
    print('\n'.join(lines))
    return 0


def _main_tflite(parser, args, networks):
    quantizations = [q for q in args.tflite_quantizations.split(',') if q]
    if not quantizations or set(quantizations) - set(tflite_model.QUANTIZATIONS):
        parser.error('--tflite_quantizations: comma-separated, of %s'
                     % ', '.join(tflite_model.QUANTIZATIONS))
    try:
        threads = [int(t) for t in args.tflite_threads.split(',') if t]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        parser.error('--tflite_threads must be comma-separated positive integers')
    try:
        tflite_model.interpreter_class()
    except tflite_model.RuntimeMissing as error:
        parser.error(str(error))
    lines = ['machine: %s' % machine.describe(),
             'LiteRT interpreter (ai-edge-litert, XNNPACK) on raw .tflite models of random '
             'weights; TensorFlow session: the serving graph, inter-op 1 thread, intra-op as '
             'many as the interpreter']
    lines += tflite_lines(networks, quantizations, threads, args.iterations, args.warmup,
                          args.precision)
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'nets'))
