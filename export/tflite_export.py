"""LiteRT (TFLite) export of an SSD checkpoint: float32, float16 or int8, two variants.

`export(...)` writes `<export_base>/<version>/` (written to a temporary folder, then renamed):

- `model.tflite`, the raw variant: input `images` float32 [1, H, W, 3] (eval-preprocessed),
  outputs `scores` float32 [1, A, C] (softmax, column 0 background) and `boxes` float32
  [1, A, 4] (decoded, normalised yxyx), as the SavedModel's `serving_default`;
- `detect.tflite`, post-processing in the model: the same input, then the custom op
  `TFLite_Detection_PostProcess` (built into every LiteRT / TFLite runtime) with the four
  outputs, in this order, that mobile object-detector libraries expect: boxes [1, K, 4] yxyx,
  classes [1, K] (class id - 1: the op numbers the classes without the background), scores
  [1, K], count [1];
- `labels.txt` (`id:name`, as every export) and `ssd_manifest.json` (common.manifest, plus a
  `tflite` section: quantization, calibration, files, outputs) beside them.

The graph is built in TF1 style in its own tf.Graph, its variables restored and frozen; the
conversion runs in eager mode on a tf.function that calls the frozen graph, which is how the
op is produced: a tf.function with `experimental_implements` = the op's name and attributes
is replaced by the op (the TF Object Detection API's TF2 TFLite export does the same).

Quantization: `none` (float32), `float16` (float16 weights, float32 compute where the CPU has
no float16 arithmetic), `int8` (weights and activations int8, calibrated on images of the
training records with the evaluation preprocessing; inputs and outputs stay float32).
"""
import logging
import os
import tempfile

import numpy as np
import tensorflow as tf

from common import labels as labels_lib
from common import manifest as manifest_lib
from common import np_post_processing, signatures, tflite_model
from common import precision as precision_lib
from export import saved_model_writer
from nets import box_coding, checkpoint_state, checkpoints, ssd_params

QUANTIZATIONS = tflite_model.QUANTIZATIONS
NONE, FLOAT16, INT8 = QUANTIZATIONS
VARIANTS = tflite_model.VARIANTS
RAW, DETECT = VARIANTS
DEFAULT_CALIBRATION_IMAGES = 300
POSTPROCESS_OP = 'TFLite_Detection_PostProcess'


class ConversionError(ValueError):
    """The converter refused the model: its message plus what to try."""


def top_k_per_class(scores, k):
    """Scores [B, A, C] with those below each class's k-th largest (per image) set to 0: the
    detect signature's pre_nms_top_k, which TFLite_Detection_PostProcess lacks."""
    k = min(int(k), int(scores.shape[1]))
    by_class = tf.transpose(scores, [0, 2, 1])
    kth = tf.math.top_k(by_class, k=k).values[..., -1:]
    return tf.where(scores >= tf.transpose(kth, [0, 2, 1]), scores, tf.zeros_like(scores))


def frozen_graph(network, initialize, batch_size=1, pre_nms_top_k=None):
    """The inference graph of `network` with its variables as constants.

    Args:
      network: nets.ssd_net.SSDNet.
      initialize: fn(session) that sets the variables (restores a checkpoint, or runs the
        initializer for random weights).
      batch_size: static batch of the input.
      pre_nms_top_k: candidates per class of `detect_scores` (default: the network's).

    Returns:
      (GraphDef, input tensor name, dict of output tensor names: `scores` [B, A, C] softmax,
      `boxes` [B, A, 4] decoded, and the inputs of the post-processing op: `locs` [B, A, 4]
      the offsets dy, dx, dh, dw of the boxes clipped to [0, 1], `detect_scores` [B, A, C]
      the scores with all but the pre_nms_top_k best of each class set to 0).
    """
    height, width = network.params.img_shape
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, [batch_size, height, width, 3],
                                          name='images')
        logits, locs, _ = network.net(images, is_training=False)
        scores, boxes = network.decode_outputs(logits, locs)
        # The post-processing op decodes the offsets and runs NMS on unclipped boxes, the
        # `detect` signature on boxes clipped to the image: it gets the clipped boxes'
        # offsets, so that both suppress the same boxes.
        clipped = box_coding.encode_boxes(tf.clip_by_value(boxes, 0.0, 1.0), network.anchors(),
                                          network.params.prior_scaling)
        if pre_nms_top_k is None:
            pre_nms_top_k = {**np_post_processing.DEFAULTS,
                             **network.post_processing}['pre_nms_top_k']
        outputs = {'scores': tf.identity(scores, 'scores'), 'boxes': tf.identity(boxes, 'boxes'),
                   'locs': tf.identity(clipped, 'clipped_locs'),
                   'detect_scores': tf.identity(top_k_per_class(scores, pre_nms_top_k),
                                                'detect_scores')}
        with tf.compat.v1.Session(graph=graph) as session:
            initialize(session)
            graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [t.op.name for t in outputs.values()])
    return graph_def, images.name, {key: t.name for key, t in outputs.items()}


def _imported(graph_def, input_name, output_names):
    """The frozen graph as a concrete function images -> [scores, boxes, locs]."""
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(graph_def, name=''), [])
    keys = ('scores', 'boxes', 'locs', 'detect_scores')
    return wrapped.prune(wrapped.graph.get_tensor_by_name(input_name),
                         [wrapped.graph.get_tensor_by_name(output_names[k]) for k in keys])


def center_anchors(anchors):
    """Anchors [A, 4] yxyx -> [A, 4] (ycenter, xcenter, height, width), the op's anchor input."""
    anchors = np.asarray(anchors, np.float32)
    height = anchors[:, 2] - anchors[:, 0]
    width = anchors[:, 3] - anchors[:, 1]
    return np.stack([anchors[:, 0] + 0.5 * height, anchors[:, 1] + 0.5 * width, height, width],
                    axis=1).astype(np.float32)


def postprocess_attributes(params, post):
    """The attributes of TFLite_Detection_PostProcess for an SSD with post-processing `post`.

    Regular (per-class) NMS as the `detect` signature: per class the candidates above
    select_threshold, NMS at nms_threshold, then the best keep_top_k of all classes. The box
    scales are the inverse prior scaling (variances 0.1, 0.1, 0.2, 0.2 -> 10, 10, 5, 5).
    """
    scaling = params.prior_scaling
    return {
        'max_detections': int(post['keep_top_k']),
        'max_classes_per_detection': 1,
        'detections_per_class': int(post['keep_top_k']),
        'use_regular_nms': True,
        'nms_score_threshold': float(post['select_threshold']),
        'nms_iou_threshold': float(post['nms_threshold']),
        'num_classes': int(params.num_classes) - 1,
        'y_scale': 1.0 / scaling[0], 'x_scale': 1.0 / scaling[1],
        'h_scale': 1.0 / scaling[2], 'w_scale': 1.0 / scaling[3],
    }


def _implements_signature(attributes):
    """The NameAttrList text of `experimental_implements` naming the op and its attributes."""
    parts = ['name: "%s"' % POSTPROCESS_OP]
    for key, value in attributes.items():
        if isinstance(value, bool):
            text = 'b: %s' % str(value).lower()
        elif isinstance(value, int):
            text = 'i: %d' % value
        else:
            text = 'f: %r' % value
        parts.append('attr { key: "%s" value { %s } }' % (key, text))
    return ' '.join(parts)


def _postprocess_function(attributes):
    """A tf.function the converter replaces with TFLite_Detection_PostProcess (its body is a
    placeholder that never runs in the .tflite)."""
    @tf.function(experimental_implements=_implements_signature(attributes))
    def detection_postprocess(box_encodings, class_predictions, anchors):
        del box_encodings, class_predictions, anchors
        return (tf.constant(0.0, name='boxes'), tf.constant(0.0, name='classes'),
                tf.constant(0.0, name='scores'), tf.constant(0.0, name='num_detections'))
    return detection_postprocess


def inference_module(graph_def, input_name, output_names, input_shape, variant,
                     anchors=None, attributes=None):
    """A tf.Module whose `serve` tf.function is the model to convert: images float32
    `input_shape` -> the variant's outputs."""
    model = _imported(graph_def, input_name, output_names)
    spec = tf.TensorSpec(input_shape, tf.float32, name='images')
    module = tf.Module()
    if variant == RAW:
        @tf.function(input_signature=[spec])
        def raw(images):
            scores, boxes, _, _ = model(images)
            return {'scores': scores, 'boxes': boxes}
        module.serve = raw
        return module
    module.postprocess = _postprocess_function(attributes)
    anchor_constant = center_anchors(anchors)

    @tf.function(input_signature=[spec])
    def detect(images):
        _, _, locs, scores = model(images)
        return module.postprocess(locs, scores, tf.constant(anchor_constant))
    module.serve = detect
    return module


def convert(module, quantize, representative_images=None, custom_op=False):
    """Converts a tf.Module (inference_module) to .tflite bytes, through a SavedModel (the
    converter's path that keeps the post-processing function for the op to replace it).

    Args:
      quantize: one of QUANTIZATIONS.
      representative_images: for int8, a callable returning an iterable of float32 [1, H, W, 3]
        batches (the calibration images).
      custom_op: the module calls TFLite_Detection_PostProcess.

    Raises:
      ConversionError: the converter's message and what to try.
    """
    with tempfile.TemporaryDirectory() as scratch:
        tf.saved_model.save(module, scratch, signatures={'serving_default': module.serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
        converter.allow_custom_ops = custom_op
        if quantize == FLOAT16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == INT8:
            if representative_images is None:
                raise ValueError('int8 quantization needs calibration images')
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                [batch] for batch in representative_images())
            # int8 kernels wherever they exist, float32 for the rest.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as error:  # the converter raises several types (ConverterError, ...)
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            # The lines naming what failed, else the last ones (the rest is an MLIR dump).
            message = [line for line in lines if 'error' in line.lower() or 'ops:' in line]
            message = message or lines
            raise ConversionError(
                'the TFLite converter refused the model (%s quantization): %s\nWhat to try: '
                '--quantize=none (float32 converts every op this project builds); for the '
                'post-processing variant --tflite_variants=raw (the raw outputs and the '
                'numpy post-processing of the client); for int8, more or other calibration '
                'images (--num_calibration_images)' % (quantize, ' | '.join(message[-6:]))
            ) from None


def finish_model(data, output_names, metadata, postprocess_options=None):
    """Names and orders the outputs of a converted model and embeds metadata.

    Args:
      data: .tflite bytes of one subgraph and one signature.
      output_names: the signature's outputs in the order of their new names, as
        [(signature output name, new name)]; the subgraph's outputs take this order and the
        output tensors and signature outputs the new names (the input is named `images`).
      metadata: dict name -> text, embedded as the model's metadata entries (the flatbuffer's
        Model.metadata: name and buffer).
      postprocess_options: attributes set on the TFLite_Detection_PostProcess op (the
        converter drops `detections_per_class`, which its kernel then takes as 100).

    Returns:
      .tflite bytes.
    """
    from flatbuffers import flexbuffers  # pylint: disable=import-outside-toplevel
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel
    from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=import-outside-toplevel
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    subgraph, signature = model.subgraphs[0], model.signatureDefs[0]
    by_name = {entry.name.decode(): entry for entry in signature.outputs}
    outputs = []
    for old, new in output_names:
        entry = by_name[old]
        entry.name = new.encode()
        subgraph.tensors[entry.tensorIndex].name = new.encode()
        outputs.append(entry.tensorIndex)
    subgraph.outputs = np.asarray(outputs, np.int32)
    signature.outputs = [by_name[old] for old, _ in output_names]
    for entry in signature.inputs:
        subgraph.tensors[entry.tensorIndex].name = entry.name
    for operator in subgraph.operators:
        code = model.operatorCodes[operator.opcodeIndex].customCode
        if code and code.decode() == POSTPROCESS_OP and postprocess_options:
            options = flexbuffers.Loads(bytes(operator.customOptions))
            options.update(postprocess_options)
            operator.customOptions = np.frombuffer(flexbuffers.Dumps(options), np.uint8)
    for name, text in metadata.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode('utf-8'), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name.encode()
        entry.buffer = len(model.buffers) - 1
        model.metadata = (model.metadata or []) + [entry]
    return flatbuffer_utils.convert_object_to_bytearray(model)


def calibration_images(dataset_info, network, num_images):
    """fn() -> generator of float32 [1, H, W, 3] batches: the first `num_images` images of
    the split with the evaluation preprocessing (run eagerly)."""
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel
    preprocess = preprocessing_factory.get_preprocessing(network.name, is_training=False)

    def generate():
        dataset = dataset_info.read(shuffle=False, num_epochs=1, num_readers=1).take(num_images)
        dataset = dataset.map(lambda sample: preprocess(sample)['image'])
        for image in dataset.as_numpy_iterator():
            yield image[None].astype(np.float32)
    return generate


def check_calibration(quantize, dataset_info, num_classes):
    """Checks the calibration data before anything converts.

    Raises:
      ValueError: int8 without calibration records, or records of another class count.
    """
    if quantize != INT8:
        return
    if dataset_info is None:
        raise ValueError('--quantize=int8 needs calibration images: give '
                         '--calibration_dataset_dir (with --dataset_name and '
                         '--dataset_split_name) naming the training records')
    if dataset_info.num_classes != num_classes:
        raise ValueError('the calibration records %s have %d classes (with background) but the '
                         'model has %d: calibrate with the records the model was trained on'
                         % (dataset_info.labels_path or ','.join(dataset_info.files[:1]),
                            dataset_info.num_classes, num_classes))
    if dataset_info.num_samples < 1:
        raise ValueError('the calibration split has no images')


def tflite_manifest(manifest, quantize, variants, calibration=None):
    """The export manifest with its `tflite` section (common.tflite_model reads it)."""
    outputs = tflite_model.OUTPUTS
    return dict(manifest, tflite={
        'quantization': quantize,
        'calibration': calibration,
        'input': {'name': 'images', 'dtype': 'float32',
                  'shape': [1] + list(manifest['input_size']) + [3]},
        'files': {variant: tflite_model.FILENAMES[variant] for variant in variants},
        'outputs': {variant: list(outputs[variant]) for variant in variants},
        'class_offset': {RAW: 0, DETECT: tflite_model.DETECT_CLASS_OFFSET},
    })


def export(network_name, checkpoint_path, export_base, labels_file, quantize=NONE,
           variants=VARIANTS, version=None, postprocess_kwargs=None, dataset_info=None,
           num_calibration_images=DEFAULT_CALIBRATION_IMAGES):
    """Exports a checkpoint as LiteRT models in `<export_base>/<version>/`.

    Args:
      quantize: one of QUANTIZATIONS.
      variants: subset of VARIANTS.
      postprocess_kwargs: overrides of the network's post-processing defaults (detect.tflite).
      dataset_info: datasets.dataset_factory.DatasetInfo of the calibration records (int8).
      num_calibration_images: images of it to calibrate on.

    Returns:
      path of the written version.
    Raises:
      ValueError: bad calibration data, a checkpoint that does not fit; ConversionError.
    """
    from export import ssd_export  # pylint: disable=import-outside-toplevel
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    if quantize not in QUANTIZATIONS:
        raise ValueError('quantize must be one of %s, got %r' % (QUANTIZATIONS, quantize))
    names_by_id = labels_lib.read_labels(labels_file)
    num_classes = max(names_by_id) + 1
    check_calibration(quantize, dataset_info, num_classes)
    checkpoint = checkpoints.resolve_checkpoint(checkpoint_path)
    checkpoint_state.check_loads(checkpoint)
    network = nets_factory.get_network(network_name, num_classes)
    post = {**np_post_processing.DEFAULTS, **network.post_processing,
            **(postprocess_kwargs or {})}
    class_names = ssd_export.class_names_list(names_by_id, num_classes)
    calibration = None
    representative = None
    if quantize == INT8:
        count = min(num_calibration_images, dataset_info.num_samples)
        calibration = {'dataset': dataset_info.name, 'split': dataset_info.split_name,
                       'images': count, 'preprocessing': 'eval'}
        representative = calibration_images(dataset_info, network, count)
    manifest = tflite_manifest(manifest_lib.build(
        network_name, network.params.img_shape, network.params.normalization,
        len(network.anchors()), class_names, post, precision_lib.FLOAT32,
        os.path.abspath(checkpoint), ssd_export.checkpoint_step(checkpoint),
        ssd_params.geometry(network.params)), quantize, variants, calibration)

    def restore(session):
        averaged = ssd_export.restore_variables(session, checkpoint)
        logging.info('Restored %s (%d variables from their moving averages)', checkpoint,
                     averaged)

    manifest_json = manifest_lib.to_json(manifest)
    with open(labels_file, encoding='utf-8') as f:
        labels_text = f.read()
    models = convert_network(network, restore, quantize, variants, post, representative,
                             {tflite_model.MANIFEST_FILENAME: manifest_json,
                              labels_lib.LABELS_FILENAME: labels_text})
    files = {tflite_model.FILENAMES[variant]: data for variant, data in models.items()}
    return write_version(export_base, version, files, names_by_id, manifest_json)


OUTPUT_NAMES = {
    RAW: [('scores', 'scores'), ('boxes', 'boxes')],
    DETECT: [('output_%d' % i, name) for i, name in enumerate(tflite_model.DETECT_OUTPUTS)],
}


def ensure_eager():
    """Turns eager execution back on when a script in this process turned it off (the
    conversion needs it; the graph itself is built in its own tf.Graph).

    Raises:
      ValueError: TensorFlow refuses because the default graph is in use.
    """
    if tf.executing_eagerly():
        return
    try:
        tf.compat.v1.enable_eager_execution()
    except ValueError as error:
        raise ValueError('the TFLite conversion needs eager execution, which this process '
                         'turned off after using the default graph (%s): convert in a fresh '
                         'process' % error) from None


def convert_network(network, initialize, quantize, variants=VARIANTS, post=None,
                    representative=None, metadata=None):
    """Converts `network` with the variables `initialize(session)` sets.

    Args:
      metadata: dict name -> text embedded in every model (finish_model).

    Returns:
      dict variant -> .tflite bytes.
    """
    ensure_eager()
    post = {**np_post_processing.DEFAULTS, **network.post_processing, **(post or {})}
    graph_def, input_name, output_names = frozen_graph(network, initialize,
                                                       pre_nms_top_k=post['pre_nms_top_k'])
    input_shape = [1] + list(network.params.img_shape) + [3]
    attributes = postprocess_attributes(network.params, post)
    models = {}
    for variant in variants:
        module = inference_module(graph_def, input_name, output_names, input_shape, variant,
                                  network.anchors(), attributes)
        logging.info('Converting %s (%s variant, quantization %s)', network.name, variant,
                     quantize)
        data = convert(module, quantize, representative, custom_op=variant == DETECT)
        models[variant] = finish_model(
            data, OUTPUT_NAMES[variant], metadata or {},
            {'detections_per_class': attributes['detections_per_class']})
    return models


def next_version(export_base):
    """1 + the highest version folder of export_base (of any format), 1 when there is none."""
    versions = [signatures.parse_version(name) for name in os.listdir(export_base)
                if os.path.isdir(os.path.join(export_base, name))]
    return max([v for v in versions if v is not None], default=0) + 1


def write_version(export_base, version, files, names_by_id, manifest_json):
    """Writes the models, labels.txt and the manifest as `<export_base>/<version>/`
    (saved_model_writer.write_version; the next version counts folders of any format)."""
    def write(folder):
        os.makedirs(folder)
        for name, data in files.items():
            with open(os.path.join(folder, name), 'wb') as output:
                output.write(data)
        labels_lib.write_labels(os.path.join(folder, labels_lib.LABELS_FILENAME), names_by_id)
        with open(os.path.join(folder, tflite_model.MANIFEST_FILENAME), 'w',
                  encoding='utf-8') as output:
            output.write(manifest_json)

    return saved_model_writer.write_version(export_base, version, write,
                                            choose_version=next_version)
