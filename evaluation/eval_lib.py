"""SSD evaluation: the detection graph, a pass over the test split, VOC metrics and reports."""
import collections
import json
import logging
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
import tf_slim as slim

from evaluation import voc_eval
from nets import post_processing
from preprocessing import inputs

EvalGraph = collections.namedtuple('EvalGraph', [
    'init_op',      # (re)starts the pass over the split.
    'fetches',      # dict of batch tensors: detections and ground truth.
    'saver',        # restores the model variables (moving averages when asked).
    'global_step',
])


def build_eval_graph(network, dataset_info, preprocess_fn, batch_size, select_threshold=0.01,
                     nms_threshold=0.45, pre_nms_top_k=400, keep_top_k=200,
                     moving_average_decay=None, num_preprocessing_threads=2):
    """Builds detection + ground-truth fetches in the default graph.

    Returns:
        EvalGraph; fetches hold `detection_boxes` [B, K, 4], `detection_scores` [B, K],
        `detection_classes` [B, K], `num_detections` [B] and the ground truth `boxes`
        [B, N, 4], `labels` [B, N], `difficult` [B, N], `num_boxes` [B], `filename` [B].
    """
    global_step = tf.compat.v1.train.get_or_create_global_step()
    dataset = inputs.eval_dataset(dataset_info, preprocess_fn, batch_size,
                                  num_preprocessing_threads=num_preprocessing_threads)
    iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
    batch = iterator.get_next()
    with slim.arg_scope(network.arg_scope(weight_decay=0.0)):
        logits, locs, _ = network.net(batch['image'], is_training=False)
    scores, boxes = network.decode_outputs(logits, locs)
    fetches = post_processing.postprocess(scores, boxes, select_threshold=select_threshold,
                                          nms_threshold=nms_threshold,
                                          pre_nms_top_k=pre_nms_top_k, keep_top_k=keep_top_k)
    for key in ('boxes', 'labels', 'difficult', 'num_boxes', 'filename'):
        fetches[key] = batch[key]
    if moving_average_decay:
        ema = tf.compat.v1.train.ExponentialMovingAverage(moving_average_decay, global_step)
        restore = ema.variables_to_restore(slim.get_model_variables(network.name))
        restore[global_step.op.name] = global_step
    else:
        restore = slim.get_model_variables(network.name) + [global_step]
    return EvalGraph(iterator.initializer, fetches, tf.compat.v1.train.Saver(restore),
                     global_step)


def run_evaluation(eval_graph, checkpoint_path, class_names, matching_threshold=0.5,
                   remove_difficult=True, max_num_batches=None, session_config=None):
    """Restores `checkpoint_path` and accumulates VOC metrics over the split.

    Returns:
        (VOCEvaluator.evaluate() dict, number of images, global step of the checkpoint).
    """
    evaluator = voc_eval.VOCEvaluator(class_names, iou_threshold=matching_threshold,
                                      remove_difficult=remove_difficult)
    start = time.time()
    with tf.compat.v1.Session(config=session_config) as session:
        eval_graph.saver.restore(session, checkpoint_path)
        session.run(eval_graph.init_op)
        step = int(session.run(eval_graph.global_step))
        num_batches = 0
        while max_num_batches is None or num_batches < max_num_batches:
            try:
                values = session.run(eval_graph.fetches)
            except tf.errors.OutOfRangeError:
                break
            _add_batch(evaluator, values)
            num_batches += 1
            if num_batches % 10 == 0:
                logging.info('Evaluated %d images, %.1f images/s', evaluator.num_images,
                             evaluator.num_images / (time.time() - start))
    logging.info('Evaluated %d images of %s in %.1f s', evaluator.num_images, checkpoint_path,
                 time.time() - start)
    return evaluator.evaluate(), evaluator.num_images, step


def _add_batch(evaluator, values):
    for i in range(len(values['num_detections'])):
        n_det = int(values['num_detections'][i])
        n_gt = int(values['num_boxes'][i])
        evaluator.add_image(values['boxes'][i, :n_gt], values['labels'][i, :n_gt],
                            values['difficult'][i, :n_gt],
                            values['detection_boxes'][i, :n_det],
                            values['detection_scores'][i, :n_det],
                            values['detection_classes'][i, :n_det].astype(np.int64))


def metrics_dict(results, checkpoint_path, num_images):
    """The content of metrics.json (see the README)."""
    return {
        'mAP_voc07': results['mAP_voc07'],
        'mAP_voc12': results['mAP_voc12'],
        'per_class': {name: {'ap_voc07': r['ap_voc07'], 'ap_voc12': r['ap_voc12'],
                             'num_gt': r['num_gt']}
                      for name, r in results['per_class'].items()},
        'checkpoint': checkpoint_path,
        'num_images': num_images,
    }


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file in the same folder."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_metrics(eval_dir, metrics):
    """Writes eval_dir/metrics.json atomically; returns its path."""
    path = os.path.join(eval_dir, 'metrics.json')
    atomic_write_text(path, json.dumps(metrics, indent=2, sort_keys=True) + '\n')
    return path


def write_summaries(eval_dir, results, step):
    """mAP and per-class AP as TensorBoard scalars at `step`."""
    values = []
    for key in ('mAP_voc07', 'mAP_voc12'):
        if results[key] is not None:
            values.append(tf.compat.v1.Summary.Value(tag='eval/' + key,
                                                     simple_value=results[key]))
    for name, r in results['per_class'].items():
        for key in ('ap_voc07', 'ap_voc12'):
            if r[key] is not None:
                values.append(tf.compat.v1.Summary.Value(tag='eval_%s/%s' % (key, name),
                                                         simple_value=r[key]))
    writer = tf.compat.v1.summary.FileWriterCache.get(eval_dir)
    writer.add_summary(tf.compat.v1.Summary(value=values), step)
    writer.flush()


def format_table(results, num_images):
    """The per-class AP table and the means, as text."""
    lines = ['%-16s %8s %9s %9s' % ('class', 'num_gt', 'AP VOC07', 'AP VOC12')]
    for name, r in results['per_class'].items():
        if r['num_gt'] == 0:
            lines.append('%-16s %8d %9s %9s' % (name, 0, '-', '-'))
        else:
            lines.append('%-16s %8d %9.4f %9.4f' % (name, r['num_gt'], r['ap_voc07'],
                                                    r['ap_voc12']))
    means = ['-' if results[k] is None else '%.4f' % results[k] for k in ('mAP_voc07', 'mAP_voc12')]
    lines.append('%-16s %8s %9s %9s' % ('mAP', '%d img' % num_images, means[0], means[1]))
    return '\n'.join(lines)
