"""COCO instances JSON reader (e.g. instances_val2017.json). Imports without TensorFlow."""
import json
import math
import os

from datasets import specs


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
