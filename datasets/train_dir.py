"""A train dir that describes itself: labels.txt and train_info.json beside the checkpoints.

At start the trainer writes (atomically, only the chief of a cluster) `labels.txt` and
`train_info.json` = {"format", "network", "image_size" [H, W], "normalization",
"num_classes", "datasets": [{"name", "split", "dir", "num_samples"}]}, or checks the ones a
previous run wrote: a train dir that disagrees belongs to another run, and training stops
with a message naming the file and the field. Evaluation and export take the network and
the classes from it, so a train dir is all they need; explicit flags win and are checked
against it. Imports without TensorFlow.
"""
import json
import os

from common import labels as labels_lib
from common import normalization as normalization_lib
from common.files import atomic_write

INFO_FILENAME = 'train_info.json'
FORMAT = 1
# Fields that must agree between the train dir and a run that resumes in it.
_CHECKED = ('network', 'image_size', 'normalization', 'num_classes')


class TrainDirError(ValueError):
    """An unreadable or disagreeing train dir description; the message names file and field."""


def describe(network_name, params, dataset_info):
    """The train_info.json content of a training run.

    Args:
        network_name: nets_factory name, e.g. 'ssd_300_vgg'.
        params: the network's SSDParams (img_shape, normalization, num_classes); the
            normalisation is recorded by its name.
        dataset_info: dataset_factory.DatasetInfo of the training data (one or several).

    Returns:
        dict (JSON-serialisable).
    """
    parts = dataset_info.parts or (dataset_info,)
    return _network_fields(network_name, params, datasets=[
        {'name': part.name, 'split': part.split_name,
         'dir': os.path.dirname(os.path.abspath(part.files[0])),
         'num_samples': int(part.num_samples)} for part in parts])


def _network_fields(network_name, params, **more):
    return {
        'format': FORMAT,
        'network': network_name,
        'image_size': [int(v) for v in params.img_shape],
        'normalization': normalization_lib.get(params.normalization).name,
        'num_classes': int(params.num_classes),
        **more,
    }


def describe_import(network_name, params, source, path):
    """The train_info.json content of imported weights (import_weights.py): no data sets, and
    where the weights came from.

    Args:
        network_name, params: as describe().
        source: the importer's source name ('caffe', ...).
        path: the imported file.
    """
    return _network_fields(network_name, params, datasets=[],
                           imported_from={'source': source, 'path': path})


def folder_of(checkpoint_path):
    """The train dir of a checkpoint path: the path itself if it is a folder, else its folder."""
    if os.path.isdir(checkpoint_path):
        return checkpoint_path
    return os.path.dirname(checkpoint_path) or '.'


def read(train_dir):
    """The description of `train_dir`.

    Returns:
        (info dict, labels dict id -> name), or None when there is no train_info.json
        (a train dir of an older version, or not a train dir).

    Raises:
        TrainDirError: unreadable JSON, a missing field, or a missing / bad labels.txt.
    """
    info_path = os.path.join(train_dir, INFO_FILENAME)
    if not os.path.isfile(info_path):
        return None
    try:
        with open(info_path, encoding='utf-8') as f:
            info = json.load(f)
        missing = [key for key in _CHECKED + ('datasets',) if key not in info]
    except (OSError, ValueError, TypeError) as e:
        raise TrainDirError('%s: unreadable (%s: %s)' % (info_path, type(e).__name__, e)) from e
    if missing:
        raise TrainDirError('%s: missing field(s) %s' % (info_path, ', '.join(missing)))
    labels_path = os.path.join(train_dir, labels_lib.LABELS_FILENAME)
    if not os.path.isfile(labels_path):
        raise TrainDirError('%s is missing (written with %s)' % (labels_path, info_path))
    try:
        labels = labels_lib.read_labels(labels_path)
    except labels_lib.LabelsError as e:
        raise TrainDirError(str(e)) from e
    return info, labels


def _datasets_key(info):
    return [(d.get('name'), d.get('split')) for d in info.get('datasets', [])]


def check(train_dir, existing, labels, info):
    """Raises TrainDirError unless the description `existing` (from read) fits this run.

    Args:
        train_dir: the folder (for the messages).
        existing: (info, labels) of read().
        labels: dict id -> name of this run.
        info: describe() of this run.
    """
    old_info, old_labels = existing
    info_path = os.path.join(train_dir, INFO_FILENAME)
    hint = ('the train dir belongs to another run: use another --train_dir (or remove %s to '
            'start over)' % train_dir)
    for key in _CHECKED:
        if old_info[key] != info[key]:
            raise TrainDirError('%s: %s is %s, this run has %s; %s' % (
                info_path, key, json.dumps(old_info[key]), json.dumps(info[key]), hint))
    if _datasets_key(old_info) != _datasets_key(info):
        raise TrainDirError('%s: datasets are %s, this run has %s; %s' % (
            info_path, _format_datasets(old_info), _format_datasets(info), hint))
    check_labels(train_dir, old_labels, labels, 'this run\'s data')


def _format_datasets(info):
    return ','.join('%s:%s' % key for key in _datasets_key(info))


def check_labels(train_dir, train_labels, labels, source):
    """Raises TrainDirError unless `labels` (from `source`) equal the train dir's labels."""
    if train_labels == labels:
        return
    ids = sorted(i for i in set(train_labels) | set(labels)
                 if train_labels.get(i) != labels.get(i))
    raise TrainDirError('%s has other classes than %s: %s' % (
        os.path.join(train_dir, labels_lib.LABELS_FILENAME), source,
        ', '.join('id %d is %r vs %r' % (i, train_labels.get(i), labels.get(i))
                  for i in ids[:3])))


def write_or_check(train_dir, info, labels, is_chief=True):
    """At the start of training: describes `train_dir`, or checks its description.

    Args:
        train_dir: the training folder (created if needed).
        info: describe() of this run.
        labels: dict id -> name of the training data.
        is_chief: only the chief of a cluster writes (the others only check an existing
            description).

    Returns:
        True when the files were written now.

    Raises:
        TrainDirError: the train dir describes another run (network, input, classes, data).
    """
    existing = read(train_dir)
    if existing is not None:
        check(train_dir, existing, labels, info)
        return False
    labels_path = os.path.join(train_dir, labels_lib.LABELS_FILENAME)
    if os.path.isfile(labels_path):
        try:
            found = labels_lib.read_labels(labels_path)
        except labels_lib.LabelsError as e:
            raise TrainDirError(str(e)) from e
        check_labels(train_dir, found, labels, 'this run\'s data')
    if not is_chief:
        return False
    os.makedirs(train_dir, exist_ok=True)
    labels_lib.write_labels(labels_path, labels)
    atomic_write(os.path.join(train_dir, INFO_FILENAME),
                 json.dumps(info, indent=2, sort_keys=True) + '\n')
    return True


def network_name(train_dir, described, flag_value, default, flag='--model_name'):
    """The network to build: the flag if given (checked against the train dir), else the
    train dir's, else `default`.

    Args:
        train_dir: the folder (for the message).
        described: (info, labels) from read(), or None.
        flag_value: the flag's value or None.
        default: used without flag and description.

    Raises:
        TrainDirError: the flag names another network than the train dir.
    """
    if described is None:
        return flag_value or default
    trained = described[0]['network']
    if flag_value is not None and flag_value != trained:
        raise TrainDirError('%s %s, but %s says the checkpoint is a %s' % (
            flag, flag_value, os.path.join(train_dir, INFO_FILENAME), trained))
    return trained
