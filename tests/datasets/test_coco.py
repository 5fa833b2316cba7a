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


def test_custom_class_list_maps_category_names(tmp_path):
    path = write_json(tmp_path / 'i.json', INSTANCES)
    with pytest.raises(specs.UnknownClassError, match="annotation 2: unknown class 'star'"):
        coco.read_instances(path, 'imgs', {'circle': 1, 'square': 2})
    result, labels = coco.read_instances(path, 'imgs', {'circle': 1, 'square': 2},
                                         skip_unknown_classes=True)
    assert labels == {0: 'background', 1: 'circle', 2: 'square'}
    assert result.unknown_class_objects == 1
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
