"""Pascal VOC layout reader: ImageSets/Main/<split>.txt, Annotations/*.xml, JPEGImages/*.jpg.

Works for VOC2007, VOC2012 and the synthetic shapes set. Imports without TensorFlow.
"""
import os

from datasets import specs, voc_xml

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')


def voc_labels():
    """The 20 VOC classes as a labels dict (0 = background)."""
    return {0: 'background', **dict(enumerate(VOC_CLASSES, 1))}


def read_split(dataset_dir, split_name, ids_by_name, skip_unknown_classes=False):
    """Reads the annotations of one split.

    VOC boxes are 1-based inclusive pixels, so xmin..xmax becomes the
    continuous interval [xmin - 1, xmax].

    Args:
      dataset_dir: folder with Annotations/, JPEGImages/, ImageSets/Main/.
      split_name: e.g. 'trainval', 'test'.
      ids_by_name: class name -> id.
      skip_unknown_classes: drop objects of other classes instead of failing.

    Returns:
      specs.ReadResult; images with a missing or malformed XML, and annotations or
      images whose real path is outside `dataset_dir` (specs.outside_folder), are skipped.

    Raises:
      specs.DatasetError: no split file.
      specs.UnknownClassError: unknown class name (unless skipped).
    """
    split_file = os.path.join(dataset_dir, 'ImageSets', 'Main', split_name + '.txt')
    try:
        with open(split_file, encoding='utf-8') as f:
            ids = [line.split()[0] for line in f if line.strip()]
    except OSError as e:
        raise specs.DatasetError('%s: cannot read split file (%s)' % (split_file, e)) from e
    examples, skipped, unknown = [], [], 0
    for image_id in ids:
        xml_path = os.path.join(dataset_dir, 'Annotations', image_id + '.xml')
        filename = image_id + '.jpg'
        image_path = os.path.join(dataset_dir, 'JPEGImages', filename)
        outside = specs.outside_folder(dataset_dir, (xml_path, image_path))
        if outside:
            skipped.append(outside)
            continue
        if not os.path.exists(xml_path):
            skipped.append({'item': xml_path, 'reason': 'missing annotation file'})
            continue
        try:
            annotation = voc_xml.parse_annotation(xml_path)
        except voc_xml.AnnotationError as e:
            skipped.append({'item': xml_path, 'reason': str(e)})
            continue
        objects = []
        for index, obj in enumerate(annotation.objects):
            where = '%s: object %d' % (xml_path, index)
            label = specs.resolve_label(obj.name, ids_by_name, where, skip_unknown_classes)
            if label is None:
                unknown += 1
                continue
            box = (obj.xmin - 1.0, obj.ymin - 1.0, float(obj.xmax), float(obj.ymax))
            objects.append(specs.ObjectSpec(label, obj.name, box, int(bool(obj.difficult)),
                                                   int(bool(obj.truncated))))
        examples.append(specs.ExampleSpec(filename, image_path, annotation.width,
                                          annotation.height, objects, image_id))
    return specs.ReadResult(examples, skipped, unknown)
