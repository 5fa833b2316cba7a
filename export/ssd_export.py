"""Builds the SSD inference graph with its two serving signatures and exports a checkpoint.

Signatures (the serving contract, see docs/export-and-serving.md):
- `serving_default`: `images` float32 [None, H, W, 3] (eval-preprocessed) -> `scores` float32
  [None, A, C] (softmax), `boxes` float32 [None, A, 4] (decoded, normalised yxyx).
- `detect`: `encoded_images` string [None] (JPEG/PNG/GIF/BMP bytes) -> `detection_boxes`
  [None, K, 4], `detection_scores` [None, K], `detection_classes` [None, K], `num_detections`
  [None] (decode, eval preprocessing, network and NMS in the graph), plus `class_names` string
  [None, C] (per image the same constant list, index = class id) and `manifest` string [None]
  (the export manifest, common.manifest). Clients fetch both with one empty string as input
  and output_filter=['class_names', 'manifest'], which runs no decoding - this works with real
  TF Serving too, and REST row-format answers stay valid because every output is batched.
"""
import logging
import os
import tempfile

import tensorflow as tf

from common import labels as labels_lib
from common import manifest as manifest_lib
from common import np_post_processing, progress
from common import precision as precision_lib
from common import signatures as sig
from export import saved_model_writer
from nets import checkpoint_state, checkpoints, post_processing, ssd_params
from preprocessing import image_ops


def class_names_list(names_by_id, num_classes):
    """Names indexed by class id 0..num_classes-1 (gaps named 'class_<id>')."""
    return [names_by_id.get(i, 'class_%d' % i) for i in range(num_classes)]


def build_signatures(network, class_names, manifest_json, postprocess_kwargs):
    """Builds the inference graph in the default graph.

    Args:
      network: nets.ssd_net.SSDNet.
      class_names: list of num_classes names, index = class id.
      manifest_json: the export manifest (common.manifest.to_json).
      postprocess_kwargs: kwargs of nets.post_processing.postprocess for `detect`.
    Returns:
      dict signature key -> SignatureDef.
    """
    height, width = network.params.img_shape
    normalization = network.params.normalization
    images = tf.compat.v1.placeholder(tf.float32, [None, height, width, 3], name=sig.IMAGES)
    encoded = tf.compat.v1.placeholder(tf.string, [None], name=sig.ENCODED_IMAGES)

    @tf.autograph.experimental.do_not_convert
    def decode_one(data):
        image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        image.set_shape([None, None, 3])
        return image_ops.eval_preprocess_image(image, (height, width), normalization)

    decoded = tf.map_fn(decode_one, encoded,
                        fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
                        name='decode_images')
    logits, locs, _ = network.net(images, is_training=False)
    detect_logits, detect_locs, _ = network.net(decoded, is_training=False,
                                                scope=network.name, reuse=True)
    scores, boxes = network.decode_outputs(logits, locs)
    detections = post_processing.postprocess(*network.decode_outputs(detect_logits, detect_locs),
                                             **postprocess_kwargs)
    batch = tf.shape(encoded)[0]
    names = tf.constant(class_names, tf.string)
    detections[sig.CLASS_NAMES] = tf.tile(names[None], [batch, 1], name=sig.CLASS_NAMES)
    detections[sig.MANIFEST] = tf.fill([batch], tf.constant(manifest_json, tf.string),
                                       name=sig.MANIFEST)
    return {
        sig.DEFAULT_SIGNATURE: saved_model_writer.predict_signature(
            {sig.IMAGES: images}, {sig.SCORES: tf.identity(scores, sig.SCORES),
                                   sig.BOXES: tf.identity(boxes, sig.BOXES)}),
        sig.DETECT_SIGNATURE: saved_model_writer.predict_signature({sig.ENCODED_IMAGES: encoded},
                                                                   detections),
    }


def restore_variables(session, checkpoint):
    """Restores the graph's variables, taking a variable's moving average when the checkpoint
    has it.

    Returns:
      number of variables restored from their ExponentialMovingAverage shadow.
    Raises:
      ValueError: a variable is missing from the checkpoint or has another shape.
    """
    shapes = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    # Every variable (weights and batch-norm statistics) maps to its shadow name; the plain name is
    # the fallback when the checkpoint has no average of it.
    ema_names = tf.compat.v1.train.ExponentialMovingAverage(0.999).variables_to_restore(
        moving_avg_variables=tf.compat.v1.global_variables())
    mapping, averaged, problems = {}, 0, []
    for name, variable in ema_names.items():
        plain = variable.op.name
        key = name if name in shapes else plain
        averaged += key != plain
        if key not in shapes:
            problems.append('%s is missing' % plain)
        elif list(shapes[key]) != variable.shape.as_list():
            problems.append('%s has shape %s in the checkpoint, the graph needs %s'
                            % (key, shapes[key], variable.shape.as_list()))
        mapping[key] = variable
    if problems:
        raise ValueError('checkpoint %s does not fit the network (wrong --model_name or '
                         '--labels_file?): %s%s' % (checkpoint, '; '.join(problems[:5]),
                                                    ' ...' if len(problems) > 5 else ''))
    tf.compat.v1.train.Saver(mapping).restore(session, checkpoint)
    return averaged


def checkpoint_step(checkpoint):
    """The global step saved in a checkpoint, else the number after its '-', else None."""
    reader = tf.train.load_checkpoint(checkpoint)
    if reader.has_tensor('global_step'):
        return int(reader.get_tensor('global_step'))
    suffix = checkpoint.rsplit('-', 1)[-1]
    return int(suffix) if suffix.isdigit() else None


def export(network_name, checkpoint_path, export_base, labels_file, version=None,
           postprocess_kwargs=None, precision=precision_lib.FLOAT32):
    """Exports a checkpoint as `<export_base>/<version>/` (assets/labels.txt and the export
    manifest included).

    Args:
      postprocess_kwargs: overrides of the network's post-processing defaults for `detect`.

    The graph is float32 whatever `precision`: mixed precision is an option of the session
    that loads it (the serving machine's, which may lack bfloat16). For another precision
    than float32 the export gets common.precision.EXPORT_PLATFORM_CONFIG, TF Serving's
    --platform_config_file loading it in that precision.

    Returns:
      path of the written version.
    Raises:
      ValueError: no such checkpoint, or (checkpoint_state.CheckpointError) one that does not
        load, naming the broken file and the previous checkpoint that loads.
    """
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    names_by_id = labels_lib.read_labels(labels_file)
    num_classes = max(names_by_id) + 1
    checkpoint = checkpoints.resolve_checkpoint(checkpoint_path)
    checkpoint_state.check_loads(checkpoint)
    network = nets_factory.get_network(network_name, num_classes)
    post = {**np_post_processing.DEFAULTS, **network.post_processing,
            **(postprocess_kwargs or {})}
    class_names = class_names_list(names_by_id, num_classes)
    manifest_json = manifest_lib.to_json(manifest_lib.build(
        network_name, network.params.img_shape, network.params.normalization,
        len(network.anchors()), class_names, post, precision, os.path.abspath(checkpoint),
        checkpoint_step(checkpoint), ssd_params.geometry(network.params)))
    with tf.Graph().as_default() as graph, tempfile.TemporaryDirectory() as scratch:
        signatures = build_signatures(network, class_names, manifest_json, post)
        labels_copy = os.path.join(scratch, labels_lib.LABELS_FILENAME)
        labels_lib.write_labels(labels_copy, names_by_id)
        saved_model_writer.add_asset(labels_copy)
        with tf.compat.v1.Session(graph=graph) as session:
            averaged = restore_variables(session, checkpoint)
            logging.info('Restored %s (%s from their moving averages)', checkpoint,
                         progress.counted(averaged, 'variable'))
            extra = {manifest_lib.FILENAME: manifest_json}
            if precision != precision_lib.FLOAT32:
                extra[precision_lib.EXPORT_PLATFORM_CONFIG] = (
                    precision_lib.platform_config_text(precision))
            path = saved_model_writer.write_saved_model(session, export_base, signatures, version,
                                                        extra_files=extra)
    logging.info('Exported %s with %s to %s', network_name,
                 progress.counted(num_classes, 'class', 'classes'), path)
    return path
