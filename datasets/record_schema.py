"""TFRecord feature keys of one annotated image, and the names of the converter's files.

The one definition of the record format the converter writes and dataset_factory reads,
compatible with the records of earlier TF-slim SSD code. Boxes are normalised to [0, 1];
labels are contiguous class ids with 0 = background. Keys of the decoded sample dicts
are in common/fields.py.

SOURCE_ID (the image's id in its source data set: the COCO image id, the VOC image name)
was added later; records without it still read (as an empty id). The original COCO
category id of each class is in the conversion summary (`category_ids`), beside the
records, not in them.
"""

ENCODED = 'image/encoded'
FORMAT = 'image/format'
FILENAME = 'image/filename'
SOURCE_ID = 'image/source_id'
HEIGHT = 'image/height'
WIDTH = 'image/width'
CHANNELS = 'image/channels'
SHAPE = 'image/shape'
BBOX_XMIN = 'image/object/bbox/xmin'
BBOX_YMIN = 'image/object/bbox/ymin'
BBOX_XMAX = 'image/object/bbox/xmax'
BBOX_YMAX = 'image/object/bbox/ymax'
LABEL = 'image/object/bbox/label'
LABEL_TEXT = 'image/object/bbox/label_text'
DIFFICULT = 'image/object/bbox/difficult'
TRUNCATED = 'image/object/bbox/truncated'

SHARD_SUFFIX = '.tfrecord'


def shard_name(output_name, index, count):
    """File name of shard `index` of `count`: NAME_00000-of-00004.tfrecord."""
    return '%s_%05d-of-%05d%s' % (output_name, index, count, SHARD_SUFFIX)


def shard_glob(output_name):
    """Glob pattern matching every shard of `output_name`."""
    return '%s_*%s' % (output_name, SHARD_SUFFIX)


def summary_name(output_name):
    """File name of the conversion summary of `output_name`."""
    return '%s_summary.json' % output_name
