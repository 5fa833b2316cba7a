"""The interface between the data set readers (pascalvoc, coco) and the converter.

What a reader hands over (ExampleSpec, ObjectSpec, ReadResult: images with their
objects, before any image is read), the errors that stop a conversion (DatasetError,
UnknownClassError) and the checks every reader applies to one item (resolve_label,
outside_folder). Boxes here are in continuous pixel coordinates (image edges at 0 and
W / H); the converter normalises them with the real image size. Imports without TensorFlow.
"""
import collections
import os

ObjectSpec = collections.namedtuple(
    'ObjectSpec', ['label', 'label_text', 'box', 'difficult', 'truncated'])
ObjectSpec.__doc__ = """One object: class id, class name, box (xmin, ymin, xmax, ymax) px, flags."""

ExampleSpec = collections.namedtuple(
    'ExampleSpec', ['filename', 'image_path', 'width', 'height', 'objects', 'source_id'],
    defaults=(None,))
ExampleSpec.__doc__ = """One image: stored name, path, annotated size (None if unknown), objects,
id in the source data set (str: COCO image id, VOC image name; None: the file name stem)."""

ReadResult = collections.namedtuple(
    'ReadResult', ['examples', 'skipped', 'unknown_class_objects', 'category_ids'],
    defaults=(None,))
ReadResult.__doc__ = """Reader output: ExampleSpecs, skipped [{'item', 'reason'}], dropped count,
and for COCO the original category id of each class id ({id: COCO category id}, else None)."""


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


def outside_folder(folder, paths):
    """The skipped item of the first of `paths` that leads out of `folder`, or None.

    A data set may only bring files from inside its own folder: a symbolic link or a
    `..` in a name that leads elsewhere (an archive linking JPEGImages/1.jpg to a private
    file) is refused, so nothing from outside is copied into the records. Links that
    stay inside, and a data set folder that is itself reached through a link, are fine.

    Args:
      folder: the data set folder given by the user (--dataset_dir, --images_dir).
      paths: files of one item the reader is about to hand over (annotation, image).

    Returns:
      None, or {'item': path, 'reason': ...} saying where the file really is.
    """
    real_folder = os.path.realpath(folder)
    for path in paths:
        real_path = os.path.realpath(path)
        if os.path.commonpath([real_path, real_folder]) != real_folder:
            how = 'symbolic link to' if os.path.islink(path) else 'resolves to'
            return {'item': path,
                    'reason': '%s %s, outside the data set folder %s: not read (copy the file '
                              'into the folder to convert it)' % (how, real_path, real_folder)}
    return None
