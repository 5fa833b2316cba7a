"""Pascal VOC-style folders: Annotations/*.xml + JPEGImages/, or images with their XML side by side.

Works for VOC2007, VOC2012, the synthetic shapes set and folders labelled with LabelImg and
similar tools. The images of a split are listed in ImageSets/Main/<split>.txt (VOC), or are
every annotated image (split `all`); `make_splits` writes split files for a folder without
them. Imports without TensorFlow.
"""
import collections
import os

from datasets import specs, splits, voc_xml

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
# Extensions an image beside its annotation may have (any case); formats the converter does
# not store (GIF, BMP, TIFF, WebP) are then skipped with their reason rather than "missing".
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp', '.tif', '.tiff')

Layout = collections.namedtuple('Layout', ['kind', 'annotations_dir', 'images_dir'])
Layout.__doc__ = """Where a folder keeps its files: kind 'voc' (Annotations/, JPEGImages/) or
'flat' (the XML files and the images in the folder itself)."""


def voc_labels():
    """The 20 VOC classes as a labels dict (0 = background)."""
    return {0: 'background', **dict(enumerate(VOC_CLASSES, 1))}


def find_layout(dataset_dir):
    """The layout of `dataset_dir`: VOC when it has Annotations/, flat when it holds .xml files.

    Raises:
      specs.DatasetError: neither, naming the folder and both layouts.
    """
    annotations = os.path.join(dataset_dir, 'Annotations')
    if os.path.isdir(annotations):
        return Layout('voc', annotations, os.path.join(dataset_dir, 'JPEGImages'))
    if _xml_files(dataset_dir):
        return Layout('flat', dataset_dir, dataset_dir)
    raise specs.DatasetError(
        '%s has no Annotations/ folder and no .xml files: give a folder in VOC layout '
        '(Annotations/*.xml, JPEGImages/) or one holding the images with their XML files '
        'side by side' % dataset_dir)


def annotation_ids(layout):
    """Sorted ids (file name stems) of the annotation files of a layout."""
    return sorted(_xml_files(layout.annotations_dir))


def make_splits(dataset_dir, parts, seed):
    """Draws split files from every annotated image and writes the missing ones.

    Args:
      dataset_dir: a VOC-style folder (either layout).
      parts: [(name, fraction)] (splits.parse_spec).
      seed: shuffle seed.

    Returns:
      {name: (path, number of ids, 'written' | 'unchanged')}.

    Raises:
      specs.DatasetError: no annotations, a part without images, a differing split file.
    """
    drawn = splits.draw(annotation_ids(find_layout(dataset_dir)), parts, seed)
    states = splits.write(dataset_dir, drawn)
    return {name: (path, len(drawn[name]), state) for name, (path, state) in states.items()}


def read_split(dataset_dir, split_name, ids_by_name, skip_unknown_classes=False):
    """Reads the annotations of one split.

    VOC boxes are 1-based inclusive pixels, so xmin..xmax becomes the
    continuous interval [xmin - 1, xmax].

    Args:
      dataset_dir: folder in VOC layout (Annotations/, JPEGImages/, ImageSets/Main/) or
        holding images and XML files side by side (find_layout).
      split_name: e.g. 'trainval', 'test' (ImageSets/Main/<split_name>.txt), or 'all'
        for every annotated image.
      ids_by_name: class name -> id.
      skip_unknown_classes: drop objects of other classes instead of failing.

    Returns:
      specs.ReadResult; images with a missing or malformed XML, and annotations or
      images whose real path is outside `dataset_dir` (specs.outside_folder), are skipped.
      An image is JPEGImages/<id>.jpg (VOC), else the XML's <filename>, else <id> with an
      image extension.

    Raises:
      specs.DatasetError: no annotations in either layout, or no split file.
      specs.UnknownClassError: unknown class name (unless skipped).
    """
    layout = find_layout(dataset_dir)
    xml_names = _xml_files(layout.annotations_dir)
    if split_name == splits.ALL:
        ids = sorted(xml_names)
    else:
        ids = _read_split_file(dataset_dir, split_name)
    images = _images_by_stem(layout.images_dir)
    examples, skipped, unknown = [], [], 0
    for image_id in ids:
        xml_path = os.path.join(layout.annotations_dir, xml_names.get(image_id, image_id + '.xml'))
        outside = specs.outside_folder(dataset_dir, (xml_path,))
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
        filename = _image_name(layout, image_id, annotation.filename, images)
        image_path = os.path.join(layout.images_dir, filename)
        outside = specs.outside_folder(dataset_dir, (image_path,))
        if outside:
            skipped.append(outside)
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


def _read_split_file(dataset_dir, split_name):
    """The ids listed in ImageSets/Main/<split_name>.txt (first word of each line)."""
    split_file = splits.split_path(dataset_dir, split_name)
    try:
        with open(split_file, encoding='utf-8') as f:
            return [line.split()[0] for line in f if line.strip()]
    except FileNotFoundError:
        raise specs.DatasetError(
            '%s: no split file %r. Convert every annotated image with --split_name=all, or '
            'write split files first with --make_splits=trainval:0.9,test:0.1 (and --seed)'
            % (dataset_dir, os.path.relpath(split_file, dataset_dir))) from None
    except OSError as e:
        raise specs.DatasetError('%s: cannot read split file (%s)' % (split_file, e)) from e


def _xml_files(folder):
    """{stem: file name} of the visible .xml files (any case) in `folder`."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    return {os.path.splitext(name)[0]: name for name in names
            if name.lower().endswith('.xml') and not name.startswith('.')}


def _images_by_stem(folder):
    """{stem: sorted file names} of the files with an image extension in `folder`."""
    found = collections.defaultdict(list)
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    for name in sorted(names):
        stem, extension = os.path.splitext(name)
        if extension.lower() in IMAGE_EXTENSIONS and not name.startswith('.'):
            found[stem].append(name)
    return found


def _image_name(layout, image_id, xml_filename, images):
    """The image file of an annotation (see read_split); `<id>.jpg` when none exists, so
    that the converter reports it missing."""
    voc_name = image_id + '.jpg'
    candidates = [voc_name] if layout.kind == 'voc' else []
    if xml_filename:
        candidates.append(os.path.basename(xml_filename))
    for name in candidates:
        if os.path.lexists(os.path.join(layout.images_dir, name)):
            return name
    found = images.get(image_id)
    return found[0] if found else voc_name
