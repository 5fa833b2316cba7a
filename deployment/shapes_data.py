"""The synthetic shapes data set as TFRecords in one call (demo, benchmark, tests)."""
import os

from datasets import converter
from datasets import labels as labels_lib
from datasets import make_shapes_dataset
from datasets import pascalvoc

DATASET_NAME = 'shapes'


def make_shapes_records(work_dir, num_train, num_test, seed=0, min_side=200, max_side=500,
                        num_workers=1):
    """Draws the shapes images (VOC layout) and converts both splits to TFRecords.

    Args:
        work_dir: folder; gets `voc/` (images, XML) and `records/` (TFRecords, labels.txt).
        num_train, num_test: images of the trainval and test splits.
        seed: data seed (the images depend only on it and their index).
        min_side, max_side: image side range in pixels.
        num_workers: parallel processes.

    Returns:
        the records folder: `shapes_trainval_*.tfrecord`, `shapes_test_*.tfrecord`, labels.txt.
    """
    voc_dir = os.path.join(work_dir, 'voc')
    records_dir = os.path.join(work_dir, 'records')
    make_shapes_dataset.make_dataset(voc_dir, num_train, num_test, seed, num_workers,
                                     (min_side, max_side))
    labels = labels_lib.read_labels(os.path.join(voc_dir, labels_lib.LABELS_FILENAME))
    for split in make_shapes_dataset.SPLITS:
        result = pascalvoc.read_split(voc_dir, split, labels_lib.ids_by_name(labels))
        converter.convert(result, labels, records_dir, '%s_%s' % (DATASET_NAME, split),
                          num_workers=num_workers, seed=seed,
                          source='synthetic shapes %s' % split)
    return records_dir
