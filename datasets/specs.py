"""What a reader hands to the converter: images with their objects, before any image is read.

Boxes here are in continuous pixel coordinates (image edges at 0 and W / H);
the converter normalises them with the real image size. Imports without TensorFlow.
"""
import collections

ObjectSpec = collections.namedtuple(
    'ObjectSpec', ['label', 'label_text', 'box', 'difficult', 'truncated'])
ObjectSpec.__doc__ = """One object: class id, class name, box (xmin, ymin, xmax, ymax) px, flags."""

ExampleSpec = collections.namedtuple(
    'ExampleSpec', ['filename', 'image_path', 'width', 'height', 'objects'])
ExampleSpec.__doc__ = """One image: stored name, path, annotated size (None if unknown), objects."""

ReadResult = collections.namedtuple('ReadResult', ['examples', 'skipped', 'unknown_class_objects'])
ReadResult.__doc__ = """Reader output: ExampleSpecs, skipped [{'item', 'reason'}], dropped count."""


class DatasetError(ValueError):
    """Input that stops the whole conversion (missing split file, bad JSON); names the file."""


class UnknownClassError(DatasetError):
    """An object whose class is not in the class list."""


def resolve_label(name, ids_by_name, where, skip_unknown_classes):
    """Class id of `name`, None to drop the object, or UnknownClassError naming `where`."""
    label = ids_by_name.get(name)
    if label is None and not skip_unknown_classes:
        raise UnknownClassError(
            '%s: unknown class %r (not in the class list; use --labels_file or '
            '--skip_unknown_classes)' % (where, name))
    return label
