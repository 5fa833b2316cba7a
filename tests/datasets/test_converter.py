import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets import converter, dataset_factory, specs
from datasets import record_schema as rs

LABELS = {0: 'background', 1: 'circle', 2: 'star'}


def save(path, mode='RGB', size=(40, 30), fmt='JPEG', color=None):
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt)
    path.write_bytes(buffer.getvalue())
    return str(path)


def spec(path, objects=(), size=(None, None)):
    return specs.ExampleSpec(path.rsplit('/', 1)[-1], path, size[0], size[1], list(objects))


def star(box, difficult=0, truncated=0):
    return specs.ObjectSpec(2, 'star', box, difficult, truncated)


def test_shard_assignment_is_a_seeded_partition():
    shards = converter.shard_assignment(10, 3, seed=1)
    assert [len(s) for s in shards] == [3, 3, 4]
    assert sorted(sum(shards, [])) == list(range(10))
    assert shards == converter.shard_assignment(10, 3, seed=1)
    assert shards != converter.shard_assignment(10, 3, seed=2)


def test_encode_example_normalises_clips_and_drops_degenerate_boxes(tmp_path):
    path = save(tmp_path / 'a.jpg')
    data = (tmp_path / 'a.jpg').read_bytes()
    objects = [star((0.0, 1.0, 40.0, 30.0), 1, 1), star((-5.0, 2.0, 10.0, 40.0)),
               star((50.0, 0.0, 60.0, 10.0)), star((5.0, 5.0, 5.0, 10.0))]
    encoded = converter.encode_example(spec(path, objects, (40, 30)))
    assert encoded.report['clipped'] == 1 and encoded.report['degenerate'] == 2
    features = tf.train.Example.FromString(encoded.serialized).features.feature
    assert features[rs.ENCODED].bytes_list.value == [data]
    assert features[rs.FORMAT].bytes_list.value == [b'jpeg']
    assert features[rs.FILENAME].bytes_list.value == [b'a.jpg']
    assert features[rs.SHAPE].int64_list.value == [30, 40, 3]
    assert features[rs.CHANNELS].int64_list.value == [3]
    np.testing.assert_allclose(features[rs.BBOX_YMIN].float_list.value, [1 / 30, 2 / 30], 1e-6)
    np.testing.assert_allclose(features[rs.BBOX_XMIN].float_list.value, [0, 0], 1e-6)
    np.testing.assert_allclose(features[rs.BBOX_YMAX].float_list.value, [1, 1], 1e-6)
    np.testing.assert_allclose(features[rs.BBOX_XMAX].float_list.value, [1, 0.25], 1e-6)
    assert features[rs.LABEL].int64_list.value == [2, 2]
    assert features[rs.LABEL_TEXT].bytes_list.value == [b'star', b'star']
    assert features[rs.DIFFICULT].int64_list.value == [1, 0]
    assert features[rs.TRUNCATED].int64_list.value == [1, 0]


def test_size_from_the_image_not_the_annotation(tmp_path):
    path = save(tmp_path / 'a.jpg', size=(40, 30))
    encoded = converter.encode_example(spec(path, [star((0.0, 0.0, 20.0, 15.0))], (80, 60)))
    assert encoded.report['size_mismatch'] == 'annotated 80x60, image 40x30'
    features = tf.train.Example.FromString(encoded.serialized).features.feature
    assert features[rs.BBOX_XMAX].float_list.value == [0.5]


def test_bad_inputs_have_defined_outcomes_and_everything_written_decodes(tmp_path, read_all):
    images = tmp_path / 'images'
    images.mkdir()
    (images / 'garbage.jpg').write_bytes(b'this is not a jpeg')
    examples = [
        spec(save(images / 'rgb.jpg'), [star((1.0, 1.0, 9.0, 9.0))]),
        spec(save(images / 'gray.jpg', mode='L', color=90), [star((1.0, 1.0, 9.0, 9.0))]),
        spec(save(images / 'png.jpg', fmt='PNG', color=(0, 0, 255)), [star((1.0, 1.0, 9.0, 9.0))]),
        spec(save(images / 'cmyk.jpg', mode='CMYK', color=(0, 255, 255, 0)),
             [star((1.0, 1.0, 9.0, 9.0))]),
        spec(save(images / 'empty.jpg')),
        spec(str(images / 'missing.jpg'), [star((1.0, 1.0, 9.0, 9.0))]),
        spec(str(images / 'garbage.jpg'), [star((1.0, 1.0, 9.0, 9.0))]),
    ]
    reader_skips = [{'item': 'x.xml', 'reason': 'missing annotation file'}]
    out = tmp_path / 'out'
    summary = converter.convert(specs.ReadResult(examples, reader_skips, 2), LABELS,
                                str(out), 'toy_train', num_shards=2, seed=0)
    assert summary['num_images'] == 5 and summary['num_objects'] == 4
    assert summary['objects_per_class'] == {'circle': 0, 'star': 4}
    assert summary['images_without_objects'] == 1
    assert summary['unknown_class_objects_skipped'] == 2
    assert [c['item'] for c in summary['converted']] == ['cmyk.jpg']
    skipped = {s['item']: s['reason'] for s in summary['skipped']}
    assert skipped['x.xml'] == 'missing annotation file'
    assert skipped['missing.jpg'].startswith('cannot read image')
    assert skipped['garbage.jpg'] == ('%s: not an image: no known image format in its first bytes'
                                      % (images / 'garbage.jpg'))
    assert sum(s['num_images'] for s in summary['shards']) == 5
    assert json.loads((out / 'toy_train_summary.json').read_text()) == summary
    info = dataset_factory.get_dataset('toy', 'train', str(out))
    assert info.num_samples == 5 and info.num_classes == 3
    examples = {e['filename'].decode(): e for e in read_all(info)}
    assert sorted(examples) == ['cmyk.jpg', 'empty.jpg', 'gray.jpg', 'png.jpg', 'rgb.jpg']
    assert examples['gray.jpg']['image'].shape == (30, 40, 3)
    assert np.all(np.abs(examples['gray.jpg']['image'].astype(int) - 90) <= 2)
    assert tuple(examples['png.jpg']['image'][0, 0]) == (0, 0, 255)
    red = examples['cmyk.jpg']['image'][15, 20]
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
    assert examples['empty.jpg']['boxes'].shape == (0, 4)


def test_shards_are_deterministic_whatever_the_number_of_workers(shapes_voc, tmp_path):
    from datasets import pascalvoc
    ids = {'circle': 1, 'square': 2, 'triangle': 3, 'star': 4, 'cross': 5}
    result = pascalvoc.read_split(str(shapes_voc), 'trainval', ids)
    labels = {0: 'background', **{i: n for n, i in ids.items()}}
    for name, workers, seed in (('a', 1, 5), ('b', 2, 5), ('c', 1, 6)):
        converter.convert(result, labels, str(tmp_path / name), 's_t', num_shards=3,
                          num_workers=workers, seed=seed)
    for k in range(3):
        shard = rs.shard_name('s_t', k, 3)
        a, b, c = ((tmp_path / n / shard).read_bytes() for n in 'abc')
        assert a == b and a != c


def test_stale_shards_replaced_and_no_temporary_files_left(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / rs.shard_name('toy_train', 3, 9)).write_bytes(b'old')
    examples = [spec(save(tmp_path / 'a.jpg'))]
    converter.convert(specs.ReadResult(examples, [], 0), LABELS, str(out), 'toy_train')
    assert sorted(p.name for p in out.iterdir()) == [
        'labels.txt', 'toy_train_00000-of-00001.tfrecord', 'toy_train_summary.json']


def test_interrupted_run_leaves_no_shards(tmp_path, monkeypatch):
    examples = [spec(save(tmp_path / ('%d.jpg' % i))) for i in range(4)]
    calls = []

    def failing(example):
        calls.append(example)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(example)
    real = converter.encode_example
    monkeypatch.setattr(converter, 'encode_example', failing)
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        converter.convert(specs.ReadResult(examples, [], 0), LABELS, str(out), 'toy_train',
                          num_shards=4)
    assert sorted(p.name for p in out.iterdir()) == ['labels.txt']


def test_labels_of_another_conversion_are_not_overwritten(tmp_path):
    (tmp_path / 'labels.txt').write_text('0:background\n1:dog\n')
    with pytest.raises(specs.DatasetError, match='exists with other classes'):
        converter.convert(specs.ReadResult([], [], 0), LABELS, str(tmp_path), 'toy_train')
