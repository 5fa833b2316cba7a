"""A trained model in mixed precision against float32: detections, VOC mAP and eval speed.

    python -m bench.precision --checkpoint_path=TRAIN_DIR --dataset_dir=RECORDS \\
        [--model_name=ssd_300_mobilenet_v2] [--precision=mixed_bfloat16]

Evaluates the checkpoint on the split twice, the same graph in two sessions (float32, then
the rewrite of --precision), and prints: VOC07/VOC12 mAP of each and their difference; the
share of the float32 detections with score >= --score_threshold that have a detection of the
same class with IoU >= --iou_threshold among the other precision's (and the other way round);
and the images/s of each pass (input pipeline, network and NMS). Prints the machine too.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time

import numpy as np

from bench import machine
from common import np_box_ops
from common import precision as precision_lib


def detections_by_image(path, score_threshold):
    """{image id: (boxes [N, 4] yxyx, classes [N])} of a COCO results file, score >= threshold."""
    with open(path, encoding='utf-8') as results:
        detections = json.load(results)
    found = {}
    for detection in detections:
        if detection['score'] < score_threshold:
            continue
        x, y, width, height = detection['bbox']
        boxes, classes = found.setdefault(detection['image_id'], ([], []))
        boxes.append([y, x, y + height, x + width])
        classes.append(detection['category_id'])
    return {image: (np.array(boxes, np.float64).reshape(-1, 4), np.array(classes))
            for image, (boxes, classes) in found.items()}


def matched_share(reference, other, iou_threshold):
    """(matched, total): reference detections with a same-class detection of `other` at
    IoU >= iou_threshold (each of `other` matched once, best IoU first)."""
    matched = total = 0
    for image, (boxes, classes) in reference.items():
        total += len(boxes)
        other_boxes, other_classes = other.get(image, (np.zeros([0, 4]), np.zeros([0])))
        if not len(other_boxes):
            continue
        iou = np_box_ops.iou(boxes, other_boxes)
        iou[classes[:, None] != other_classes[None, :]] = 0.0
        used = set()
        for i in np.argsort(-iou.max(axis=1)):
            for j in np.argsort(-iou[i]):
                if iou[i, j] < iou_threshold:
                    break
                if j not in used:
                    used.add(j)
                    matched += 1
                    break
    return matched, total


def evaluate(args, precisions, work_dir):
    """Evaluates the checkpoint in each precision; returns {precision: (Evaluation, secs)}."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from datasets import dataset_factory  # pylint: disable=import-outside-toplevel
    from evaluation import eval_lib  # pylint: disable=import-outside-toplevel
    from nets import checkpoints, nets_factory  # pylint: disable=import-outside-toplevel
    from nets import precision as nets_precision  # pylint: disable=import-outside-toplevel
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel

    tf.compat.v1.disable_eager_execution()
    dataset_info = dataset_factory.get_dataset(args.dataset_name, args.split, args.dataset_dir)
    network = nets_factory.get_network(args.model_name, dataset_info.num_classes)
    checkpoint = checkpoints.resolve_checkpoint(args.checkpoint_path)
    graph = eval_lib.build_eval_graph(
        network, dataset_info, preprocessing_factory.get_preprocessing(args.model_name, False),
        args.batch_size)
    results = {}
    for name in precisions:
        start = time.perf_counter()
        evaluation = eval_lib.run_evaluation(
            graph, checkpoint, dataset_info.labels,
            session_config=nets_precision.session_config(name),
            detections_file=os.path.join(work_dir, name + '.json'))
        results[name] = evaluation, time.perf_counter() - start
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint_path', required=True, help='checkpoint or train dir')
    parser.add_argument('--dataset_dir', required=True, help='TFRecords and labels.txt')
    parser.add_argument('--dataset_name', default='shapes')
    parser.add_argument('--split', default='test')
    parser.add_argument('--model_name', default='ssd_300_mobilenet_v2')
    parser.add_argument('--precision', default=precision_lib.MIXED_BFLOAT16,
                        choices=precision_lib.PRECISIONS[1:])
    parser.add_argument('--batch_size', type=int, default=8)
    parser.add_argument('--score_threshold', type=float, default=0.5)
    parser.add_argument('--iou_threshold', type=float, default=0.9)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    precisions = (precision_lib.FLOAT32, args.precision)
    with tempfile.TemporaryDirectory(prefix='bench_precision_') as work_dir:
        results = evaluate(args, precisions, work_dir)
        detections = {name: detections_by_image(os.path.join(work_dir, name + '.json'),
                                                args.score_threshold) for name in precisions}
    print('machine: %s' % machine.describe())
    print('%s on %s/%s, %d images' % (args.checkpoint_path, args.dataset_name, args.split,
                                      results[precisions[0]][0].num_images))
    for name in precisions:
        evaluation, seconds = results[name]
        print('%-15s mAP VOC07 %.4f  VOC12 %.4f  eval pass %.1f s (%.2f images/s)' % (
            name, evaluation.results['mAP_voc07'], evaluation.results['mAP_voc12'], seconds,
            evaluation.num_images / seconds))
    reference, mixed = (results[name][0].results for name in precisions)
    print('mAP difference (%s - float32): VOC07 %+.4f  VOC12 %+.4f' % (
        args.precision, mixed['mAP_voc07'] - reference['mAP_voc07'],
        mixed['mAP_voc12'] - reference['mAP_voc12']))
    for first, second in (precisions, precisions[::-1]):
        matched, total = matched_share(detections[first], detections[second], args.iou_threshold)
        print('%s detections (score >= %.2f) with a same-class %s detection at IoU >= %.2f: '
              '%d of %d (%.2f%%)' % (first, args.score_threshold, second, args.iou_threshold,
                                     matched, total, 100.0 * matched / max(total, 1)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
