"""COCO instances JSON reader (e.g. instances_val2017.json). Imports without TensorFlow."""
import json
import math
import os

from datasets import specs

# The 80 COCO object categories with their ids (1..90; 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83
# are unused), as in the instances files of COCO 2014 and 2017.
COCO_CATEGORIES = (
    (1, 'person'), (2, 'bicycle'), (3, 'car'), (4, 'motorcycle'), (5, 'airplane'), (6, 'bus'),
    (7, 'train'), (8, 'truck'), (9, 'boat'), (10, 'traffic light'), (11, 'fire hydrant'),
    (13, 'stop sign'), (14, 'parking meter'), (15, 'bench'), (16, 'bird'), (17, 'cat'),
    (18, 'dog'), (19, 'horse'), (20, 'sheep'), (21, 'cow'), (22, 'elephant'), (23, 'bear'),
    (24, 'zebra'), (25, 'giraffe'), (27, 'backpack'), (28, 'umbrella'), (31, 'handbag'),
    (32, 'tie'), (33, 'suitcase'), (34, 'frisbee'), (35, 'skis'), (36, 'snowboard'),
    (37, 'sports ball'), (38, 'kite'), (39, 'baseball bat'), (40, 'baseball glove'),
    (41, 'skateboard'), (42, 'surfboard'), (43, 'tennis racket'), (44, 'bottle'),
    (46, 'wine glass'), (47, 'cup'), (48, 'fork'), (49, 'knife'), (50, 'spoon'), (51, 'bowl'),
    (52, 'banana'), (53, 'apple'), (54, 'sandwich'), (55, 'orange'), (56, 'broccoli'),
    (57, 'carrot'), (58, 'hot dog'), (59, 'pizza'), (60, 'donut'), (61, 'cake'), (62, 'chair'),
    (63, 'couch'), (64, 'potted plant'), (65, 'bed'), (67, 'dining table'), (70, 'toilet'),
    (72, 'tv'), (73, 'laptop'), (74, 'mouse'), (75, 'remote'), (76, 'keyboard'),
    (77, 'cell phone'), (78, 'microwave'), (79, 'oven'), (80, 'toaster'), (81, 'sink'),
    (82, 'refrigerator'), (84, 'book'), (85, 'clock'), (86, 'vase'), (87, 'scissors'),
    (88, 'teddy bear'), (89, 'hair drier'), (90, 'toothbrush'),
)


def coco_labels():
    """The 80 COCO classes as contiguous ids 1..80 in category-id order (read_instances' ids,
    the SSD authors' Caffe COCO models)."""
    return {0: 'background', **{i: name for i, (_, name) in enumerate(COCO_CATEGORIES, 1)}}


def coco_category_labels():
    """The 80 COCO classes under their category ids 1..90 with the gaps (torchvision's 91
    outputs)."""
    return {0: 'background', **dict(COCO_CATEGORIES)}


def read_instances(annotations_file, images_dir, ids_by_name=None, skip_unknown_classes=False):
    """Reads a COCO instances file.

    Categories become contiguous ids from 1 in category-id order (unless
    `ids_by_name` maps the category names); `iscrowd` is kept as difficult;
    bbox [x, y, w, h] (continuous pixels) becomes (x, y, x + w, y + h). The COCO image
    id of each image (ExampleSpec.source_id) and the COCO category id of each class id
    (ReadResult.category_ids) are kept, so evaluation can write COCO results back.

    Args:
      annotations_file: instances JSON.
      images_dir: folder of the images' `file_name`s.
      ids_by_name: optional class name -> id (a custom class list).
      skip_unknown_classes: drop objects of other classes instead of failing.

    Returns:
      (specs.ReadResult with images in image-id order, labels dict id -> name); images
      whose real path is outside `images_dir` (specs.outside_folder) are skipped.

    Raises:
      specs.DatasetError: unreadable JSON or missing keys.
      specs.UnknownClassError: unknown category (unless skipped).
    """
    try:
        with open(annotations_file, encoding='utf-8') as f:
            data = json.load(f)
        categories = {int(c['id']): str(c['name']) for c in data['categories']}
        images = sorted(data['images'], key=lambda image: int(image['id']))
        annotations = data.get('annotations', [])
        image_keys = [(int(i['id']), str(i['file_name']), i.get('width'), i.get('height'))
                      for i in images]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise specs.DatasetError(
            '%s: not a COCO instances file (%s: %s)'
            % (annotations_file, type(e).__name__, e)) from e
    if ids_by_name is None:
        labels = {0: 'background'}
        labels.update((i, categories[cid]) for i, cid in enumerate(sorted(categories), 1))
        ids_by_name = {name: i for i, name in labels.items() if i}
    else:
        labels = {0: 'background', **{i: n for n, i in ids_by_name.items()}}
    objects_by_image = {key[0]: [] for key in image_keys}
    skipped, unknown = [], 0
    for index, ann in enumerate(annotations):
        where = '%s: annotation %s' % (annotations_file, ann.get('id', '#%d' % index))
        box = ann.get('bbox')
        if ann.get('image_id') not in objects_by_image:
            skipped.append({'item': where, 'reason': 'unknown image_id %r' % ann.get('image_id')})
            continue
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
            skipped.append({'item': where, 'reason': 'bbox must be 4 finite numbers, got %r' % box})
            continue
        category = ann.get('category_id')
        name = categories.get(category, 'category_id %r' % category)
        label = specs.resolve_label(name, ids_by_name, where, skip_unknown_classes)
        if label is None:
            unknown += 1
            continue
        x, y, w, h = (float(v) for v in box)
        objects_by_image[ann['image_id']].append(specs.ObjectSpec(
            label, name, (x, y, x + w, y + h), int(bool(ann.get('iscrowd', 0))), 0))
    examples = []
    for image_id, name, width, height in image_keys:
        path = os.path.join(images_dir, name)
        outside = specs.outside_folder(images_dir, [path])
        if outside:
            skipped.append(outside)
            continue
        examples.append(specs.ExampleSpec(os.path.basename(name), path, width, height,
                                          objects_by_image[image_id], str(image_id)))
    category_of_name = {name: cid for cid, name in sorted(categories.items(), reverse=True)}
    category_ids = {i: category_of_name[name] for i, name in labels.items()
                    if i and name in category_of_name}
    return specs.ReadResult(examples, skipped, unknown, category_ids), labels
