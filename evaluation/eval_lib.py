"""SSD evaluation: the detection graph, a pass over the test split, VOC / COCO metrics, reports."""
import collections
import json
import logging
import os

import numpy as np
import tensorflow as tf
import tf_slim as slim

from common import fields, progress
from common.files import atomic_write
from datasets import record_check
from evaluation import coco_eval, voc_eval
from nets import post_processing
from preprocessing import inputs

EvalGraph = collections.namedtuple('EvalGraph', [
    'init_op',      # (re)starts the pass over the split.
    'fetches',      # dict of batch tensors: detections and ground truth.
    'saver',        # restores the model variables (moving averages when asked).
    'global_step',
    'num_samples',  # images of the split.
    'batch_size',
    'originals',    # _Originals of the first images, for the pictures, or None.
    'files',        # the TFRecord shards read (named when one holds a bad record).
])

# The first `count` images of the split as read (not preprocessed), in evaluation order:
# `init_op` restarts them, `sample` holds one image's `fields.IMAGE` and `fields.FILENAME`.
_Originals = collections.namedtuple('_Originals', ['init_op', 'sample', 'count'])

Evaluation = collections.namedtuple('Evaluation', [
    'results',      # VOCEvaluator.evaluate() dict.
    'num_images',
    'step',         # global step of the checkpoint.
    'examples',     # dicts of the first images for visualization.side_by_side.
    'coco',         # CocoEvaluator.evaluate() dict, or None when not asked for.
])


def _originals(dataset_info, count):
    """The first `count` images of the split, read in the order of inputs.eval_dataset."""
    dataset = dataset_info.read(shuffle=False, num_epochs=1, num_readers=1).take(count)
    dataset = dataset.map(lambda s: {fields.IMAGE: s[fields.IMAGE],
                                     fields.FILENAME: s[fields.FILENAME]})
    iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
    return _Originals(iterator.initializer, iterator.get_next(), count)


def build_eval_graph(network, dataset_info, preprocess_fn, batch_size, postprocess_kwargs=None,
                     moving_average_decay=None, num_preprocessing_threads=2,
                     num_visualizations=0):
    """Builds detection + ground-truth fetches in the default graph.

    Args:
        network: nets_factory SSDNet.
        dataset_info: dataset_factory DatasetInfo of the split.
        preprocess_fn: evaluation preprocessing of one sample.
        batch_size: images per batch.
        postprocess_kwargs: arguments of nets.post_processing.postprocess (default: its
            defaults, common.np_post_processing.DEFAULTS).
        moving_average_decay: restore the moving averages of the weights.
        num_preprocessing_threads: parallel preprocessing calls.
        num_visualizations: also read the first images as they are, for pictures.

    Returns:
        EvalGraph; fetches hold `detection_boxes` [B, K, 4], `detection_scores` [B, K],
        `detection_classes` [B, K], `num_detections` [B] and the ground truth `boxes`
        [B, N, 4], `labels` [B, N], `difficult` [B, N], `num_boxes` [B], `filename` [B],
        `source_id` [B] and the original image `shape` [B, 3] (for the COCO metrics).
    """
    global_step = tf.compat.v1.train.get_or_create_global_step()
    dataset = inputs.eval_dataset(dataset_info, preprocess_fn, batch_size,
                                  num_preprocessing_threads=num_preprocessing_threads)
    iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
    batch = iterator.get_next()
    logits, locs, _ = network.net(batch[fields.IMAGE], is_training=False)
    scores, boxes = network.decode_outputs(logits, locs)
    fetches = post_processing.postprocess(scores, boxes, **(postprocess_kwargs or {}))
    for key in (fields.BOXES, fields.LABELS, fields.DIFFICULT, fields.NUM_BOXES, fields.FILENAME,
                fields.SOURCE_ID, fields.SHAPE):
        fetches[key] = batch[key]
    if moving_average_decay:
        ema = tf.compat.v1.train.ExponentialMovingAverage(moving_average_decay, global_step)
        restore = ema.variables_to_restore(slim.get_model_variables(network.name))
        restore[global_step.op.name] = global_step
    else:
        restore = slim.get_model_variables(network.name) + [global_step]
    originals = _originals(dataset_info, num_visualizations) if num_visualizations else None
    return EvalGraph(iterator.initializer, fetches, tf.compat.v1.train.Saver(restore),
                     global_step, dataset_info.num_samples, batch_size, originals,
                     tuple(dataset_info.files))


def run_evaluation(eval_graph, checkpoint_path, class_names, matching_threshold=0.5,
                   remove_difficult=True, max_num_batches=None, session_config=None,
                   coco_metrics=False, category_ids=None, difficult_as_crowd=True,
                   detections_file=None):
    """Restores `checkpoint_path` and accumulates VOC (and COCO) metrics over the split.

    Args:
        eval_graph: from build_eval_graph.
        checkpoint_path: checkpoint prefix.
        class_names: dict id -> name (0 = background).
        matching_threshold, remove_difficult: VOC metric settings.
        max_num_batches: evaluate only this many batches.
        session_config: tf.compat.v1.ConfigProto.
        coco_metrics: also compute the COCO metrics (evaluation/coco_eval.py).
        category_ids, difficult_as_crowd: arguments of coco_eval.CocoEvaluator.
        detections_file: write the detections there in COCO results format.

    Returns:
        Evaluation; its `examples` are the first images (as many as the graph's
        num_visualizations) with their ground truth and detections.

    Raises:
        record_check.CorruptRecordError: a bad record in a shard (the message names the file
            and the byte offset).
    """
    evaluator = voc_eval.VOCEvaluator(class_names, iou_threshold=matching_threshold,
                                      remove_difficult=remove_difficult)
    coco = None
    if coco_metrics or detections_file:
        coco = coco_eval.CocoEvaluator(class_names, category_ids, difficult_as_crowd)
    total = eval_graph.num_samples
    if max_num_batches is not None:
        total = min(total, max_num_batches * eval_graph.batch_size)
    log = progress.ProgressLog('evaluated', total)
    wanted = eval_graph.originals.count if eval_graph.originals else 0
    examples = []
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
            except tf.errors.DataLossError as error:
                line = record_check.describe_data_loss(error.message, eval_graph.files)
                if line is None:
                    raise
                raise record_check.CorruptRecordError(
                    'Evaluation stopped after %d images: %s' % (evaluator.num_images,
                                                                line)) from None
            for image in _add_batch(evaluator, values, coco):
                if len(examples) < wanted:
                    examples.append(image)
            num_batches += 1
            log.update(evaluator.num_images)
        if examples:
            examples = _with_originals(session, eval_graph.originals, examples)
    logging.info('Evaluated %s of %s in %.1f s', progress.counted(evaluator.num_images, 'image'),
                 checkpoint_path, log.elapsed)
    if detections_file:
        coco.write_detections(detections_file)
        logging.info('Wrote the detections in COCO results format to %s', detections_file)
    return Evaluation(evaluator.evaluate(), evaluator.num_images, step, examples,
                      coco.evaluate() if coco_metrics else None)


def _with_originals(session, originals, examples):
    """The examples with their original image (read in the order of the evaluation pass).

    Stops at the first image whose file name differs from its example's (logged), so a
    picture never shows one image's detections on another.
    """
    session.run(originals.init_op)
    complete = []
    for example in examples:
        sample = session.run(originals.sample)
        if sample[fields.FILENAME] != example[fields.FILENAME]:
            logging.warning('Pictures stop at image %d: %r read where the evaluation had %r',
                            len(complete), sample[fields.FILENAME], example[fields.FILENAME])
            break
        complete.append(dict(example, **{fields.IMAGE: sample[fields.IMAGE]}))
    return complete


def _add_batch(evaluator, values, coco=None):
    """Adds each image of a batch of fetched values to the evaluator (and the COCO one).

    Returns:
        list of per-image dicts: ground truth and detections without the padding.
    """
    images = []
    for i in range(len(values[fields.NUM_DETECTIONS])):
        n_det = int(values[fields.NUM_DETECTIONS][i])
        n_gt = int(values[fields.NUM_BOXES][i])
        image = {fields.FILENAME: values[fields.FILENAME][i]}
        for key in (fields.BOXES, fields.LABELS, fields.DIFFICULT):
            image[key] = values[key][i, :n_gt]
        for key in (fields.DETECTION_BOXES, fields.DETECTION_SCORES, fields.DETECTION_CLASSES):
            image[key] = values[key][i, :n_det]
        image[fields.DETECTION_CLASSES] = image[fields.DETECTION_CLASSES].astype(np.int64)
        evaluator.add_image(image[fields.BOXES], image[fields.LABELS], image[fields.DIFFICULT],
                            image[fields.DETECTION_BOXES], image[fields.DETECTION_SCORES],
                            image[fields.DETECTION_CLASSES])
        if coco is not None:
            height, width = values[fields.SHAPE][i][:2]
            coco.add_image(height, width, image[fields.BOXES], image[fields.LABELS],
                           image[fields.DIFFICULT], image[fields.DETECTION_BOXES],
                           image[fields.DETECTION_SCORES], image[fields.DETECTION_CLASSES],
                           source_id=values[fields.SOURCE_ID][i])
        images.append(image)
    return images


def metrics_dict(results, checkpoint_path, num_images, coco=None):
    """The content of metrics.json (see docs/evaluation.md); `coco` adds the COCO metrics."""
    metrics = {
        'mAP_voc07': results['mAP_voc07'],
        'mAP_voc12': results['mAP_voc12'],
        'per_class': {name: {'ap_voc07': r['ap_voc07'], 'ap_voc12': r['ap_voc12'],
                             'num_gt': r['num_gt']}
                      for name, r in results['per_class'].items()},
        'checkpoint': checkpoint_path,
        'num_images': num_images,
    }
    if coco is not None:
        metrics['coco'] = dict(coco)
    return metrics


def write_metrics(eval_dir, metrics):
    """Writes eval_dir/metrics.json atomically; returns its path."""
    path = os.path.join(eval_dir, 'metrics.json')
    atomic_write(path, json.dumps(metrics, indent=2, sort_keys=True) + '\n')
    return path


def write_summaries(eval_dir, results, step, pictures=(), coco=None):
    """mAP and per-class AP as TensorBoard scalars at `step`, and pictures as images.

    Args:
        eval_dir: folder of the event files.
        results: VOCEvaluator.evaluate() dict.
        step: global step of the evaluated checkpoint.
        pictures: (name, uint8 [H, W, 3] picture, its PNG bytes) triples, shown under
            the tags `visualizations/<name>`.
        coco: CocoEvaluator.evaluate() dict, shown as `eval_coco/<metric>`.
    """
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
    for key, value in (coco or {}).items():
        if value is not None:
            values.append(tf.compat.v1.Summary.Value(tag='eval_coco/' + key, simple_value=value))
    for name, picture, png in pictures:
        image = tf.compat.v1.Summary.Image(height=picture.shape[0], width=picture.shape[1],
                                           colorspace=3, encoded_image_string=png)
        values.append(tf.compat.v1.Summary.Value(tag='visualizations/' + name, image=image))
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
