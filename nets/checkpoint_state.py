"""The checkpoints of a train dir: which it lists, whether they belong to it, which load.

A train dir's `checkpoint` file (TensorFlow's CheckpointState) lists its checkpoints, oldest
first. The trainer writes the entries relative to the train dir (`model.ckpt-30`), so a copied
or moved train dir reads its own files; entries are resolved against the dir given. An entry
that resolves outside that dir (an absolute path written elsewhere, then copied) is refused:
silently using another dir's checkpoint would train or export the wrong weights.

A checkpoint "loads" when its index and every tensor of its data files read back (sizes and
checksums); a truncated or deleted file is named in the reason. Resuming takes the newest
checkpoint that loads and logs the ones it skipped; export and evaluation name the broken
file and the previous checkpoint that loads.
"""
import glob
import logging
import os
import re

import tensorflow as tf

STATE_FILENAME = 'checkpoint'
_TRAINER_INDEX = re.compile(r'^model\.ckpt-(\d+)\.index$')
_MISSING_DATA = re.compile(r'([^\s;]+\.data-\d+-of-\d+); No such file')
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError, RuntimeError, OSError)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the reason."""


def _inside(path, folder):
    """True when `path` is `folder` or below it (symbolic links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _trainer_checkpoints(train_dir):
    """The trainer's `model.ckpt-<step>` prefixes found in `train_dir`, oldest step first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(train_dir), 'model.ckpt-*.index')):
        match = _TRAINER_INDEX.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path[:-len('.index')]))
    return [prefix for _, prefix in sorted(found)]


def listed(train_dir):
    """The checkpoint prefixes of `train_dir`, oldest first, resolved against it.

    They come from its `checkpoint` file; when that file is missing or unreadable but the
    trainer's `model.ckpt-<step>` files are there, from those (logged).

    Returns:
        list of prefixes ([] for a dir without checkpoints).

    Raises:
        CheckpointError: an entry resolves outside `train_dir` (a copied or moved train dir
            whose `checkpoint` file holds absolute paths); the message names both.
    """
    state_path = os.path.join(train_dir, STATE_FILENAME)
    state = None
    if os.path.isfile(state_path):
        try:
            state = tf.train.get_checkpoint_state(train_dir)
        except ValueError:
            state = None
    if state is None:
        found = _trainer_checkpoints(train_dir)
        if found:
            logging.warning('%s is %s; using the checkpoints found beside it: %s', state_path,
                            'unreadable' if os.path.isfile(state_path) else 'missing',
                            ', '.join(os.path.basename(p) for p in found))
        return found
    entries = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path not in entries:
        entries.append(state.model_checkpoint_path)
    for entry in entries:
        if not _inside(entry, train_dir):
            name = os.path.basename(entry)
            here = os.path.join(train_dir, name)
            hint = ('%s is here: write its entries relative to the dir ("%s"), or give that '
                    'checkpoint itself' % (here, name)
                    if os.path.isfile(here + '.index') else
                    'write its entries relative to the dir')
            raise CheckpointError(
                '%s names %s, outside the train dir %s (copied or moved from %s?); refusing '
                'to use another dir\'s checkpoint. %s' % (
                    state_path, entry, train_dir, os.path.dirname(entry), hint))
    return entries


def latest(train_dir):
    """The newest checkpoint `train_dir` lists (its files may be missing), or None.

    Raises:
        CheckpointError: as `listed`.
    """
    entries = listed(train_dir)
    return entries[-1] if entries else None


def _first_line(error):
    text = str(getattr(error, 'message', None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_problem(prefix):
    """Why the checkpoint `prefix` does not load, naming the file; None when it loads.

    Reads the index and every tensor (so sizes and checksums are checked). `prefix` is a V2
    checkpoint prefix, or a V1 checkpoint file.
    """
    index = prefix + '.index'
    if not os.path.isfile(index) and not os.path.isfile(prefix):
        return '%s is missing' % os.path.basename(index)
    first = index if os.path.isfile(index) else prefix  # V2, else a V1 file (vgg_16.ckpt)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except _READ_ERRORS as error:
        return '%s: %s' % (os.path.basename(first), _first_line(error))
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except _READ_ERRORS as error:
        reason = _first_line(error)
        missing = _MISSING_DATA.search(reason)
        if missing:
            return '%s is missing' % os.path.basename(missing.group(1))
        data = sorted(glob.glob(glob.escape(prefix) + '.data-*'))
        return '%s: %s' % (', '.join(os.path.basename(p) for p in data), reason)
    return None


def newest_loadable(train_dir, log=logging.warning):
    """The checkpoint a resumed run restores: the newest listed one that loads.

    Args:
        train_dir: the train dir.
        log: fn(message) told about each skipped checkpoint and why.

    Returns:
        (prefix or None when the dir has no checkpoint, the prefixes listed up to and
        including it, oldest first: the ones a saver keeps managing).

    Raises:
        CheckpointError: checkpoints are listed but none loads (each named with its reason),
            or as `listed`.
    """
    entries = listed(train_dir)
    problems = []
    for position in range(len(entries) - 1, -1, -1):
        prefix = entries[position]
        problem = load_problem(prefix)
        if problem is None:
            return prefix, entries[:position + 1]
        problems.append('%s (%s)' % (os.path.basename(prefix), problem))
        log('Skipping checkpoint %s: %s' % (prefix, problem))
    if problems:
        raise CheckpointError(
            'no checkpoint of %s loads: %s. Move them away to start over'
            % (train_dir, '; '.join(problems)))
    return None, []


def check_loads(prefix):
    """Checks that the checkpoint `prefix` loads.

    Raises:
        CheckpointError: naming the broken file and offering the newest older checkpoint of
            its dir that loads.
    """
    problem = load_problem(prefix)
    if problem is None:
        return
    folder = os.path.dirname(prefix) or '.'
    try:
        entries = listed(folder)
    except CheckpointError:
        entries = []
    here = [os.path.realpath(p) for p in entries]
    older = entries[:here.index(os.path.realpath(prefix))] if os.path.realpath(
        prefix) in here else entries
    offer = '; no older checkpoint of %s loads' % folder
    for candidate in reversed(older):
        if load_problem(candidate) is None:
            offer = '; the previous checkpoint %s loads: give --checkpoint_path=%s' % (
                candidate, candidate)
            break
    raise CheckpointError('checkpoint %s does not load (%s)%s' % (prefix, problem, offer))
