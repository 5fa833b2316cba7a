"""LiteRT (TFLite) export of ssd_300_mobilenet_v2 (random weights, calibrated batch norm):
the float32 raw model equals the SavedModel's `serving_default`, detect.tflite's
TFLite_Detection_PostProcess gives the `detect` signature's detections, float16 and int8 run
and stay close, the manifest and labels travel with the model (files and embedded), and bad
input gets one clear error before anything converts."""
import io
import json
import os
import shutil

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

import export_model
from client import detect_image, tflite_detector
from common import np_box_ops, np_post_processing, np_preprocessing, signatures, tflite_model
from datasets import dataset_factory
from export import random_model, ssd_export, tflite_export
from nets import nets_factory
from tests import helpers

pytestmark = pytest.mark.slow
litert = pytest.importorskip('ai_edge_litert.interpreter',
                             reason='ai-edge-litert (requirements-tflite.txt) is not installed')

NETWORK = 'ssd_300_mobilenet_v2'
# Both sides keep only candidates above 0.25 and the detections of score >= 0.3 are compared:
# a random network's hundreds of near-ties at 0.01 would be ranked differently by the two NMS
# implementations, and the margin absorbs the small difference of the graph's and numpy's
# image resizing.
POST = {'select_threshold': 0.25}
SHARPEN = 4.0
KEEP_TOP_K = np_post_processing.KEEP_TOP_K


def _sharpen_class_logits(checkpoint, factor):
    """Scales the class heads of a checkpoint in place: a random network's softmax is nearly
    uniform, a sharper one has confident (score >= 0.3) detections to compare."""
    reader = tf.train.load_checkpoint(checkpoint)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        variables = {}
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if '_box/cls/' in name:
                value = value * factor
            variables[name] = tf.compat.v1.Variable(value, name=name)
        session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver(variables).save(session, checkpoint, write_meta_graph=False)


def _pictures():
    """Two test images: shapes on grey (JPEG bytes, RGB array) and random pixels."""
    image = np.full((240, 320, 3), 200, np.uint8)
    yy, xx = np.mgrid[:240, :320]
    image[(yy - 80) ** 2 + (xx - 90) ** 2 < 50 ** 2] = (220, 30, 30)
    image[120:220, 170:300] = (30, 60, 220)
    noise = np.random.default_rng(0).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    encoded = []
    for rgb in (image, noise):
        out = io.BytesIO()
        PIL.Image.fromarray(rgb).save(out, 'PNG')
        encoded.append(out.getvalue())
    return encoded, [image, noise]


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A random checkpoint, its SavedModel, and its .tflite exports: float32 (raw and
    detect), float16 and int8 (raw, calibrated on 4 shapes images)."""
    tf.compat.v1.reset_default_graph()
    tflite_export.ensure_eager()
    root = tmp_path_factory.mktemp('tflite')
    records = helpers.make_shapes_records(str(root / 'data'), 4, 1, min_side=120, max_side=160)
    calibration = dataset_factory.get_dataset('shapes', 'trainval', records)
    classes = [calibration.labels[i] for i in range(calibration.num_classes)]
    checkpoint, labels = random_model.random_checkpoint(NETWORK, str(root / 'train'), classes,
                                                        calibrate=True)
    _sharpen_class_logits(checkpoint, SHARPEN)
    with tf.Graph().as_default():
        saved = ssd_export.export(NETWORK, checkpoint, str(root / 'saved'), labels,
                                  postprocess_kwargs=POST)
    paths = {}
    for quantize, variants in (('none', ('raw', 'detect')), ('float16', ('raw',)),
                               ('int8', ('raw',))):
        paths[quantize] = tflite_export.export(
            NETWORK, checkpoint, str(root / ('lite_' + quantize)), labels, quantize, variants,
            postprocess_kwargs=POST, dataset_info=calibration, num_calibration_images=4)
    return {'classes': classes, 'root': root, 'checkpoint': checkpoint, 'labels': labels,
            'records': records, 'saved': saved, 'lite': paths}


def _run_saved_model(path, feeds, signature, outputs):
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, [signatures.SERVE_TAG], path)
        definition = meta.signature_def[signature]
        feed = {definition.inputs[key].name: value for key, value in feeds.items()}
        return session.run([definition.outputs[key].name for key in outputs], feed)


def _preprocessed(rgb):
    params = nets_factory.get_network(NETWORK).params
    return np_preprocessing.preprocess_image(rgb, params.img_shape, params.normalization)[None]


def test_float32_raw_equals_saved_model(exported):
    model = tflite_model.TFLiteModel(os.path.join(exported['lite']['none'], 'model.tflite'))
    assert model.variant == 'raw' and model.input_shape == [1, 300, 300, 3]
    _, rgbs = _pictures()
    for rgb in rgbs:
        batch = _preprocessed(rgb)
        scores, boxes = _run_saved_model(exported['saved'], {'images': batch},
                                         'serving_default', ['scores', 'boxes'])
        lite_scores, lite_boxes = model.run(batch)
        assert lite_scores.shape == scores.shape == (1, 8732, len(exported['classes']))
        np.testing.assert_allclose(lite_scores, scores, atol=1e-4)
        np.testing.assert_allclose(lite_boxes, boxes, atol=1e-4)


def _matched(reference, candidate, keep_top_k, min_score=0.3, min_iou=0.9, margin=0.02):
    """How many reference detections of score >= min_score have a candidate of the same class
    and IoU >= min_iou, of how many. When either list is full (keep_top_k), detections within
    `margin` of its lowest score are left out: which of the near-ties make the cut is the
    implementations' choice."""
    boxes, scores, classes = reference
    floor = min_score
    for found in (reference[1], candidate[1]):
        if len(found) >= keep_top_k:
            floor = max(floor, float(found.min()) + margin)
    keep = scores >= floor
    found = 0
    for box, cls in zip(boxes[keep], classes[keep]):
        same = candidate[2] == cls
        if same.any() and np_box_ops.iou(box[None], candidate[0][same]).max() >= min_iou:
            found += 1
    return found, int(keep.sum())


def test_detect_variant_matches_detect_signature(exported):
    model = tflite_model.TFLiteModel(os.path.join(exported['lite']['none'], 'detect.tflite'))
    assert model.variant == 'detect'
    ops = {op['op_name'] for op in model.interpreter._get_ops_details()}  # pylint: disable=protected-access
    assert 'TFLite_Detection_PostProcess' in ops
    encoded, rgbs = _pictures()
    compared = 0
    for data, rgb in zip(encoded, rgbs):
        boxes, scores, classes, count = _run_saved_model(
            exported['saved'], {'encoded_images': [data]}, 'detect', signatures.DETECTION_OUTPUTS)
        count = int(count[0])
        reference = (boxes[0, :count], scores[0, :count], classes[0, :count].astype(np.int64))
        lite = model.detections(_preprocessed(rgb), {})
        found, total = _matched(reference, lite, KEEP_TOP_K)
        assert found == total, (found, total)
        back, back_total = _matched(lite, reference, KEEP_TOP_K)
        assert back == back_total, (back, back_total)
        compared += total
    assert compared > 0


def test_detect_variant_runs_on_one_thread(exported):
    """LiteRT 2.3.0's post-processing op drops a class's detections on several threads."""
    path = os.path.join(exported['lite']['none'], 'detect.tflite')
    model = tflite_model.TFLiteModel(path, num_threads=2)
    assert model.num_threads == 1
    _, rgbs = _pictures()
    batch = _preprocessed(rgbs[0])
    for got, want in zip(model.run(batch), tflite_model.TFLiteModel(path, 1).run(batch)):
        np.testing.assert_array_equal(got, want)
    assert tflite_model.TFLiteModel(os.path.join(exported['lite']['none'], 'model.tflite'),
                                    num_threads=2).num_threads == 2


def test_float16_and_int8_run_close_to_float32(exported):
    _, rgbs = _pictures()
    batch = _preprocessed(rgbs[0])
    reference = tflite_model.TFLiteModel(
        os.path.join(exported['lite']['none'], 'model.tflite')).run(batch)
    for quantize, tolerance in (('float16', 0.01), ('int8', 0.15)):
        path = os.path.join(exported['lite'][quantize], 'model.tflite')
        scores, boxes = tflite_model.TFLiteModel(path).run(batch)
        assert np.isfinite(scores).all() and np.isfinite(boxes).all()
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=0.05)
        assert np.abs(scores - reference[0]).mean() < tolerance / 3, quantize
        assert np.abs(boxes - reference[1]).mean() < tolerance, quantize
    assert os.path.getsize(path) < 0.4 * os.path.getsize(
        os.path.join(exported['lite']['none'], 'model.tflite'))


def test_manifest_and_labels_travel_with_the_model(exported):
    folder = exported['lite']['int8']
    assert sorted(os.listdir(folder)) == ['labels.txt', 'model.tflite', 'ssd_manifest.json']
    with open(os.path.join(folder, 'ssd_manifest.json'), encoding='utf-8') as f:
        manifest = json.load(f)
    assert manifest['network'] == NETWORK and manifest['class_names'] == exported['classes']
    assert manifest['tflite']['quantization'] == 'int8'
    assert manifest['tflite']['calibration']['images'] == 4
    assert manifest['tflite']['files'] == {'raw': 'model.tflite'}
    embedded = tflite_model.embedded_metadata(os.path.join(folder, 'model.tflite'))
    assert json.loads(embedded['ssd_manifest.json']) == manifest
    assert embedded['labels.txt'].decode().startswith('0:background')
    # Alone, the model still describes itself.
    alone = exported['root'] / 'alone'
    alone.mkdir()
    shutil.copy(os.path.join(folder, 'model.tflite'), alone)
    detector = tflite_detector.TFLiteDetector(str(alone / 'model.tflite'))
    assert detector.manifest.class_names == tuple(exported['classes'])


def test_detect_image_runs_the_tflite_model(exported, tmp_path, capsys):
    encoded, _ = _pictures()
    image = tmp_path / 'shapes.png'
    image.write_bytes(encoded[0])
    model = os.path.join(exported['lite']['none'], 'detect.tflite')
    assert detect_image.main(['--tflite', model, '--score_threshold', '0.3',
                              '--output_dir', str(tmp_path / 'out'), str(image)]) == 0
    out = capsys.readouterr().out
    assert 'shapes.png: 320x240' in out and 'detect.tflite version 1' in out
    assert (tmp_path / 'out' / 'shapes_detections.jpg').is_file()


def test_missing_runtime_names_the_package(exported, monkeypatch, capsys):
    monkeypatch.setitem(__import__('sys').modules, 'ai_edge_litert.interpreter', None)
    model = os.path.join(exported['lite']['none'], 'model.tflite')
    with pytest.raises(tflite_model.RuntimeMissing, match='ai-edge-litert.*requirements-tflite'):
        tflite_model.TFLiteModel(model)
    assert detect_image.main(['--tflite', model, 'x.png']) == 2
    assert 'pip install -r requirements-tflite.txt' in capsys.readouterr().err


def _export_args(exported, *extra):
    return ['--checkpoint_path', exported['checkpoint'], '--model_name', NETWORK,
            '--export_dir', str(exported['root'] / 'bad'), '--format=tflite', *extra]


def test_int8_without_calibration_data_is_refused(exported, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_model.parse_args(_export_args(exported, '--quantize=int8'))
    assert exit_info.value.code == 2
    assert '--quantize=int8 needs calibration images' in capsys.readouterr().err


def test_int8_with_records_of_another_class_count_is_refused(exported, tmp_path, capsys):
    other = tmp_path / 'records'
    shutil.copytree(exported['records'], other)
    (other / 'labels.txt').write_text('0:background\n1:circle\n')
    with pytest.raises(SystemExit):
        export_model.parse_args(_export_args(exported, '--quantize=int8',
                                             '--calibration_dataset_dir', str(other)))
    err = capsys.readouterr().err
    assert 'have 2 classes' in err and 'the model has %d' % len(exported['classes']) in err
    assert not (exported['root'] / 'bad').exists()


def test_tflite_flags_on_a_saved_model_export_are_refused(exported, capsys):
    args = _export_args(exported, '--quantize=float16')
    args.remove('--format=tflite')
    with pytest.raises(SystemExit):
        export_model.parse_args(args)
    assert '--quantize apply to --format=tflite only' in capsys.readouterr().err


def test_converter_refusal_says_what_to_try():
    tflite_export.ensure_eager()
    module = tf.Module()
    module.serve = tf.function(lambda text: tf.strings.length(text),
                               input_signature=[tf.TensorSpec([1], tf.string)])
    with pytest.raises(tflite_export.ConversionError,
                       match='(?s)refused the model.*StringLength.*What to try'):
        tflite_export.convert(module, 'none')
