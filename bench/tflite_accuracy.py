"""VOC07 mAP of a trained checkpoint as LiteRT (TFLite) models in each quantization.

    python -m bench.tflite_accuracy --checkpoint_path=TRAIN_DIR --dataset_dir=RECORDS \\
        [--dataset_name=shapes] [--dataset_split_name=test] [--calibration_split_name=trainval]
        [--quantizations=none,float16,int8] [--variants=raw,detect] [--json PATH]

Exports the checkpoint with export_model.py's library (export/tflite_export.py) once per
quantization (int8 calibrated on --num_calibration_images of the calibration split), runs every
.tflite over the split in the LiteRT interpreter and evaluates the detections with the
project's VOC evaluator (evaluation/voc_eval.py). The raw variant's outputs go through the
numpy post-processing with the network's defaults (the evaluation's); detect.tflite has
TFLite_Detection_PostProcess in the model. The reference is the same frozen graph in a
TensorFlow session (float32). Prints the machine, then per model: VOC07 and VOC12 mAP, the
difference from the float32 .tflite of its variant, file size and ms per image.
"""
import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np

from bench import machine, record
from common import np_post_processing, tflite_model


def _test_images(dataset_info, network, max_images):
    """(preprocessed image [1, H, W, 3], ground truth dict) of the split, in file order."""
    from common import fields  # pylint: disable=import-outside-toplevel
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel
    preprocess = preprocessing_factory.get_preprocessing(network.name, is_training=False)
    dataset = dataset_info.read(shuffle=False, num_epochs=1, num_readers=1)
    if max_images:
        dataset = dataset.take(max_images)
    for sample in dataset.map(preprocess).as_numpy_iterator():
        yield sample[fields.IMAGE][None].astype(np.float32), {
            'boxes': sample[fields.BOXES], 'labels': sample[fields.LABELS],
            'difficult': sample[fields.DIFFICULT]}


def evaluate(detect, images, class_names):
    """VOC results of detect(image batch) -> (boxes, scores, classes) over `images`.

    Returns:
      (VOCEvaluator.evaluate() dict, median ms per image).
    """
    from evaluation import voc_eval  # pylint: disable=import-outside-toplevel
    evaluator = voc_eval.VOCEvaluator(class_names)
    times = []
    for image, truth in images:
        start = time.perf_counter()
        boxes, scores, classes = detect(image)
        times.append(time.perf_counter() - start)
        evaluator.add_image(truth['boxes'], truth['labels'], truth['difficult'], boxes, scores,
                            classes)
    return evaluator.evaluate(), 1000.0 * float(np.median(times))


def tensorflow_detector(network, checkpoint, post):
    """detect(image) with the frozen graph in a float32 TensorFlow session."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from export import ssd_export, tflite_export  # pylint: disable=import-outside-toplevel
    graph_def, input_name, outputs = tflite_export.frozen_graph(
        network, lambda session: ssd_export.restore_variables(session, checkpoint))
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name='')
    session = tf.compat.v1.Session(graph=graph)
    run = session.make_callable([outputs['scores'], outputs['boxes']], [input_name])

    def detect(image):
        scores, boxes = run(image)
        return np_post_processing.postprocess(scores[0], boxes[0], **post)
    return detect


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint_path', required=True, help='train dir or checkpoint')
    parser.add_argument('--model_name', default=None, help='default: the train dir\'s')
    parser.add_argument('--dataset_dir', required=True, help='records and labels.txt')
    parser.add_argument('--dataset_name', default='shapes')
    parser.add_argument('--dataset_split_name', default='test', help='split evaluated')
    parser.add_argument('--calibration_split_name', default='trainval',
                        help='split of the int8 calibration images')
    parser.add_argument('--num_calibration_images', type=int, default=300)
    parser.add_argument('--quantizations', default=','.join(tflite_model.QUANTIZATIONS))
    parser.add_argument('--variants', default=','.join(tflite_model.VARIANTS))
    parser.add_argument('--num_threads', type=int, default=2, help='interpreter threads')
    parser.add_argument('--max_images', type=int, default=0, help='0: the whole split')
    record.add_flag(parser)
    args = parser.parse_args(argv)
    quantizations = [q for q in args.quantizations.split(',') if q]
    variants = [v for v in args.variants.split(',') if v]
    if not quantizations or set(quantizations) - set(tflite_model.QUANTIZATIONS):
        parser.error('--quantizations: some of %s' % ', '.join(tflite_model.QUANTIZATIONS))
    if not variants or set(variants) - set(tflite_model.VARIANTS):
        parser.error('--variants: some of %s' % ', '.join(tflite_model.VARIANTS))
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    tflite_model.interpreter_class()  # fails early, naming the package, when it is missing

    from datasets import dataset_factory  # pylint: disable=import-outside-toplevel
    from datasets import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
    from export import tflite_export  # pylint: disable=import-outside-toplevel
    from nets import checkpoints, nets_factory  # pylint: disable=import-outside-toplevel
    checkpoint = checkpoints.resolve_checkpoint(args.checkpoint_path)
    folder = train_dir_lib.folder_of(args.checkpoint_path)
    name = train_dir_lib.network_name(folder, train_dir_lib.read(folder), args.model_name,
                                      nets_factory.DEFAULT_NETWORK)
    test = dataset_factory.get_dataset(args.dataset_name, args.dataset_split_name,
                                       args.dataset_dir)
    calibration = dataset_factory.get_dataset(args.dataset_name, args.calibration_split_name,
                                              args.dataset_dir)
    network = nets_factory.get_network(name, test.num_classes)
    post = {**np_post_processing.DEFAULTS, **network.post_processing}
    images = list(_test_images(test, network, args.max_images))
    lines = ['machine: %s' % machine.describe(),
             'model: %s, checkpoint %s; %d %s/%s images; int8 calibrated on %d %s images; '
             'LiteRT (XNNPACK) with %d threads'
             % (name, checkpoint, len(images), args.dataset_name, args.dataset_split_name,
                min(args.num_calibration_images, calibration.num_samples),
                args.calibration_split_name, args.num_threads)]
    results, ms = evaluate(tensorflow_detector(network, checkpoint, post), images, test.labels)
    lines.append('tensorflow session float32  raw     : VOC07 mAP %.4f, VOC12 %.4f, '
                  '%.1f ms/image' % (results['mAP_voc07'], results['mAP_voc12'], ms))
    record.figure('tf_float32_map07', round(results['mAP_voc07'], 4), 'mAP',
                  '%s VOC07 mAP, TensorFlow float32' % name)
    reference = {}
    with tempfile.TemporaryDirectory() as scratch:
        for quantize in quantizations:
            path = tflite_export.export(
                name, checkpoint, scratch, os.path.join(folder, 'labels.txt'), quantize,
                tuple(variants), dataset_info=calibration,
                num_calibration_images=args.num_calibration_images)
            for variant in variants:
                model_path = os.path.join(path, tflite_model.FILENAMES[variant])
                model = tflite_model.TFLiteModel(model_path, num_threads=args.num_threads)
                results, ms = evaluate(lambda image, m=model: m.detections(image, post),
                                       images, test.labels)
                map07 = results['mAP_voc07']
                reference.setdefault(variant, map07)
                line = ('tflite %-8s %-6s (%-13s): VOC07 mAP %.4f, VOC12 %.4f, %+.4f from '
                        'float32 .tflite, %.1f MB, %.1f ms/image'
                        % (quantize, variant, tflite_model.FILENAMES[variant], map07,
                           results['mAP_voc12'], map07 - reference[variant],
                           os.path.getsize(model_path) / 1e6, ms))
                lines.append(line)
                record.figure('tflite_%s_%s_map07' % (quantize, variant), round(map07, 4),
                              'mAP', '%s VOC07 mAP, .tflite %s %s' % (name, quantize, variant))
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'tflite_accuracy'))
