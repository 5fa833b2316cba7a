"""Split files of a VOC-style folder: `--make_splits=trainval:0.9,test:0.1` parsed, drawn, written.

A split file is `ImageSets/Main/<name>.txt`, one image id a line, as in Pascal VOC. Folders
labelled with LabelImg and most other tools have none; `draw` cuts the annotated ids into
named parts with a seeded shuffle and `write` stores them, so the split is reproducible and
the same files serve every later conversion. Imports without TensorFlow.
"""
import os
import random
import re

from common.files import atomic_write
from datasets import specs

ALL = 'all'
"""The split name meaning every annotated image of the folder (no split file needed)."""
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
_TOLERANCE = 1e-6


def split_path(dataset_dir, name):
    """The split file of `name`: DIR/ImageSets/Main/<name>.txt."""
    return os.path.join(dataset_dir, 'ImageSets', 'Main', name + '.txt')


def parse_spec(text):
    """'trainval:0.9,test:0.1' -> [('trainval', 0.9), ('test', 0.1)].

    Raises:
      ValueError: a message saying what is wrong (the caller names the flag).
    """
    parts = []
    for item in (piece.strip() for piece in text.split(',')):
        name, colon, fraction = item.partition(':')
        if not colon:
            raise ValueError('expected name:fraction pairs such as trainval:0.9,test:0.1, got %r'
                             % item)
        if not _NAME.match(name) or name == ALL:
            raise ValueError('%r is not a usable split name (letters, digits, _ . -; not %r)'
                             % (name, ALL))
        try:
            value = float(fraction)
        except ValueError:
            raise ValueError('the fraction of %s is not a number: %r' % (name, fraction)) from None
        if not 0.0 < value <= 1.0:
            raise ValueError('the fraction of %s must be in (0, 1], got %s' % (name, fraction))
        parts.append((name, value))
    names = [name for name, _ in parts]
    if len(set(names)) != len(names):
        raise ValueError('a split name is repeated: %s' % ','.join(names))
    total = sum(value for _, value in parts)
    if abs(total - 1.0) > _TOLERANCE:
        raise ValueError('the fractions add up to %g, not 1' % total)
    return parts


def draw(ids, parts, seed):
    """Cuts `ids` into the named parts after a seeded shuffle.

    Args:
      ids: image ids (any order; sorted first, so the result depends only on the set).
      parts: [(name, fraction)] from parse_spec.
      seed: shuffle seed.

    Returns:
      {name: [ids]}, each list sorted, together every id once.

    Raises:
      specs.DatasetError: a part would get no image.
    """
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    result, start, cumulative = {}, 0, 0.0
    for index, (name, fraction) in enumerate(parts):
        cumulative += fraction
        end = len(shuffled) if index == len(parts) - 1 else int(round(cumulative * len(shuffled)))
        if end <= start:
            raise specs.DatasetError('--make_splits: %s gets none of the %d annotated images; '
                                     'give it a larger fraction' % (name, len(shuffled)))
        result[name] = sorted(shuffled[start:end])
        start = end
    return result


def write(dataset_dir, splits):
    """Writes each split file (atomically); a file already holding the same ids is kept.

    Returns:
      {name: (path, 'written' | 'unchanged')}.

    Raises:
      specs.DatasetError: a split file exists with other ids (nothing is written then).
    """
    contents = {name: ''.join(image_id + '\n' for image_id in ids) for name, ids in splits.items()}
    states = {}
    for name, text in contents.items():
        path = split_path(dataset_dir, name)
        try:
            with open(path, encoding='utf-8') as existing:
                old = existing.read()
        except FileNotFoundError:
            states[name] = (path, 'written')
            continue
        if sorted(old.split()) != sorted(text.split()):
            raise specs.DatasetError(
                '%s exists with other image ids; --make_splits does not overwrite split files '
                '(drop the option to use it, or remove the file)' % path)
        states[name] = (path, 'unchanged')
    os.makedirs(os.path.dirname(split_path(dataset_dir, 'x')), exist_ok=True)
    for name, (path, state) in states.items():
        if state == 'written':
            atomic_write(path, contents[name])
    return states
