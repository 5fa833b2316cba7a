"""Tests for eval_ssd_network.py and evaluation/eval_lib.py, pr_curves.py."""
import glob
import json
import os
import stat
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from pycocotools.coco import COCO

import eval_ssd_network
from common import labels as labels_lib
from datasets import train_dir as train_dir_lib
from evaluation import coco_eval, eval_lib, pr_curves, voc_eval
from nets import checkpoint_state, nets_factory
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = {0: 'background', 1: 'circle', 2: 'square'}
METRIC_KEYS = {'mAP_voc07', 'mAP_voc12', 'per_class', 'checkpoint', 'num_images'}


@pytest.fixture(scope='module')
def records_dir(tmp_path_factory):
    return helpers.make_shapes_records(str(tmp_path_factory.mktemp('shapes')), 0, 4, seed=4,
                                           min_side=100, max_side=160)


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'eval_ssd_network.py')] + args,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=400,
                          check=False)


def _write_checkpoint(train_dir, num_classes):
    """A freshly initialised ssd_300_mobilenet_v2 checkpoint at step 7."""
    with tf.Graph().as_default():
        network = nets_factory.get_network('ssd_300_mobilenet_v2', num_classes)
        network.net(tf.zeros([1, 300, 300, 3]), is_training=False)
        step = tf.compat.v1.train.get_or_create_global_step()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(step.assign(7))
            tf.compat.v1.train.Saver().save(session, os.path.join(train_dir, 'model.ckpt'),
                                            global_step=7)


def test_eval_script_waits_for_checkpoints_and_writes_reports(records_dir, tmp_path):
    train_dir, eval_dir = tmp_path / 'train', tmp_path / 'eval'
    _write_checkpoint(str(train_dir), 6)
    result = _run(['--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
                   '--dataset_dir=%s' % records_dir, '--model_name=ssd_300_mobilenet_v2',
                   '--batch_size=3', '--wait_for_checkpoints', '--eval_interval_secs=1',
                   '--eval_timeout_secs=1', '--num_visualizations=5',
                   '--visualization_score_threshold=0'])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'model.ckpt-7 (step 7)' in result.stdout
    for name in ('circle', 'square', 'triangle', 'star', 'cross', 'mAP'):
        assert name in result.stdout
    metrics = json.loads((eval_dir / 'metrics.json').read_text())
    assert set(metrics) == METRIC_KEYS | {'coco'}
    assert set(metrics['coco']) == set(coco_eval.METRIC_KEYS)
    assert metrics['num_images'] == 4
    assert metrics['checkpoint'].endswith('model.ckpt-7')
    assert 0.0 <= metrics['mAP_voc07'] <= 1.0
    for values in metrics['per_class'].values():
        assert set(values) == {'ap_voc07', 'ap_voc12', 'num_gt'}
    assert sum(v['num_gt'] for v in metrics['per_class'].values()) > 0
    pictures = sorted(os.listdir(eval_dir / 'pr_curves'))
    assert 'pr_curves.png' in pictures and len(pictures) >= 2
    tags = set()
    for path in glob.glob(str(eval_dir / 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert 'eval/mAP_voc07' in tags and 'eval/mAP_voc12' in tags
    assert 'eval_coco/AP' in tags and 'eval_coco/AR100' in tags
    assert 'AP @[IoU .50:.95]' in result.stdout
    # 5 pictures asked, the split has 4 images: all of them, in evaluation order.
    pictures = sorted(os.listdir(eval_dir / 'visualizations'))
    assert [name[:3] for name in pictures] == ['00_', '01_', '02_', '03_']
    assert sorted(name[3:] for name in pictures) == ['test_%06d.png' % i for i in range(4)]
    for name in pictures:
        with open(eval_dir / 'visualizations' / name, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert 'visualizations/' + name[:-len('.png')] in tags
    assert 'Wrote 4 pictures in' in result.stdout


def _main(argv, capsys):
    """(exit status, stderr) of eval_ssd_network.py run in this process."""
    import eval_ssd_network
    return helpers.run_main(eval_ssd_network.main, argv, capsys)


def test_eval_script_rejects_bad_flags(records_dir, tmp_path, capsys):
    status, err = _main(['--checkpoint_path=%s' % tmp_path, '--eval_dir=%s' % (tmp_path / 'e'),
                         '--dataset_dir=%s' % records_dir, '--matching_threshold=1.5'], capsys)
    assert status != 0
    assert '--matching_threshold' in err
    status, err = _main(['--checkpoint_path=%s' % (tmp_path / 'none'),
                         '--eval_dir=%s' % tmp_path, '--dataset_dir=%s' % records_dir], capsys)
    assert status != 0
    assert 'does not exist' in err


def test_precision_flag_is_checked_before_the_checkpoint(tmp_path, capsys):
    import eval_ssd_network
    with pytest.raises(SystemExit) as exit_info:
        eval_ssd_network.parse_args(['--checkpoint_path=%s' % (tmp_path / 'none'),
                                     '--eval_dir=%s' % tmp_path, '--dataset_dir=%s' % tmp_path,
                                     '--precision=mixed_float16'])
    assert exit_info.value.code == 2
    assert '--precision=mixed_float16 needs a GPU' in capsys.readouterr().err  # none on CI


def test_add_batch_cuts_padding():
    evaluator = voc_eval.VOCEvaluator(NAMES)
    box = [0.25, 0.25, 0.75, 0.75]
    values = {
        'num_detections': np.array([2.0, 0.0]),
        'detection_boxes': np.array([[box, box, [0, 0, 0, 0]], [[0, 0, 0, 0]] * 3]),
        'detection_scores': np.array([[0.9, 0.8, 0.0], [0.0] * 3]),
        'detection_classes': np.array([[1.0, 2.0, 0.0], [0.0] * 3]),
        'num_boxes': np.array([1, 1]),
        'boxes': np.array([[box, [0, 0, 0, 0]], [box, [0, 0, 0, 0]]]),
        'labels': np.array([[1, 0], [2, 0]]),
        'difficult': np.array([[0, 0], [0, 0]]),
        'filename': np.array([b'a.jpg', b'b.jpg']),
    }
    images = eval_lib._add_batch(evaluator, values)  # pylint: disable=protected-access
    assert [image['filename'] for image in images] == [b'a.jpg', b'b.jpg']
    assert [len(image['detection_scores']) for image in images] == [2, 0]
    assert [image['boxes'].shape for image in images] == [(1, 4), (1, 4)]
    assert images[0]['detection_classes'].dtype == np.int64
    results = evaluator.evaluate()
    assert evaluator.num_images == 2
    assert results['per_class']['circle']['ap_voc12'] == pytest.approx(1.0)
    # square: one FP (image 1) above nothing, one object missed (image 2) -> AP 0.
    assert results['per_class']['square']['ap_voc12'] == pytest.approx(0.0)
    metrics = eval_lib.metrics_dict(results, 'ckpt-1', 2)
    assert set(metrics) == METRIC_KEYS
    assert metrics['mAP_voc07'] == pytest.approx(0.5)
    table = eval_lib.format_table(results, 2)
    assert 'circle' in table and '0.5000' in table


def test_pr_curves_are_png_files(tmp_path):
    per_class = {
        'circle': {'precision': np.array([1.0, 0.5]), 'recall': np.array([0.5, 0.5]),
                   'ap_voc07': 0.5, 'ap_voc12': 0.5, 'num_gt': 2},
        'square': {'precision': np.zeros(0), 'recall': np.zeros(0), 'ap_voc07': None,
                   'ap_voc12': None, 'num_gt': 0},
    }
    paths = pr_curves.write_pr_curves(str(tmp_path), per_class)
    assert [os.path.basename(p) for p in paths] == ['pr_curves.png', 'pr_circle.png']
    for path in paths:
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert sorted(os.listdir(tmp_path)) == ['pr_circle.png', 'pr_curves.png']


def test_metrics_json_written_atomically(tmp_path):
    path = eval_lib.write_metrics(str(tmp_path), {'mAP_voc07': 0.5})
    assert json.loads(open(path, encoding='utf-8').read()) == {'mAP_voc07': 0.5}
    assert os.listdir(tmp_path) == ['metrics.json']


def test_reports_get_the_umask_permissions(tmp_path):
    """metrics.json and the PR curves are readable as any other output."""
    per_class = {'circle': {'precision': np.array([1.0]), 'recall': np.array([0.5]),
                            'ap_voc07': 0.5, 'ap_voc12': 0.5, 'num_gt': 2}}
    previous = os.umask(0o027)
    try:
        paths = [eval_lib.write_metrics(str(tmp_path), {'mAP_voc07': 0.5})]
        paths += pr_curves.write_pr_curves(str(tmp_path / 'pr_curves'), per_class)
        os.umask(0o002)
        paths += pr_curves.write_pr_curves(str(tmp_path / 'shared'), per_class)
    finally:
        os.umask(previous)
    modes = [stat.S_IMODE(os.stat(path).st_mode) for path in paths]
    assert modes == [0o640] * 3 + [0o664] * 2


def test_network_from_the_train_dir_coco_only_and_detections_file(records_dir, tmp_path, capsys):
    """No --model_name: the train dir's train_info.json names the network; --metrics=voc skips
    COCO; --detections_file writes COCO results that COCO.loadRes reads."""
    train_dir, eval_dir = tmp_path / 'train', tmp_path / 'eval'
    _write_checkpoint(str(train_dir), 6)
    labels = labels_lib.read_labels(os.path.join(records_dir, 'labels.txt'))
    params = nets_factory.get_network('ssd_300_mobilenet_v2', 6).params
    dataset = types.SimpleNamespace(name='shapes', split_name='trainval', num_samples=8, parts=(),
                                    files=[os.path.join(records_dir, 'x.tfrecord')])
    train_dir_lib.write_or_check(str(train_dir), train_dir_lib.describe(
        'ssd_300_mobilenet_v2', params, dataset), labels)
    dets = tmp_path / 'dets.json'
    result = _run(['--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
                   '--dataset_dir=%s' % records_dir, '--batch_size=4', '--metrics=voc',
                   '--detections_file=%s' % dets, '--select_threshold=0.1'])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((eval_dir / 'metrics.json').read_text())
    assert set(metrics) == METRIC_KEYS
    assert 'AP @[IoU .50:.95]' not in result.stdout
    detections = json.loads(dets.read_text())
    assert detections and set(detections[0]) == {'image_id', 'category_id', 'bbox', 'score'}
    assert {d['category_id'] for d in detections} <= set(range(1, 6))
    assert all(d['score'] > 0.1 for d in detections)
    # Shapes records keep the VOC image names ('test_000002'): not integers, so 1..N.
    assert {d['image_id'] for d in detections} <= {1, 2, 3, 4}
    evaluator = coco_eval.CocoEvaluator(labels)
    for image_id in range(4):
        evaluator.add_image(100, 100, [], [], [], [], [], [], source_id=b'%d' % (image_id + 1))
    ground_truth = COCO()
    ground_truth.dataset = evaluator.datasets()[0]
    ground_truth.createIndex()
    assert len(ground_truth.loadRes(str(dets)).getAnnIds()) == len(detections)
    # An explicit --model_name is checked against the train dir.
    status, err = _main(['--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
                         '--dataset_dir=%s' % records_dir, '--model_name=ssd_300_vgg'], capsys)
    assert status == 2
    assert 'says the checkpoint is a ssd_300_mobilenet_v2' in err


def test_data_with_other_classes_than_the_train_dir_is_refused(records_dir, tmp_path, capsys):
    train_dir = tmp_path / 'train'
    _write_checkpoint(str(train_dir), 6)
    params = nets_factory.get_network('ssd_300_mobilenet_v2', 6).params
    dataset = types.SimpleNamespace(name='shapes', split_name='trainval', num_samples=8, parts=(),
                                    files=[os.path.join(records_dir, 'x.tfrecord')])
    other = {0: 'background', 1: 'cat', 2: 'square', 3: 'triangle', 4: 'star', 5: 'cross'}
    train_dir_lib.write_or_check(str(train_dir), train_dir_lib.describe(
        'ssd_300_mobilenet_v2', params, dataset), other)
    status, err = _main(['--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % (tmp_path / 'e'),
                         '--dataset_dir=%s' % records_dir], capsys)
    assert status != 0
    assert 'labels.txt has other classes than %s' % os.path.join(records_dir, 'labels.txt') \
        in err


@pytest.mark.parametrize('argv, message', [
    (['--metrics=voc,kitti'], '--metrics: choose from voc, coco, got voc,kitti'),
    (['--detections_file=/no/such/dir/dets.json'], '--detections_file /no/such/dir/dets.json'),
])
def test_metric_flags_are_checked(records_dir, tmp_path, capsys, argv, message):
    _write_checkpoint(str(tmp_path / 'train'), 6)
    status, err = _main(['--checkpoint_path=%s' % (tmp_path / 'train'),
                         '--eval_dir=%s' % (tmp_path / 'e'), '--dataset_dir=%s' % records_dir]
                        + argv, capsys)
    assert status == 2
    assert message in err


def test_add_batch_feeds_the_coco_evaluator_with_original_sizes():
    box = [0.25, 0.25, 0.75, 0.75]
    values = {
        'num_detections': np.array([1.0]), 'detection_boxes': np.array([[box]]),
        'detection_scores': np.array([[0.9]]), 'detection_classes': np.array([[1.0]]),
        'num_boxes': np.array([1]), 'boxes': np.array([[box]]), 'labels': np.array([[1]]),
        'difficult': np.array([[0]]), 'filename': np.array([b'a.jpg']),
        'source_id': np.array([b'42']), 'shape': np.array([[200, 400, 3]]),
    }
    coco = coco_eval.CocoEvaluator(NAMES)
    eval_lib._add_batch(voc_eval.VOCEvaluator(NAMES), values, coco)  # pylint: disable=protected-access
    ground_truth, detections = coco.datasets()
    assert ground_truth['images'] == [{'id': 42, 'height': 200, 'width': 400, 'file_name': '42'}]
    assert detections[0]['bbox'] == [100.0, 50.0, 200.0, 100.0]
    assert coco.evaluate()['AP'] == pytest.approx(1.0)


def _two_checkpoints(train_dir):
    """model.ckpt-1 and model.ckpt-2 of one variable, listed relative to the dir; -2 cut."""
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        with tf.compat.v1.Session() as session:
            session.run(step.initializer)
            for value in (1, 2):
                session.run(step.assign(value))
                saver.save(session, os.path.join(train_dir, 'model.ckpt'), global_step=value,
                           write_meta_graph=False)
    os.truncate(os.path.join(train_dir, 'model.ckpt-2.data-00000-of-00001'), 2)


def test_a_broken_checkpoint_is_named_or_skipped_when_waiting(tmp_path, caplog):
    train_dir = str(tmp_path)
    _two_checkpoints(train_dir)
    args = types.SimpleNamespace(checkpoint_path=train_dir, wait_for_checkpoints=False)
    with pytest.raises(checkpoint_state.CheckpointError) as error:
        list(eval_ssd_network._checkpoints(args))
    assert str(error.value).startswith(
        'checkpoint %s does not load (model.ckpt-2.data-00000-of-00001: ' % os.path.join(
            train_dir, 'model.ckpt-2'))
    assert 'the previous checkpoint %s loads' % os.path.join(train_dir, 'model.ckpt-1') \
        in str(error.value)
    args = types.SimpleNamespace(checkpoint_path=train_dir, wait_for_checkpoints=True,
                                 eval_interval_secs=1, eval_timeout_secs=1)
    assert list(eval_ssd_network._checkpoints(args)) == []
    assert 'Skipping checkpoint %s: model.ckpt-2.data-00000-of-00001' % os.path.join(
        train_dir, 'model.ckpt-2') in caplog.text
