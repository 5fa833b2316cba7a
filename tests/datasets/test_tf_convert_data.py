import json
import shutil

import numpy as np
import pytest

import tf_convert_data
from datasets import dataset_factory, voc_xml

# Non-contiguous COCO category ids; contiguous ids follow category-id order.
CATEGORY_IDS = {'circle': 11, 'square': 4, 'triangle': 30, 'star': 7, 'cross': 25}
CONTIGUOUS = {'square': 1, 'star': 2, 'circle': 3, 'cross': 4, 'triangle': 5}


def coco_from_voc(voc_dir, image_ids):
    """A COCO instances dict of some synthetic images (the first object marked iscrowd)."""
    images, annotations = [], []
    for index, image_id in enumerate(image_ids):
        annotation = voc_xml.parse_annotation(str(voc_dir / 'Annotations' / (image_id + '.xml')))
        images.append({'id': 100 - index, 'file_name': annotation.filename,
                       'width': annotation.width, 'height': annotation.height})
        for obj in annotation.objects:
            annotations.append({
                'id': len(annotations) + 1, 'image_id': 100 - index,
                'category_id': CATEGORY_IDS[obj.name], 'iscrowd': int(not annotations),
                'bbox': [obj.xmin - 1, obj.ymin - 1, obj.xmax - obj.xmin + 1,
                         obj.ymax - obj.ymin + 1]})
    categories = [{'id': i, 'name': n} for n, i in CATEGORY_IDS.items()]
    return {'images': images, 'annotations': annotations, 'categories': categories}


def test_coco_conversion_round_trip(shapes_voc, tmp_path, read_all):
    image_ids = ['test_%06d' % i for i in range(4)]
    data = coco_from_voc(shapes_voc, image_ids)
    (tmp_path / 'instances.json').write_text(json.dumps(data))
    assert tf_convert_data.main([
        '--dataset_name=coco', '--annotations_file=%s' % (tmp_path / 'instances.json'),
        '--images_dir=%s' % (shapes_voc / 'JPEGImages'), '--output_dir=%s' % (tmp_path / 'out'),
        '--output_name=coco_val']) == 0
    info = dataset_factory.get_dataset('coco', 'val', str(tmp_path / 'out'))
    assert info.labels == {0: 'background', **{i: n for n, i in CONTIGUOUS.items()}}
    assert info.num_samples == 4
    examples = {e['filename'].decode(): e for e in read_all(info)}
    for image_id in image_ids:
        annotation = voc_xml.parse_annotation(str(shapes_voc / 'Annotations' / (image_id + '.xml')))
        example = examples[image_id + '.jpg']
        h, w = annotation.height, annotation.width
        expected = [[(o.ymin - 1) / h, (o.xmin - 1) / w, o.ymax / h, o.xmax / w]
                    for o in annotation.objects]
        np.testing.assert_allclose(example['boxes'], expected, atol=1e-6)
        assert list(example['labels']) == [CONTIGUOUS[o.name] for o in annotation.objects]
        crowd = [int(image_id == image_ids[0] and k == 0) for k in range(len(annotation.objects))]
        assert list(example['difficult']) == crowd
        assert list(example['truncated']) == [0] * len(annotation.objects)
    # The COCO image ids and category ids are kept for COCO evaluation and results files.
    assert sorted(e['source_id'] for e in examples.values()) == [b'100', b'97', b'98', b'99']
    assert info.category_ids == {i: CATEGORY_IDS[n] for n, i in CONTIGUOUS.items()}


def test_unknown_class_fails_cleanly_without_output(shapes_voc, tmp_path, caplog):
    voc = tmp_path / 'voc'
    shutil.copytree(shapes_voc, voc)
    xml = voc / 'Annotations' / 'test_000003.xml'
    text = xml.read_text()
    xml.write_text(text.replace('<name>', '<name>hexagon', 1))
    args = ['--dataset_name=pascalvoc', '--dataset_dir=%s' % voc, '--split_name=test',
            '--labels_file=%s' % (voc / 'labels.txt'), '--output_dir=%s' % (tmp_path / 'out')]
    assert tf_convert_data.main(args) == 1
    assert 'test_000003.xml: object 0: unknown class' in caplog.text
    assert not (tmp_path / 'out').exists()
    assert tf_convert_data.main(args + ['--skip_unknown_classes']) == 0
    summary = json.loads((tmp_path / 'out' / 'pascalvoc_test_summary.json').read_text())
    assert summary['unknown_class_objects_skipped'] == 1 and summary['num_images'] == 8


def test_voc_classes_are_the_default_class_list(shapes_voc, tmp_path, caplog):
    assert tf_convert_data.main(['--dataset_name=pascalvoc', '--dataset_dir=%s' % shapes_voc,
                                 '--split_name=test', '--output_dir=%s' % tmp_path]) == 1
    assert "unknown class" in caplog.text and "--labels_file" in caplog.text


def test_unwritable_output_fails_cleanly(shapes_voc, tmp_path, caplog):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    assert tf_convert_data.main([
        '--dataset_name=pascalvoc', '--dataset_dir=%s' % shapes_voc, '--split_name=test',
        '--labels_file=%s' % (shapes_voc / 'labels.txt'),
        '--output_dir=%s' % (blocker / 'out')]) == 1
    assert 'conversion failed' in caplog.text


@pytest.mark.parametrize('flags, message', [
    (['--dataset_name=pascalvoc', '--dataset_dir=/nonexistent'], '--dataset_dir: not a folder'),
    (['--dataset_name=coco', '--images_dir=/tmp'], '--annotations_file: not a file'),
    (['--dataset_name=pascalvoc', '--dataset_dir=/tmp', '--num_workers=0'], '--num_workers must'),
    (['--dataset_name=pascalvoc', '--dataset_dir=/tmp', '--num_shards=0'], '--num_shards must'),
    (['--dataset_name=pascalvoc', '--dataset_dir=/tmp', '--output_name=a/b'], '--output_name'),
    (['--dataset_name=yolo'], 'invalid choice'),
])
def test_bad_flags_exit_with_a_message(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tf_convert_data.main(flags + ['--output_dir=%s' % tmp_path])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unreadable_and_outside_images_are_skipped_naming_the_file(shapes_voc, tmp_path, caplog):
    voc = tmp_path / 'voc'
    shutil.copytree(shapes_voc, voc)
    garbage = voc / 'JPEGImages' / 'test_000001.jpg'
    garbage.write_bytes(b'\x00not an image')
    linked = voc / 'JPEGImages' / 'test_000002.jpg'
    outside = tmp_path / 'elsewhere.jpg'
    shutil.move(str(linked), str(outside))
    linked.symlink_to(outside)
    assert tf_convert_data.main([
        '--dataset_name=pascalvoc', '--dataset_dir=%s' % voc, '--split_name=test',
        '--labels_file=%s' % (voc / 'labels.txt'), '--output_dir=%s' % (tmp_path / 'out')]) == 0
    summary = json.loads((tmp_path / 'out' / 'pascalvoc_test_summary.json').read_text())
    assert summary['num_images'] == 6
    reasons = {item['item']: item['reason'] for item in summary['skipped']}
    assert reasons == {
        'test_000001.jpg': '%s: not an image: no known image format in its first bytes' % garbage,
        str(linked): 'symbolic link to %s, outside the data set folder %s: not read (copy the '
                     'file into the folder to convert it)' % (outside.resolve(), voc.resolve())}
    assert 'BytesIO' not in caplog.text
    assert 'skipped %s: %s' % (linked, reasons[str(linked)]) in caplog.text


def _flat_copy(shapes_voc, folder, count):
    """The first `count` trainval images of the shapes set with their XML side by side."""
    folder.mkdir()
    for i in range(count):
        image_id = 'trainval_%06d' % i
        shutil.copy(shapes_voc / 'JPEGImages' / (image_id + '.jpg'), folder)
        shutil.copy(shapes_voc / 'Annotations' / (image_id + '.xml'), folder)
    return folder


def test_a_flat_folder_converts_as_split_all(shapes_voc, tmp_path, read_all, capsys):
    flat = _flat_copy(shapes_voc, tmp_path / 'photos', 5)
    assert tf_convert_data.main([
        '--dataset_name=pascalvoc', '--dataset_dir=%s' % flat, '--split_name=all',
        '--labels_file=%s' % (shapes_voc / 'labels.txt'), '--output_dir=%s' % (tmp_path / 'out'),
        '--output_name=mydata_all']) == 0
    info = dataset_factory.get_dataset('mydata', 'all', str(tmp_path / 'out'))
    assert sorted(e['filename'].decode() for e in read_all(info)) == [
        'trainval_%06d.jpg' % i for i in range(5)]
    out = capsys.readouterr().out
    assert 'wrote 5 images (' in out and ' in 1 shard to ' in out
    assert ('train or evaluate on them with --dataset_dir=%s --dataset_name=mydata '
            '--dataset_split_name=all' % (tmp_path / 'out')) in out


def test_make_splits_writes_the_split_files_then_converts_one(shapes_voc, tmp_path, read_all,
                                                              caplog):
    flat = _flat_copy(shapes_voc, tmp_path / 'photos', 10)
    common = ['--dataset_name=pascalvoc', '--dataset_dir=%s' % flat,
              '--labels_file=%s' % (shapes_voc / 'labels.txt'),
              '--output_dir=%s' % (tmp_path / 'out'), '--make_splits=trainval:0.8,test:0.2',
              '--seed=7']
    assert tf_convert_data.main(common + ['--output_name=mydata_trainval']) == 0
    main = flat / 'ImageSets' / 'Main'
    assert 'split test: %s, 2 images (written, seed 7)' % (main / 'test.txt') in caplog.text
    assert tf_convert_data.main(common + ['--split_name=test', '--output_name=mydata_test']) == 0
    assert 'split test: %s, 2 images (already there with the same ids' % (
        main / 'test.txt') in caplog.text
    names = {split: sorted(e['filename'].decode() for e in read_all(
        dataset_factory.get_dataset('mydata', split, str(tmp_path / 'out'))))
        for split in ('trainval', 'test')}
    assert [len(names['trainval']), len(names['test'])] == [8, 2]
    assert names['test'] == sorted(n + '.jpg' for n in (main / 'test.txt').read_text().split())


def test_a_missing_split_file_fails_naming_the_options(shapes_voc, tmp_path, caplog):
    flat = _flat_copy(shapes_voc, tmp_path / 'photos', 2)
    assert tf_convert_data.main([
        '--dataset_name=pascalvoc', '--dataset_dir=%s' % flat,
        '--labels_file=%s' % (shapes_voc / 'labels.txt'),
        '--output_dir=%s' % (tmp_path / 'out')]) == 1
    assert "no split file 'ImageSets/Main/trainval.txt'" in caplog.text
    assert '--split_name=all' in caplog.text and '--make_splits=' in caplog.text
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('flags, message', [
    (['--make_splits=trainval:0.5'], '--make_splits: the fractions add up to 0.5, not 1'),
    (['--make_splits=train:0.9,test:0.1'], '--split_name=trainval is not one of the '
                                           '--make_splits splits (train, test)'),
])
def test_bad_make_splits_exit_with_a_message(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tf_convert_data.main(['--dataset_name=pascalvoc', '--dataset_dir=%s' % tmp_path,
                              '--output_dir=%s' % tmp_path] + flags)
    assert message in capsys.readouterr().err
