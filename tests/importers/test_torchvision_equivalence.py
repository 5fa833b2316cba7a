"""The imported torchvision ssd300_vgg16 detects what torchvision itself detects.

Seeded weights (tests/importers/torchvision_reference.py) are imported as a train dir, exported,
served by the local model server and queried through the `detect` signature and through
SSDClient's default path (serving_default, numpy pre- and post-processing, the export manifest's
normalisation), on three 300x300 crops of a photo and the whole photo. Every one of torchvision's
top detections (its own forward pass, eval mode, score threshold 0: the stored fixture, or a
live run when torch is installed) must be found with the same class, a score within 0.01 and
IoU >= 0.9.
"""
import os
import shutil
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import export_model
import import_weights
import train_ssd_network
from client.ssd_client import SSDClient
from common import np_box_ops
from common import signatures as sig
from importers import errors, import_lib
from serving import model_server
from serving.model_manager import ModelManager
from tests import helpers
from tests.importers import torchvision_reference as reference

SCORE_TOLERANCE = 0.01
MIN_IOU = 0.9


@pytest.fixture(scope='module')
def imported(tmp_path_factory):
    train_dir = str(tmp_path_factory.mktemp('torchvision') / 'train')
    import_lib.import_torchvision_state_dict(reference.seeded_state_dict(), train_dir,
                                             path='seeded ssd300_vgg16')
    return train_dir


@pytest.fixture(scope='module')
def served(imported, tmp_path_factory):
    """(address, export path) of the imported detector behind the local model server."""
    base = str(tmp_path_factory.mktemp('exports') / 'ssd')
    assert export_model.main(['--checkpoint_path=%s' % imported, '--export_dir=%s' % base]) == 0
    manager = ModelManager('ssd', base, poll_seconds=1.0)
    manager.start()
    server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=4)
    server.start()
    address = '127.0.0.1:%d' % port
    helpers.wait_until_serving(address)
    yield address, os.path.join(base, '1')
    server.stop(0).wait()
    manager.stop()


def _png(image):
    ok, data = cv2.imencode('.png', np.ascontiguousarray(image[:, :, ::-1]))
    assert ok
    return data.tobytes()


def _ours(client, image):
    """[(class, score, box yxyx normalised)] of one image through `client`."""
    result = client.detect(_png(image), score_threshold=0.01)
    height, width = image.shape[:2]
    return [(d.class_id, d.score, np.array([d.box_px[1] / height, d.box_px[0] / width,
                                            d.box_px[3] / height, d.box_px[2] / width]))
            for d in result.detections]


def assert_finds(reference_rows, ours, where):
    """Each reference [class, score, ymin, xmin, ymax, xmax] has a detection of ours with the
    same class, a score within SCORE_TOLERANCE and IoU >= MIN_IOU."""
    assert len(reference_rows) == reference.TOP_DETECTIONS
    for row in reference_rows:
        label, score, box = int(row[0]), row[1], np.array(row[2:], np.float32)
        candidates = [(abs(s - score), np_box_ops.iou(box[None], b[None].astype(np.float32))[0, 0])
                      for c, s, b in ours if c == label]
        assert any(gap <= SCORE_TOLERANCE and overlap >= MIN_IOU
                   for gap, overlap in candidates), (
            '%s: torchvision detection class %d score %.4f box %s not found; same-class '
            'detections (score gap, IoU): %s' % (where, label, score, box.round(3),
                                                 sorted(candidates)[:3]))


def test_the_inputs_are_the_fixtures():
    fixture = reference.load_fixture()
    assert fixture['seed'] == reference.SEED
    assert [entry['sha256'] for entry in fixture['crops']] == [
        reference.digest(crop) for crop in reference.crops()]


@pytest.mark.parametrize('signature', [sig.DETECT_SIGNATURE, sig.DEFAULT_SIGNATURE])
def test_the_export_finds_torchvisions_detections(served, signature):
    address, _ = served
    fixture = reference.load_fixture()
    with SSDClient(address, signature=signature, timeout=300.0) as client:
        for entry, image in zip(fixture['crops'], reference.crops()):
            assert_finds(entry['detections'], _ours(client, image),
                         '%s, window %s' % (signature, entry['window']))


def test_the_manifest_carries_the_sources_data(served):
    address, _ = served
    with SSDClient(address, timeout=300.0) as client:
        info = client.model_info()
    assert info.network == 'ssd_300_vgg_torchvision'
    assert info.normalization.mean == pytest.approx((122.99925, 116.9991, 103.9992))
    assert info.normalization.channel_order == 'rgb'
    assert len(info.class_names) == 91 and info.class_names[1] == 'person'
    assert info.class_names[12] == 'class_12'     # one of COCO's unused category ids


def test_the_stored_fixture_is_what_torchvision_gives_now(torchvision_live):
    live, _, _ = torchvision_live
    stored = reference.load_fixture()
    for now, then in zip(live['crops'], stored['crops']):
        assert now['sha256'] == then['sha256']
        np.testing.assert_allclose(np.array(now['detections']), np.array(then['detections']),
                                   atol=1e-4)


def test_a_pth_file_imports_as_the_same_checkpoint(torchvision_live, imported, tmp_path):
    _, _, pth = torchvision_live
    train_dir = str(tmp_path / 'from_pth')
    assert import_weights.main(['--source=torchvision', '--input=%s' % pth,
                                '--train_dir=%s' % train_dir]) == 0
    ours = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
    before = tf.train.load_checkpoint(tf.train.latest_checkpoint(imported))
    names = sorted(before.get_variable_to_shape_map())
    assert sorted(ours.get_variable_to_shape_map()) == names
    for name in names:
        np.testing.assert_array_equal(ours.get_tensor(name), before.get_tensor(name))
    with open(os.path.join(train_dir, 'labels.txt')) as ours_labels, \
            open(os.path.join(imported, 'labels.txt')) as their_labels:
        assert ours_labels.read() == their_labels.read()


def test_without_torch_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'torch', None)
    path = tmp_path / 'ssd300_vgg16_coco-b556d3b4.pth'
    path.write_bytes(b'PK\x03\x04')
    with pytest.raises(errors.WeightsError,
                       match=r'ssd300_vgg16_coco-b556d3b4.pth: reading a torchvision .pth file '
                             r'needs PyTorch, an optional extra: pip install "\.\[torch\]"'):
        import_lib.import_weights('torchvision', str(path), str(tmp_path / 'train'))
    assert sorted(os.listdir(tmp_path)) == ['ssd300_vgg16_coco-b556d3b4.pth']


def test_a_state_dict_of_another_architecture_is_refused(tmp_path):
    state_dict = reference.seeded_state_dict()
    state_dict['backbone.extra.5.0.weight'] = np.zeros([128, 256, 1, 1], np.float32)
    with pytest.raises(errors.WeightsError, match=r'seeded: 1 tensor\(s\) belong to no layer of '
                                                  r'the network \(e.g. backbone.extra.5.0.weight'):
        import_lib.import_torchvision_state_dict(state_dict, str(tmp_path / 'a'), path='seeded')
    del state_dict['backbone.extra.5.0.weight']
    del state_dict['backbone.extra.4.2.weight']
    with pytest.raises(errors.WeightsError, match='seeded: not a torchvision ssd300_vgg16 state '
                                                  'dict: 1 of its 71 tensors are missing'):
        import_lib.import_torchvision_state_dict(state_dict, str(tmp_path / 'b'), path='seeded')
    fasterrcnn = {'backbone.body.conv1.weight': np.zeros([64, 3, 7, 7], np.float32)}
    with pytest.raises(errors.WeightsError, match='not a torchvision ssd300_vgg16 state dict'):
        import_lib.import_torchvision_state_dict(fasterrcnn, str(tmp_path / 'c'), path='seeded')
    assert os.listdir(tmp_path) == []


def test_labels_file_that_disagrees_with_the_class_count_is_refused(tmp_path):
    labels = tmp_path / 'voc.txt'
    labels.write_text('aeroplane\nbicycle\n')
    with pytest.raises(errors.WeightsError, match=r'--labels_file .*voc.txt has ids up to 2 \(3 '
                                                  r'classes with the background\), but seeded '
                                                  r'has 91 classes'):
        import_lib.import_torchvision_state_dict(reference.seeded_state_dict(),
                                                 str(tmp_path / 'train'), labels_file=str(labels),
                                                 path='seeded')
    assert sorted(os.listdir(tmp_path)) == ['voc.txt']


def test_model_name_is_a_check(tmp_path):
    with pytest.raises(errors.WeightsError, match='--model_name ssd_300_vgg, but seeded is a '
                                                  'ssd_300_vgg_torchvision'):
        import_lib.import_torchvision_state_dict(reference.seeded_state_dict(),
                                                 str(tmp_path / 'train'), model_name='ssd_300_vgg',
                                                 path='seeded')
    assert not os.path.exists(tmp_path / 'train')


def test_the_import_fine_tunes_with_the_class_heads_left_out(imported, tmp_path):
    scopes = import_lib.class_head_scopes('ssd_300_vgg_torchvision')
    assert scopes.split(',') == ['ssd_300_vgg_torchvision/%s_box/cls' % layer for layer in (
        'conv4_3', 'conv7', 'conv8', 'conv9', 'conv10', 'conv11')]
    records = helpers.make_shapes_records(str(tmp_path / 'data'), 8, 4, seed=3)
    train_dir = str(tmp_path / 'tuned')
    code = train_ssd_network.main([
        '--dataset_dir=%s' % records, '--model_name=ssd_300_vgg_torchvision',
        '--train_dir=%s' % train_dir, '--checkpoint_path=%s' % imported,
        '--checkpoint_exclude_scopes=%s' % scopes, '--trainable_scopes=%s' % scopes,
        '--max_number_of_steps=1', '--batch_size=2', '--optimizer=sgd', '--learning_rate=0.001',
        '--save_interval_secs=3600'])
    assert code == 0
    tuned = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
    source = tf.train.load_checkpoint(tf.train.latest_checkpoint(imported))
    for name in ('conv1/conv1_1/weights', 'conv11/conv11_2/biases', 'conv4_3_box/loc/weights',
                 'conv4_3_norm/scale'):
        full = 'ssd_300_vgg_torchvision/' + name
        np.testing.assert_array_equal(tuned.get_tensor(full), source.get_tensor(full))
    cls = 'ssd_300_vgg_torchvision/conv4_3_box/cls/weights'
    assert tuned.get_variable_to_shape_map()[cls] == [3, 3, 512, 4 * 6]     # 5 shapes + bg
    shutil.rmtree(train_dir)
