"""Round trip: generate -> convert -> read back; every box, label and flag equals the XML."""
import io
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tf_convert_data
from common import labels as labels_lib
from datasets import dataset_factory, voc_xml
from tests import helpers


@pytest.fixture(scope='module')
def converted(shapes_voc, tmp_path_factory):
    out = tmp_path_factory.mktemp('records')
    for split in ('trainval', 'test'):
        assert tf_convert_data.main([
            '--dataset_name=pascalvoc', '--dataset_dir=%s' % shapes_voc, '--split_name=' + split,
            '--labels_file=%s' % (shapes_voc / 'labels.txt'), '--output_dir=%s' % out,
            '--output_name=shapes_' + split, '--samples_per_shard=10', '--num_workers=2']) == 0
    return out


def test_get_dataset_describes_the_split(converted):
    info = dataset_factory.get_dataset('shapes', 'trainval', str(converted))
    assert (info.name, info.split_name, info.num_samples, info.num_classes) == (
        'shapes', 'trainval', 24, 6)
    assert [f.rsplit('/', 1)[-1] for f in info.files] == [
        'shapes_trainval_0000%d-of-00003.tfrecord' % k for k in range(3)]
    assert info.labels == labels_lib.read_labels(str(converted / 'labels.txt'))


def test_round_trip_equals_the_xml(shapes_voc, converted, read_all):
    info = dataset_factory.get_dataset('shapes', 'trainval', str(converted))
    ids = labels_lib.ids_by_name(info.labels)
    examples = read_all(info, num_readers=2)
    assert len(examples) == 24
    for example in examples:
        filename = example['filename'].decode()
        annotation = voc_xml.parse_annotation(
            str(shapes_voc / 'Annotations' / filename.replace('.jpg', '.xml')))
        height, width = annotation.height, annotation.width
        assert example['image'].dtype == np.uint8
        assert example['image'].shape == (height, width, 3)
        assert list(example['shape']) == [height, width, 3]
        expected = np.array([[(o.ymin - 1) / height, (o.xmin - 1) / width, o.ymax / height,
                              o.xmax / width] for o in annotation.objects], np.float32)
        np.testing.assert_array_equal(example['boxes'], expected)
        assert list(example['labels']) == [ids[o.name] for o in annotation.objects]
        assert list(example['difficult']) == [o.difficult for o in annotation.objects]
        assert list(example['truncated']) == [o.truncated for o in annotation.objects]
        with Image.open(shapes_voc / 'JPEGImages' / filename) as original:
            pixels = np.asarray(original.convert('RGB'), np.int16)
        assert np.abs(pixels - example['image']).mean() < 2.0


def test_records_hold_the_original_jpeg_bytes(shapes_voc, converted):
    info = dataset_factory.get_dataset('shapes', 'test', str(converted))
    count = 0
    for path in info.files:
        for record in tf.compat.v1.io.tf_record_iterator(path):
            features = tf.train.Example.FromString(record).features.feature
            name = features['image/filename'].bytes_list.value[0].decode()
            data = (shapes_voc / 'JPEGImages' / name).read_bytes()
            assert features['image/encoded'].bytes_list.value == [data]
            count += 1
    assert count == info.num_samples == 8


def test_shuffled_reading_is_seeded_and_covers_the_split(converted, read_all):
    info = dataset_factory.get_dataset('shapes', 'trainval', str(converted))
    names = [[e['filename'] for e in read_all(info, shuffle=True, seed=s, shuffle_buffer=8)]
             for s in (1, 1, 2)]
    assert names[0] == names[1] and names[0] != names[2]
    assert sorted(names[0]) == sorted(e['filename'] for e in read_all(info))
    assert len(read_all(info, num_epochs=2)) == 48


def test_custom_file_pattern_counts_records(converted):
    info = dataset_factory.get_dataset('shapes', 'trainval', str(converted),
                                       file_pattern='shapes_%s_00000-*.tfrecord')
    assert len(info.files) == 1 and info.num_samples == 8


def test_missing_records_or_labels_are_clear_errors(converted, tmp_path):
    with pytest.raises(dataset_factory.DatasetNotFoundError, match='no TFRecord files match'):
        dataset_factory.get_dataset('shapes', 'val', str(converted))
    (tmp_path / 'x_train_00000-of-00001.tfrecord').write_bytes(b'')
    with pytest.raises(dataset_factory.DatasetNotFoundError, match='labels.txt is missing'):
        dataset_factory.get_dataset('x', 'train', str(tmp_path))
    (tmp_path / 'labels.txt').write_text('0:background\n1:a\n')
    (tmp_path / 'x_train_summary.json').write_text('{"num_images": ')
    with pytest.raises(dataset_factory.DatasetNotFoundError,
                       match='x_train_summary.json: unreadable'):
        dataset_factory.get_dataset('x', 'train', str(tmp_path))


def test_summary_lists_counts(converted):
    summary = json.loads((converted / 'shapes_trainval_summary.json').read_text())
    assert summary['num_images'] == 24 and summary['num_workers'] == 2
    assert sum(summary['objects_per_class'].values()) == summary['num_objects']
    assert summary['skipped'] == [] and summary['converted'] == []


def test_records_carry_the_source_image_id(converted, read_all):
    info = dataset_factory.get_dataset('shapes', 'test', str(converted))
    assert info.category_ids is None and info.parts == ()
    for example in read_all(info):
        assert example['source_id'] + b'.jpg' == example['filename']


def test_records_without_source_id_still_read(tmp_path, read_all):
    # A record of the earlier schema (no image/source_id) reads with an empty id.
    buffer = io.BytesIO()
    Image.new('RGB', (4, 3)).save(buffer, 'PNG')
    example = tf.train.Example(features=tf.train.Features(feature={
        'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[buffer.getvalue()])),
        'image/filename': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'old.png'])),
    }))
    with tf.io.TFRecordWriter(str(tmp_path / 'old_train_00000-of-00001.tfrecord')) as writer:
        writer.write(example.SerializeToString())
    (tmp_path / 'labels.txt').write_text('0:background\n1:a\n')
    (sample,) = read_all(dataset_factory.get_dataset('old', 'train', str(tmp_path)))
    assert sample['source_id'] == b'' and sample['image'].shape == (3, 4, 3)


def test_parse_dataset_specs():
    parse = dataset_factory.parse_dataset_specs
    assert parse('voc2007', 'test', 'd') == [('voc2007', 'test', 'd')]
    assert parse('voc2007,voc2012', 'trainval', 'd') == [('voc2007', 'trainval', 'd'),
                                                         ('voc2012', 'trainval', 'd')]
    assert parse('voc2007:trainval, voc2012:train', 'x', 'a,b') == [
        ('voc2007', 'trainval', 'a'), ('voc2012', 'train', 'b')]
    with pytest.raises(ValueError, match='empty entry'):
        parse('voc2007,', 'trainval', 'd')
    with pytest.raises(ValueError, match='3 dataset folders'):
        parse('a,b', 'trainval', 'x,y,z')
    with pytest.raises(ValueError, match='listed twice'):
        parse('a,a:trainval', 'trainval', 'd')


@pytest.fixture(scope='module')
def two_sets(shapes_voc, tmp_path_factory):
    """The trainval split converted as two data sets: 'seta' (24 images) in folder a/ and,
    with 8 of the images, 'setb' in folder b/ (same classes)."""
    root = tmp_path_factory.mktemp('two_sets')
    labels = str(shapes_voc / 'labels.txt')
    for folder, name, split in (('a', 'seta', 'trainval'), ('b', 'setb', 'test')):
        assert tf_convert_data.main([
            '--dataset_name=pascalvoc', '--dataset_dir=%s' % shapes_voc, '--split_name=' + split,
            '--labels_file=%s' % labels, '--output_dir=%s' % (root / folder),
            '--output_name=%s_%s' % (name, 'trainval'), '--samples_per_shard=10']) == 0
    return root


def test_two_data_sets_read_as_one(two_sets, read_all):
    info = dataset_factory.get_dataset('seta,setb', 'trainval',
                                       '%s,%s' % (two_sets / 'a', two_sets / 'b'))
    assert (info.name, info.split_name, info.num_samples) == ('seta,setb', 'trainval,trainval', 32)
    assert len(info.files) == 4 and info.num_classes == 6
    assert [p.num_samples for p in info.parts] == [24, 8]
    # Without shuffling: one after the other, every image once.
    names = [e['filename'] for e in read_all(info)]
    assert len(names) == 32
    assert sorted(names[24:]) == sorted(e['filename'] for e in read_all(info.parts[1]))
    # Shuffled: seeded, every image once per epoch, both sets mixed from the start.
    shuffled = [[e['filename'] for e in read_all(info, shuffle=True, seed=s)] for s in (1, 1)]
    assert shuffled[0] == shuffled[1] and sorted(shuffled[0]) == sorted(names)
    test_names = set(names[24:])
    assert any(n in test_names for n in shuffled[0][:12])


def test_mixing_follows_the_sizes(two_sets):
    info = dataset_factory.get_dataset('seta:trainval,setb:trainval', 'ignored',
                                       '%s,%s' % (two_sets / 'a', two_sets / 'b'))
    test_names = set()
    with tf.Graph().as_default():
        for example in helpers.run_dataset(info.parts[1].read()):
            test_names.add(example['filename'])
        taken = helpers.run_dataset(info.read(shuffle=True, seed=3, num_epochs=None).take(800))
    share = np.mean([e['filename'] in test_names for e in taken])
    assert share == pytest.approx(8 / 32, abs=0.06)


def test_disagreeing_labels_name_both_files(two_sets, tmp_path):
    other = tmp_path / 'c'
    shutil.copytree(two_sets / 'b', other)
    (other / 'labels.txt').write_text('0:background\n1:circle\n2:cat\n3:triangle\n4:star\n'
                                      '5:cross\n')
    with pytest.raises(dataset_factory.DatasetNotFoundError) as error:
        dataset_factory.get_dataset('seta,setb', 'trainval', '%s,%s' % (two_sets / 'a', other))
    message = str(error.value)
    assert str(two_sets / 'a' / 'labels.txt') in message and str(other / 'labels.txt') in message
    assert "'cat'" in message
    with pytest.raises(dataset_factory.DatasetNotFoundError, match='one data set'):
        dataset_factory.get_dataset('seta,setb', 'trainval', str(two_sets / 'a'),
                                    file_pattern='*.tfrecord')


@pytest.mark.parametrize('num_shards, by_file', [(2, True), (3, True), (5, False)])
def test_workers_read_disjoint_parts_that_cover_the_split(converted, read_all, num_shards,
                                                          by_file):
    info = dataset_factory.get_dataset('shapes', 'trainval', str(converted))
    parts = [[e['filename'] for e in read_all(info, shuffle=True, shuffle_buffer=8,
                                              num_shards=num_shards, shard_index=index)]
             for index in range(num_shards)]
    everything = sorted(e['filename'] for e in read_all(info))
    assert sorted(sum(parts, [])) == everything
    if by_file:  # whole files of 8 records each
        assert sorted(len(part) for part in parts) == sorted(
            8 * len(range(index, 3, num_shards)) for index in range(num_shards))
    else:
        assert [len(part) for part in parts] == [5, 5, 5, 5, 4]
    with pytest.raises(ValueError, match=r'shard_index must be in \[0, 2\)'):
        info.read(num_shards=2, shard_index=2)
