"""Pascal VOC annotation XML: write and parse.

Boxes are in VOC's 1-based, inclusive pixel coordinates: a box covering the
whole W x H image is xmin=1, ymin=1, xmax=W, ymax=H.
"""
import collections
import math
import xml.etree.ElementTree as ET

from common.files import atomic_write

VocObject = collections.namedtuple(
    'VocObject', ['name', 'xmin', 'ymin', 'xmax', 'ymax', 'truncated', 'difficult', 'pose'])
VocAnnotation = collections.namedtuple(
    'VocAnnotation', ['filename', 'width', 'height', 'depth', 'objects'])


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file and field."""


def write_annotation(path, annotation, folder='VOC', database='synthetic'):
    """Writes a VocAnnotation as a VOC XML file (atomically)."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = folder
    ET.SubElement(root, 'filename').text = annotation.filename
    ET.SubElement(ET.SubElement(root, 'source'), 'database').text = database
    size = ET.SubElement(root, 'size')
    for key in ('width', 'height', 'depth'):
        ET.SubElement(size, key).text = str(getattr(annotation, key))
    ET.SubElement(root, 'segmented').text = '0'
    for obj in annotation.objects:
        node = ET.SubElement(root, 'object')
        ET.SubElement(node, 'name').text = obj.name
        ET.SubElement(node, 'pose').text = obj.pose
        ET.SubElement(node, 'truncated').text = str(int(obj.truncated))
        ET.SubElement(node, 'difficult').text = str(int(obj.difficult))
        box = ET.SubElement(node, 'bndbox')
        for key in ('xmin', 'ymin', 'xmax', 'ymax'):
            ET.SubElement(box, key).text = _format_number(getattr(obj, key))
    ET.indent(root)
    atomic_write(path, ET.tostring(root, encoding='unicode') + '\n')


def parse_annotation(path):
    """Parses a VOC XML file.

    Missing `truncated`/`difficult`/`pose` default to 0/0/'Unspecified' (as in
    parts of VOC2012). Coordinates may be written as floats.

    Returns:
      VocAnnotation; width/height/depth are None when <size> is absent.

    Raises:
      AnnotationError: unreadable or malformed XML, missing name or box field.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise AnnotationError('%s: malformed XML (%s)' % (path, e)) from e
    if root.tag != 'annotation':
        raise AnnotationError('%s: root element is <%s>, expected <annotation>' % (path, root.tag))
    size = root.find('size')
    dims = [None, None, None]
    if size is not None:
        dims = [_number(path, size, key, int, default=None) for key in ('width', 'height', 'depth')]
    objects = []
    for index, node in enumerate(root.findall('object')):
        where = '%s: object %d' % (path, index)
        name = (node.findtext('name') or '').strip()
        if not name:
            raise AnnotationError('%s has no <name>' % where)
        box = node.find('bndbox')
        if box is None:
            raise AnnotationError('%s (%s) has no <bndbox>' % (where, name))
        coords = [_number(where, box, key, float) for key in ('xmin', 'ymin', 'xmax', 'ymax')]
        objects.append(VocObject(
            name, *coords,
            truncated=_number(where, node, 'truncated', int, default=0),
            difficult=_number(where, node, 'difficult', int, default=0),
            pose=(node.findtext('pose') or 'Unspecified').strip()))
    return VocAnnotation((root.findtext('filename') or '').strip(), *dims, objects=objects)


def _number(where, node, key, kind, default=Ellipsis):
    text = node.findtext(key)
    if text is None or not text.strip():
        if default is Ellipsis:
            raise AnnotationError('%s: missing <%s>' % (where, key))
        return default
    try:
        value = float(text)
    except ValueError as e:
        raise AnnotationError('%s: <%s> is not a number: %r' % (where, key, text)) from e
    if not math.isfinite(value):
        raise AnnotationError('%s: <%s> is not finite: %r' % (where, key, text))
    return kind(value)


def _format_number(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))
