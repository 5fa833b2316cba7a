"""import_weights.py: bad input gets one clear line and exit status 2, and leaves no train dir."""
import json
import os
import sys

import pytest

import eval_ssd_network
import import_weights
from tests import helpers
from tests.importers import caffe_reference, ssd_tensorflow_reference


def _run(argv, capsys):
    """(exit status, stdout, stderr lines) of import_weights.py with argv."""
    try:
        code = import_weights.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def _assert_refused(tmp_path, argv, capsys, message, usage=False):
    train_dir = tmp_path / 'train'
    before = sorted(os.listdir(tmp_path))
    code, _, lines = _run(argv + ['--train_dir=%s' % train_dir], capsys)
    assert code == 2
    errors = [line for line in lines if 'error:' in line]
    assert len(errors) == 1 and message in errors[0], lines
    assert lines[-1] == errors[0]
    assert not any('Traceback' in line for line in lines)
    if not usage:     # nothing else but the warnings tf_slim prints while building a graph
        assert all('Warning' in line or 'warnings.warn(' in line for line in lines[:-1]), lines
    assert sorted(os.listdir(tmp_path)) == before        # no train dir, no temporary folder


@pytest.fixture(scope='module')
def caffemodel(tmp_path_factory):
    """An SSD300 VOC .caffemodel of the release's layers with tiny (1-channel) weights."""
    path = str(tmp_path_factory.mktemp('caffe') / 'VGG_VOC0712_SSD_300x300_iter_120000.caffemodel')
    caffe_reference.write_model(path, 300, caffe_reference.tiny_blobs(300))
    return path


def test_a_missing_input(tmp_path, capsys):
    _assert_refused(tmp_path, ['--source=caffe', '--input=%s' % (tmp_path / 'none.caffemodel')],
                    capsys, 'none.caffemodel does not exist', usage=True)


def test_an_existing_train_dir(tmp_path, caffemodel, capsys):
    (tmp_path / 'train').mkdir()
    (tmp_path / 'train' / 'checkpoint').write_text('model_checkpoint_path: "model.ckpt-9"\n')
    _assert_refused(tmp_path, ['--source=caffe', '--input=%s' % caffemodel], capsys,
                    'train exists and is not empty; an import writes a new train dir',
                    usage=True)
    assert os.listdir(tmp_path / 'train') == ['checkpoint']


def test_a_prototxt_for_another_source(tmp_path, caffemodel, capsys):
    deploy = tmp_path / 'deploy.prototxt'
    deploy.write_text('name: "x"\n')
    _assert_refused(tmp_path, ['--source=ssd_tensorflow', '--input=%s' % caffemodel,
                               '--prototxt=%s' % deploy], capsys,
                    '--prototxt is for --source=caffe only', usage=True)


def test_a_truncated_caffemodel(tmp_path, caffemodel, capsys):
    path = tmp_path / 'cut.caffemodel'
    with open(caffemodel, 'rb') as f:
        path.write_bytes(f.read()[:20000])
    _assert_refused(tmp_path, ['--source=caffe', '--input=%s' % path], capsys,
                    'cut.caffemodel: not a Caffe model')


@pytest.mark.parametrize('source', ['caffe', 'ssd_tensorflow', 'torchvision'])
def test_a_foreign_file(tmp_path, capsys, source, monkeypatch):
    monkeypatch.setitem(sys.modules, 'torch', None)      # the same line with torch or without
    path = tmp_path / 'photo.jpg'
    path.write_bytes(b'\xff\xd8\xff\xe0' + bytes(range(256)) * 8)
    expected = {'caffe': 'photo.jpg: not a Caffe model',
                'ssd_tensorflow': 'photo.jpg: not a readable TensorFlow checkpoint',
                'torchvision': 'photo.jpg: reading a torchvision .pth file needs PyTorch, an '
                               'optional extra: pip install ".[torch]"'}[source]
    _assert_refused(tmp_path, ['--source=%s' % source, '--input=%s' % path], capsys, expected)


def test_a_prototxt_that_disagrees_with_the_caffemodel(tmp_path, caffemodel, capsys):
    deploy = str(tmp_path / 'deploy.prototxt')
    caffe_reference.write_prototxt(deploy, 512)
    _assert_refused(tmp_path, ['--source=caffe', '--input=%s' % caffemodel,
                               '--prototxt=%s' % deploy], capsys,
                    'deploy.prototxt: layer conv8_2 is num_output 256 kernel 3 pad 1 stride 2')


def test_a_class_count_that_disagrees_with_the_labels_file(tmp_path, caffemodel, capsys):
    labels = tmp_path / 'labels.txt'
    labels.write_text('0:background\n1:cat\n2:dog\n')
    _assert_refused(tmp_path, ['--source=caffe', '--input=%s' % caffemodel,
                               '--labels_file=%s' % labels], capsys,
                    'labels.txt has ids up to 2 (3 classes with the background), but '
                    '%s has 21 classes' % caffemodel)


def test_weights_that_do_not_fit_the_network(tmp_path, caffemodel, capsys):
    _assert_refused(tmp_path, ['--source=caffe', '--input=%s' % caffemodel], capsys,
                    'ssd_300_vgg_caffe_voc/conv1/conv1_1/weights: the file gives shape '
                    '[3, 3, 1, 64], the network needs [3, 3, 3, 64]')


def test_an_import_is_a_train_dir_evaluation_takes_without_flags(tmp_path, capsys):
    records = helpers.make_shapes_records(str(tmp_path / 'shapes'), 0, 2, seed=4, min_side=100,
                                          max_side=160)
    prefix = str(tmp_path / 'ssd_300_vgg.ckpt')
    ssd_tensorflow_reference.write_checkpoint(prefix, 300, num_classes=6, training_state=False)
    train_dir = tmp_path / 'train'
    code, out, _ = _run(['--source=ssd_tensorflow', '--input=%s' % prefix,
                         '--labels_file=%s' % os.path.join(records, 'labels.txt'),
                         '--model_name=ssd_300_vgg_ssdtf', '--train_dir=%s' % train_dir], capsys)
    assert code == 0
    assert out.splitlines() == [
        'Imported ssd_300_vgg_ssdtf (6 classes) into %s' % train_dir,
        'Fine-tune on other classes with --model_name=ssd_300_vgg_ssdtf --checkpoint_path=%s '
        '--checkpoint_exclude_scopes=%s' % (train_dir, ','.join(
            'ssd_300_vgg_ssdtf/%s_box/cls' % layer
            for layer in ('conv4_3', 'conv7', 'conv8', 'conv9', 'conv10', 'conv11')))]
    eval_dir = tmp_path / 'eval'
    assert eval_ssd_network.main(['--checkpoint_path=%s' % train_dir, '--dataset_dir=%s' % records,
                                  '--eval_dir=%s' % eval_dir, '--batch_size=2',
                                  '--metrics=voc']) == 0
    metrics = json.loads((eval_dir / 'metrics.json').read_text())
    assert metrics['num_images'] == 2
    assert metrics['checkpoint'].endswith('model.ckpt-0')
