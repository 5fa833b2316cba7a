import json

import pytest

from datasets import coco, specs


def write_json(path, data):
    path.write_text(json.dumps(data))
    return str(path)


INSTANCES = {
    'images': [{'id': 9, 'file_name': 'b.jpg', 'width': 40, 'height': 30},
               {'id': 2, 'file_name': 'a.jpg', 'width': 20, 'height': 10}],
    'categories': [{'id': 7, 'name': 'circle'}, {'id': 3, 'name': 'square'},
                   {'id': 18, 'name': 'star'}],
    'annotations': [
        {'id': 1, 'image_id': 9, 'category_id': 7, 'bbox': [1.5, 2, 10, 20], 'iscrowd': 0},
        {'id': 2, 'image_id': 9, 'category_id': 18, 'bbox': [0, 0, 40, 30], 'iscrowd': 1},
        {'id': 3, 'image_id': 2, 'category_id': 3, 'bbox': [4, 5, 6, 5]},
    ],
}


def test_categories_become_contiguous_in_id_order_and_boxes_xyxy(tmp_path):
    result, labels = coco.read_instances(write_json(tmp_path / 'i.json', INSTANCES), 'imgs')
    assert labels == {0: 'background', 1: 'square', 2: 'circle', 3: 'star'}
    a, b = result.examples
    assert (a.filename, a.image_path, a.width, a.height) == ('a.jpg', 'imgs/a.jpg', 20, 10)
    assert a.objects == [specs.ObjectSpec(1, 'square', (4.0, 5.0, 10.0, 10.0), 0, 0)]
    assert b.objects == [specs.ObjectSpec(2, 'circle', (1.5, 2.0, 11.5, 22.0), 0, 0),
                         specs.ObjectSpec(3, 'star', (0.0, 0.0, 40.0, 30.0), 1, 0)]
    assert (a.source_id, b.source_id) == ('2', '9')
    assert result.category_ids == {1: 3, 2: 7, 3: 18}


def test_custom_class_list_maps_category_names(tmp_path):
    path = write_json(tmp_path / 'i.json', INSTANCES)
    with pytest.raises(specs.UnknownClassError, match="annotation 2: unknown class 'star'"):
        coco.read_instances(path, 'imgs', {'circle': 1, 'square': 2})
    result, labels = coco.read_instances(path, 'imgs', {'circle': 1, 'square': 2},
                                         skip_unknown_classes=True)
    assert labels == {0: 'background', 1: 'circle', 2: 'square'}
    assert result.unknown_class_objects == 1
    assert result.category_ids == {1: 7, 2: 3}
    assert [o.label for o in result.examples[1].objects] == [1]


def test_bad_annotations_are_skipped_with_reasons(tmp_path):
    data = dict(INSTANCES, annotations=[
        {'id': 5, 'image_id': 99, 'category_id': 7, 'bbox': [0, 0, 1, 1]},
        {'id': 6, 'image_id': 2, 'category_id': 7, 'bbox': [0, 0, 1]}])
    result, _ = coco.read_instances(write_json(tmp_path / 'i.json', data), 'imgs')
    reasons = [item['reason'] for item in result.skipped]
    assert reasons == ['unknown image_id 99', 'bbox must be 4 finite numbers, got [0, 0, 1]']
    assert all(not e.objects for e in result.examples)


def test_unknown_category_id_is_an_error(tmp_path):
    data = dict(INSTANCES, annotations=[{'id': 5, 'image_id': 2, 'category_id': 4,
                                         'bbox': [0, 0, 1, 1]}])
    with pytest.raises(specs.UnknownClassError, match='category_id 4'):
        coco.read_instances(write_json(tmp_path / 'i.json', data), 'imgs')


@pytest.mark.parametrize('text', ['{not json', '{"images": []}', '[]'])
def test_not_an_instances_file_is_a_dataset_error(tmp_path, text):
    path = tmp_path / 'i.json'
    path.write_text(text)
    with pytest.raises(specs.DatasetError, match='not a COCO instances file'):
        coco.read_instances(str(path), 'imgs')


def test_images_outside_the_images_folder_are_skipped_with_reasons(tmp_path):
    tmp_path = tmp_path.resolve()
    images = tmp_path / 'imgs'
    images.mkdir()
    (tmp_path / 'secret.jpg').write_bytes(b'private')
    (images / 'link.jpg').symlink_to(tmp_path / 'secret.jpg')
    data = dict(INSTANCES, annotations=[], images=[
        {'id': 1, 'file_name': 'ok.jpg'}, {'id': 2, 'file_name': '../secret.jpg'},
        {'id': 3, 'file_name': str(tmp_path / 'secret.jpg')}, {'id': 4, 'file_name': 'link.jpg'},
        {'id': 5, 'file_name': 'sub/../ok.jpg'}])
    result, _ = coco.read_instances(write_json(tmp_path / 'i.json', data), str(images))
    assert [e.image_path for e in result.examples] == [str(images / 'ok.jpg'),
                                                       str(images / 'sub/../ok.jpg')]
    assert [(item['item'], item['reason'].split(',')[0]) for item in result.skipped] == [
        (str(images / '../secret.jpg'), 'resolves to %s' % (tmp_path / 'secret.jpg')),
        (str(tmp_path / 'secret.jpg'), 'resolves to %s' % (tmp_path / 'secret.jpg')),
        (str(images / 'link.jpg'), 'symbolic link to %s' % (tmp_path / 'secret.jpg'))]
    assert all('outside the data set folder %s' % images in item['reason']
               for item in result.skipped)
