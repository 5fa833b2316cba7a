"""export_model.py: the SavedModel's signatures, its outputs against the training graph,
detect vs numpy."""
import logging
import os
import shutil
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest
import tensorflow as tf

import export_model
from client import ssd_client as client_lib
from common import cli, np_post_processing, np_preprocessing
from common import labels as labels_lib
from datasets import train_dir as train_dir_lib
from export import ssd_export
from nets import checkpoints, nets_factory
from preprocessing import image_ops
from serving import model_server
from serving.model_manager import ModelManager

NETWORK = 'ssd_300_mobilenet_v2'
LABELS = {0: 'background', 1: 'circle', 2: 'square'}


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A random-init checkpoint with moving averages (variables perturbed after the shadows were
    taken), its export, and the training graph's outputs on `images` with the shadow values."""
    work = tmp_path_factory.mktemp('export')
    labels_file = str(work / 'labels.txt')
    labels_lib.write_labels(labels_file, LABELS)
    network = nets_factory.get_network(NETWORK, len(LABELS))
    images = np.random.RandomState(1).uniform(-1, 1, [2, 300, 300, 3]).astype(np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        inputs = tf.constant(images)
        logits, locs, _ = network.net(inputs, is_training=False)
        scores, boxes = network.decode_outputs(logits, locs)
        trainable = tf.compat.v1.trainable_variables()
        ema = tf.compat.v1.train.ExponentialMovingAverage(0.99)
        ema.apply(trainable)
        session.run(tf.compat.v1.global_variables_initializer())
        expected = session.run({'scores': scores, 'boxes': boxes})  # shadows == variables here
        session.run(tf.group([v.assign_add(tf.random.normal(v.shape, stddev=0.05, seed=i))
                              for i, v in enumerate(trainable)]))
        tf.compat.v1.train.Saver(save_relative_paths=True).save(  # as the trainer writes it
            session, str(work / 'train' / 'model.ckpt'), global_step=7)
        perturbed = session.run(scores)
    assert np.abs(perturbed - expected['scores']).max() > 1e-3  # the test can tell the two apart
    export_base = str(work / 'exports' / 'ssd')
    assert export_model.main(['--checkpoint_path=%s' % (work / 'train'),
                              '--model_name=%s' % NETWORK, '--export_dir=%s' % export_base,
                              '--labels_file=%s' % labels_file]) == 0
    return {'base': export_base, 'path': os.path.join(export_base, '1'), 'images': images,
            'expected': expected,
            'work': work, 'labels_file': labels_file}


def _load(path):
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    meta = tf.compat.v1.saved_model.loader.load(session, ['serve'], path)
    return session, meta.signature_def


def _run(session, signature, inputs, outputs=None):
    fetches = {k: v.name for k, v in signature.outputs.items() if outputs is None or k in outputs}
    return session.run(fetches, {signature.inputs[k].name: v for k, v in inputs.items()})


def test_layout_and_saved_model_cli(exported):
    assert sorted(os.listdir(exported['base'])) == ['1']
    assert labels_lib.read_labels(os.path.join(exported['path'], 'assets', 'labels.txt')) == LABELS
    cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
    shown = subprocess.run([cli, 'show', '--dir', exported['path'], '--all'],
                           capture_output=True, text=True, check=True, timeout=300).stdout
    anchors = nets_factory.get_network(NETWORK, len(LABELS)).anchors().shape[0]

    def info(kind, name, dtype, shape):
        return "%s['%s'] tensor_info:\n        dtype: %s\n        shape: %s" % (
            kind, name, dtype, shape)

    for line in ["signature_def['serving_default']", "signature_def['detect']",
                 info('inputs', 'images', 'DT_FLOAT', '(-1, 300, 300, 3)'),
                 info('outputs', 'scores', 'DT_FLOAT', '(-1, %d, 3)' % anchors),
                 info('outputs', 'boxes', 'DT_FLOAT', '(-1, %d, 4)' % anchors),
                 info('inputs', 'encoded_images', 'DT_STRING', '(-1)'),
                 info('outputs', 'detection_boxes', 'DT_FLOAT', '(-1, 200, 4)'),
                 info('outputs', 'detection_scores', 'DT_FLOAT', '(-1, 200)'),
                 info('outputs', 'detection_classes', 'DT_FLOAT', '(-1, 200)'),
                 info('outputs', 'num_detections', 'DT_FLOAT', '(-1)'),
                 info('outputs', 'class_names', 'DT_STRING', '(-1, 3)'),
                 "Method name is: tensorflow/serving/predict"]:
        assert line in shown, line


def test_only_standard_ops(exported):
    session, _ = _load(exported['path'])
    with session:
        graph_def = session.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    ops.update(node.op for function in graph_def.library.function for node in function.node_def)
    # detect's decode and NMS are in the graph.
    assert {'DecodeImage', 'NonMaxSuppressionV3', 'Conv2D'} <= ops
    assert not ops & {'PyFunc', 'PyFuncStateless', 'EagerPyFunc'}


def test_serving_default_equals_training_graph_with_moving_averages(exported):
    session, signatures = _load(exported['path'])
    with session:
        out = _run(session, signatures['serving_default'], {'images': exported['images']})
    np.testing.assert_allclose(out['scores'], exported['expected']['scores'], atol=1e-5)
    np.testing.assert_allclose(out['boxes'], exported['expected']['boxes'], atol=1e-5)


def test_detect_equals_numpy_post_processing_of_serving_default(exported):
    rng = np.random.RandomState(3)
    pictures = [rng.randint(0, 256, [120, 90, 3], dtype=np.uint8),
                rng.randint(0, 256, [64, 200, 3], np.uint8)]
    encoded = [cv2.imencode('.png', p[:, :, ::-1])[1].tobytes() for p in pictures]
    with tf.Graph().as_default(), tf.compat.v1.Session() as prep:
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, 3])
        preprocessed = image_ops.eval_preprocess_image(image, (300, 300), 'minus_one_to_one')
        batch = np.stack([prep.run(preprocessed, {image: p}) for p in pictures])
    session, signatures = _load(exported['path'])
    with session:
        raw = _run(session, signatures['serving_default'], {'images': batch})
        detect = _run(session, signatures['detect'], {'encoded_images': encoded})
        names = _run(session, signatures['detect'], {'encoded_images': np.array([b''], object)},
                     ['class_names'])
    assert [n.decode() for n in names['class_names'][0]] == ['background', 'circle', 'square']
    for i in range(len(pictures)):
        boxes, scores, classes = np_post_processing.postprocess(raw['scores'][i], raw['boxes'][i])
        count = int(detect['num_detections'][i])
        assert count == len(scores) > 0
        np.testing.assert_allclose(detect['detection_scores'][i, :count], scores, atol=1e-5)
        np.testing.assert_allclose(detect['detection_boxes'][i, :count], boxes, atol=1e-5)
        np.testing.assert_array_equal(detect['detection_classes'][i, :count], classes)
        assert not detect['detection_scores'][i, count:].any()


def test_served_by_model_server_to_client(exported):
    picture = np.random.RandomState(4).randint(0, 256, [150, 100, 3], dtype=np.uint8)
    png = cv2.imencode('.png', picture[:, :, ::-1])[1].tobytes()
    session, signatures = _load(exported['path'])
    with session:
        batch = np_preprocessing.preprocess_image(picture, (300, 300), 'minus_one_to_one')[None]
        raw = _run(session, signatures['serving_default'], {'images': batch})
        in_graph = _run(session, signatures['detect'], {'encoded_images': [png]})
    manager = ModelManager('ssd', exported['base'])
    manager.start()
    server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=2)
    server.start()
    try:
        address = '127.0.0.1:%d' % port
        with client_lib.SSDClient(address, score_threshold=0.0) as default_client, \
                client_lib.SSDClient(address, signature='detect',
                                     score_threshold=0.0) as detect_client:
            from_default = default_client.detect(png)
            from_detect = detect_client.detect(png)
    finally:
        server.stop(0).wait()
        manager.stop()
    boxes, scores, classes = np_post_processing.postprocess(raw['scores'][0], raw['boxes'][0])
    count = int(in_graph['num_detections'][0])
    for result, want_boxes, want_scores, want_classes in [
            (from_default, boxes, scores, classes),
            (from_detect, in_graph['detection_boxes'][0, :count],
             in_graph['detection_scores'][0, :count],
             in_graph['detection_classes'][0, :count])]:
        assert (result.width, result.height) == (100, 150)
        np.testing.assert_allclose([d.score for d in result.detections], want_scores, atol=1e-5)
        assert [d.class_name for d in result.detections] == [LABELS[int(c)] for c in want_classes]
        np.testing.assert_allclose([d.box_px for d in result.detections],
                                   want_boxes[:, [1, 0, 3, 2]] * [100, 150, 100, 150], atol=1e-3)


def test_existing_version_is_refused(exported, capsys):
    args = ['--checkpoint_path=%s' % (exported['work'] / 'train' / 'model.ckpt-7'),
            '--model_name=%s' % NETWORK, '--export_dir=%s' % exported['base'],
            '--labels_file=%s' % exported['labels_file'], '--version=1']
    with pytest.raises(SystemExit):
        export_model.main(args)
    assert 'exists already' in capsys.readouterr().err
    assert sorted(os.listdir(exported['base'])) == ['1']


@pytest.mark.parametrize('flags, message', [
    (['--nms_threshold=1.5'], '--nms_threshold must be in [0, 1], got 1.5'),
    (['--keep_top_k=0'], '--keep_top_k must be > 0, got 0'),
    (['--model_name=ssd_301'], "--model_name: invalid choice: 'ssd_301'"),
    (['--version=0'], '--version must be > 0, got 0'),
    (['--precision=mixed_float16'], '--precision=mixed_float16 needs a GPU'),  # none on CI
])
def test_bad_flags_are_refused_before_export(exported, tmp_path, capsys, flags, message):
    args = ['--checkpoint_path=%s' % (exported['work'] / 'train'),
            '--export_dir=%s' % (tmp_path / 'ssd'), '--labels_file=%s' % exported['labels_file']]
    with pytest.raises(SystemExit) as exit_info:
        export_model.main(args + flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'ssd')


def test_bfloat16_export_is_the_float32_graph_with_a_platform_config(exported, tmp_path,
                                                                        capsys):
    from common import precision
    try:
        precision.check('mixed_bfloat16', 0)
    except ValueError as error:
        pytest.skip(str(error))
    base = str(tmp_path / 'ssd')
    assert export_model.main(['--checkpoint_path=%s' % (exported['work'] / 'train'),
                              '--export_dir=%s' % base,
                              '--labels_file=%s' % exported['labels_file'],
                              '--precision=mixed_bfloat16']) == 0
    report = capsys.readouterr().out
    assert 'serving_default in mixed_bfloat16 on 2 random images: ' in report
    assert int(report.split(' ops in bfloat16')[0].rsplit(' ', 1)[1]) >= 85  # every conv
    assert '--precision=mixed_bfloat16' in report
    with open(os.path.join(base, '1', precision.EXPORT_PLATFORM_CONFIG), encoding='utf-8') as f:
        assert f.read() == precision.platform_config_text('mixed_bfloat16')

    def op_types(path):
        session, _ = _load(path)
        with session:
            return sorted(node.op for node in session.graph.as_graph_def().node)

    assert op_types(os.path.join(base, '1')) == op_types(exported['path'])


def test_default_post_processing_is_the_network_one(exported):
    args = export_model.parse_args(['--checkpoint_path=%s' % (exported['work'] / 'train'),
                                    '--export_dir=%s' % exported['base'],
                                    '--labels_file=%s' % exported['labels_file']])
    assert cli.post_processing_kwargs(args) == {}
    network = nets_factory.get_network(args.model_name)
    assert dict(network.post_processing) == dict(np_post_processing.DEFAULTS)


def test_bad_checkpoint_messages(tmp_path, exported):
    with pytest.raises(ValueError, match='no checkpoint in this directory'):
        checkpoints.resolve_checkpoint(str(tmp_path))
    with pytest.raises(ValueError, match='no such checkpoint'):
        checkpoints.resolve_checkpoint(str(tmp_path / 'model.ckpt-1'))
    with pytest.raises(ValueError, match='does not fit the network'):
        ssd_export.export('ssd_300_mobilenet_v2', str(exported['work'] / 'train'),
                          str(tmp_path / 'out'),
                          _labels_with_classes(tmp_path, 5))
    assert not os.path.exists(tmp_path / 'out' / '1')


def test_a_train_dir_naming_another_dirs_checkpoint_is_refused(exported, tmp_path, capsys):
    copy = _described_train_dir(exported, tmp_path)
    original = exported['work'] / 'train' / 'model.ckpt-7'
    (copy / 'checkpoint').write_text('model_checkpoint_path: "%s"\n' % original)
    with pytest.raises(SystemExit) as exit_info:
        export_model.main(['--checkpoint_path=%s' % copy, '--export_dir=%s' % (tmp_path / 'ssd')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'names %s, outside the train dir %s' % (original, copy) in err
    assert 'Traceback' not in err
    assert not os.path.exists(tmp_path / 'ssd')


def test_a_broken_latest_checkpoint_is_named_and_the_previous_one_offered(exported, tmp_path,
                                                                          capsys):
    train = _described_train_dir(exported, tmp_path)
    for name in os.listdir(train):
        if name.startswith('model.ckpt-7.'):
            shutil.copy(train / name, train / name.replace('-7.', '-9.'))
    (train / 'checkpoint').write_text('model_checkpoint_path: "model.ckpt-9"\n'
                                      'all_model_checkpoint_paths: "model.ckpt-7"\n'
                                      'all_model_checkpoint_paths: "model.ckpt-9"\n')
    os.truncate(train / 'model.ckpt-9.data-00000-of-00001', 100)
    assert export_model.main(['--checkpoint_path=%s' % train,
                              '--export_dir=%s' % (tmp_path / 'ssd')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert err.startswith('export_model.py: error: checkpoint %s does not load '
                          '(model.ckpt-9.data-00000-of-00001: Read less bytes than requested)'
                          % (train / 'model.ckpt-9'))
    assert 'the previous checkpoint %s loads: give --checkpoint_path=%s' % (
        (train / 'model.ckpt-7',) * 2) in err
    assert not os.path.exists(tmp_path / 'ssd' / '1')


def _labels_with_classes(folder, count):
    path = str(folder / 'labels5.txt')
    labels_lib.write_labels(path, {i: 'c%d' % i for i in range(1, count)})
    return path


def _described_train_dir(exported, tmp_path):
    """A copy of the fixture's train dir with the trainer's labels.txt and train_info.json."""
    train = tmp_path / 'train'
    shutil.copytree(exported['work'] / 'train', train)
    network = nets_factory.get_network(NETWORK, len(LABELS))
    dataset = types.SimpleNamespace(name='shapes', split_name='trainval', num_samples=8, parts=(),
                                    files=[str(tmp_path / 'records' / 'x.tfrecord')])
    train_dir_lib.write_or_check(str(train), train_dir_lib.describe(NETWORK, network.params,
                                                                    dataset), LABELS)
    return train


def test_a_described_train_dir_is_all_export_needs(exported, tmp_path, caplog):
    """`export_model.py --checkpoint_path=TRAIN_DIR --export_dir=...` and nothing else. The
    train dir is a copy: its own checkpoint is exported, not the original's."""
    caplog.set_level(logging.INFO)
    train = _described_train_dir(exported, tmp_path)
    args = export_model.parse_args(['--checkpoint_path=%s' % train,
                                    '--export_dir=%s' % (tmp_path / 'ssd')])
    assert args.model_name == NETWORK
    assert args.labels_file == str(train / 'labels.txt')
    assert export_model.main(['--checkpoint_path=%s' % train,
                              '--export_dir=%s' % (tmp_path / 'ssd')]) == 0
    assert labels_lib.read_labels(str(tmp_path / 'ssd' / '1' / 'assets' / 'labels.txt')) == LABELS
    assert 'Restored %s ' % (train / 'model.ckpt-7') in caplog.text


@pytest.mark.parametrize('flags, message', [
    (['--model_name=ssd_300_vgg'], 'says the checkpoint is a ssd_300_mobilenet_v2'),
    (['--labels_file={other}'], "has other classes than --labels_file {other}: id 2 is 'square' "
                                "vs 'cat'"),
])
def test_explicit_flags_are_checked_against_the_train_dir(exported, tmp_path, capsys, flags,
                                                          message):
    train = _described_train_dir(exported, tmp_path)
    other = str(tmp_path / 'other_labels.txt')
    labels_lib.write_labels(other, {1: 'circle', 2: 'cat'})
    with pytest.raises(SystemExit) as exit_info:
        export_model.main(['--checkpoint_path=%s' % (train / 'model.ckpt-7'),
                           '--export_dir=%s' % (tmp_path / 'ssd')]
                          + [flag.format(other=other) for flag in flags])
    assert exit_info.value.code == 2
    assert message.format(other=other) in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'ssd')
