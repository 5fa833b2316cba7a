"""Tests of datasets/train_dir.py: the train dir's labels.txt and train_info.json."""
import json
import os
import stat
import types

import pytest

from common import labels as labels_lib
from datasets import train_dir

LABELS = {0: 'background', 1: 'circle', 2: 'square'}
PARAMS = types.SimpleNamespace(img_shape=(300, 300), normalization='vgg_mean', num_classes=3)


def _dataset(name='voc2007', split='trainval', parts=()):
    return types.SimpleNamespace(name=name, split_name=split, num_samples=10, parts=parts,
                                 files=['/data/%s/%s_%s_00000-of-00001.tfrecord'
                                        % (name, name, split)])


def _info(network='ssd_300_vgg', params=PARAMS, dataset=None):
    return train_dir.describe(network, params, dataset or _dataset())


def test_describe_lists_network_input_and_data_sets():
    both = _dataset('voc2007,voc2012', 'trainval,trainval',
                    parts=(_dataset('voc2007'), _dataset('voc2012')))
    info = _info(dataset=both)
    assert info == {
        'format': 1, 'network': 'ssd_300_vgg', 'image_size': [300, 300],
        'normalization': 'vgg_mean', 'num_classes': 3,
        'datasets': [{'name': 'voc2007', 'split': 'trainval', 'dir': '/data/voc2007',
                      'num_samples': 10},
                     {'name': 'voc2012', 'split': 'trainval', 'dir': '/data/voc2012',
                      'num_samples': 10}]}


def test_the_chief_writes_both_files_atomically_with_umask_permissions(tmp_path):
    folder = str(tmp_path / 'train')
    previous = os.umask(0o022)
    try:
        assert train_dir.write_or_check(folder, _info(), LABELS) is True
    finally:
        os.umask(previous)
    assert sorted(os.listdir(folder)) == ['labels.txt', 'train_info.json']
    assert labels_lib.read_labels(os.path.join(folder, 'labels.txt')) == LABELS
    assert json.loads((tmp_path / 'train' / 'train_info.json').read_text()) == _info()
    for name in os.listdir(folder):
        assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o644
    assert train_dir.read(folder) == (_info(), LABELS)
    # A resumed run with the same description writes nothing and passes.
    assert train_dir.write_or_check(folder, _info(), LABELS) is False


def test_other_workers_do_not_write(tmp_path):
    assert train_dir.write_or_check(str(tmp_path), _info(), LABELS, is_chief=False) is False
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('info, labels, message', [
    (_info(network='ssd_512_vgg'), LABELS, 'network is "ssd_300_vgg", this run has "ssd_512_vgg"'),
    (_info(params=types.SimpleNamespace(img_shape=(512, 512), normalization='vgg_mean',
                                        num_classes=3)), LABELS, 'image_size is'),
    (_info(dataset=_dataset('voc2012')), LABELS,
     'datasets are voc2007:trainval, this run has voc2012:trainval'),
    (_info(), {0: 'background', 1: 'circle', 2: 'cat'}, "id 2 is 'square' vs 'cat'"),
])
def test_a_train_dir_of_another_run_stops_training(tmp_path, info, labels, message):
    train_dir.write_or_check(str(tmp_path), _info(), LABELS)
    with pytest.raises(train_dir.TrainDirError) as error:
        train_dir.write_or_check(str(tmp_path), info, labels, is_chief=False)
    assert message in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_a_labels_file_without_description_is_checked(tmp_path):
    labels_lib.write_labels(str(tmp_path / 'labels.txt'), {1: 'dog'})
    with pytest.raises(train_dir.TrainDirError, match="other classes than this run's data"):
        train_dir.write_or_check(str(tmp_path), _info(), LABELS)


def test_read_errors_name_the_file(tmp_path):
    assert train_dir.read(str(tmp_path)) is None
    (tmp_path / 'train_info.json').write_text('{"network": ')
    with pytest.raises(train_dir.TrainDirError, match='train_info.json: unreadable'):
        train_dir.read(str(tmp_path))
    (tmp_path / 'train_info.json').write_text('{"network": "ssd_300_vgg"}')
    with pytest.raises(train_dir.TrainDirError, match='missing field.*image_size'):
        train_dir.read(str(tmp_path))
    (tmp_path / 'train_info.json').write_text(json.dumps(_info()))
    with pytest.raises(train_dir.TrainDirError, match='labels.txt is missing'):
        train_dir.read(str(tmp_path))


def test_network_name_flag_wins_and_is_checked(tmp_path):
    folder = str(tmp_path)
    assert train_dir.network_name(folder, None, None, 'ssd_300_vgg') == 'ssd_300_vgg'
    assert train_dir.network_name(folder, None, 'ssd_512_vgg', 'ssd_300_vgg') == 'ssd_512_vgg'
    described = (_info(network='ssd_300_mobilenet_v2'), LABELS)
    assert train_dir.network_name(folder, described, None, 'ssd_300_vgg') == 'ssd_300_mobilenet_v2'
    assert train_dir.network_name(folder, described, 'ssd_300_mobilenet_v2',
                                  'ssd_300_vgg') == 'ssd_300_mobilenet_v2'
    with pytest.raises(train_dir.TrainDirError,
                       match='--model_name ssd_300_vgg, but .*train_info.json says the '
                             'checkpoint is a ssd_300_mobilenet_v2'):
        train_dir.network_name(folder, described, 'ssd_300_vgg', 'ssd_300_vgg')


def test_folder_of(tmp_path):
    assert train_dir.folder_of(str(tmp_path)) == str(tmp_path)
    assert train_dir.folder_of(str(tmp_path / 'model.ckpt-7')) == str(tmp_path)
    assert train_dir.folder_of('vgg_16.ckpt') == '.'
