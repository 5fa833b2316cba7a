"""Round trip: generate -> convert -> read back; every box, label and flag equals the XML."""
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tf_convert_data
from datasets import dataset_factory, voc_xml
from datasets import labels as labels_lib


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
