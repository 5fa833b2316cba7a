"""Writes a graph-mode session as a TF-Serving SavedModel version, atomically.

`<export_base>/<version>/` appears complete or not at all: the model is written to a hidden
temporary folder beside it (`.tmp-<version>-<pid>-<host>-*`) and renamed; an existing version is
never overwritten. The temporary folders of killed exports are removed by the next export.
Default-valued op attributes are stripped so that older TF Serving releases can load the graph.
"""
import logging
import os
import re
import shutil
import socket
import tempfile
import time

import tensorflow as tf

from common.signatures import PREDICT_METHOD, SERVE_TAG, list_versions

TEMP_PREFIX = '.tmp-'
# A temporary folder of another host (or of an older release, without pid and host) is stale
# once nothing in it changed for this long; one of this host is stale when its process is gone.
STALE_AFTER_SECONDS = 24 * 3600
_TEMP_NAME = re.compile(r'^\.tmp-\d+-(?P<pid>\d+)-(?P<host>.+)-[^-]+$')


def next_version(export_base):
    """Returns 1 + the highest integer version under export_base (1 when there is none)."""
    versions = list_versions(export_base)
    return versions[-1] + 1 if versions else 1


def tensor_info(tensor):
    """The TensorInfo of a graph tensor (name, dtype, shape) for a SignatureDef."""
    return tf.compat.v1.TensorInfo(name=tensor.name, dtype=tensor.dtype.as_datatype_enum,
                                   tensor_shape=tensor.shape.as_proto())


def predict_signature(inputs, outputs):
    """Builds a predict SignatureDef from dicts alias -> graph tensor."""
    def infos(tensors):
        return {alias: tensor_info(t) for alias, t in tensors.items()}
    return tf.compat.v1.saved_model.build_signature_def(infos(inputs), infos(outputs),
                                                        PREDICT_METHOD)


def add_asset(path):
    """Registers a file as a SavedModel asset (copied to assets/). Returns its string tensor."""
    tensor = tf.constant(path, name='asset_' + os.path.basename(path).replace('.', '_'))
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, tensor)
    return tensor


def _newest_change(path):
    """The latest modification time of path or anything under it."""
    newest = os.lstat(path).st_mtime
    for root, names, files in os.walk(path):
        for name in names + files:
            try:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            except OSError:
                continue
    return newest


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, of another user
        return True
    return True


def _is_stale(path, name, now):
    match = _TEMP_NAME.match(name)
    if match and match['host'] == socket.gethostname():
        return not _process_alive(int(match['pid']))
    return now - _newest_change(path) > STALE_AFTER_SECONDS


def remove_stale_temporaries(export_base):
    """Removes the temporary folders that killed exports left under export_base.

    Returns:
      the removed paths.
    """
    removed = []
    now = time.time()
    for entry in os.scandir(export_base):
        if not (entry.name.startswith(TEMP_PREFIX) and entry.is_dir(follow_symlinks=False)):
            continue
        try:
            stale = _is_stale(entry.path, entry.name, now)
        except OSError:  # removed meanwhile by another export
            continue
        if stale:
            logging.info('Removing %s, left by an export that did not finish', entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def write_version(export_base, version, write, choose_version=next_version):
    """Writes `<export_base>/<version>/` whole or not at all.

    `write(folder)` fills a temporary folder under export_base (the folder does not exist yet),
    which is renamed to the version folder once complete; a temporary left by an export that
    did not finish is removed first.

    Args:
      export_base: model base path, created when missing.
      version: int version, or None for choose_version(export_base).
      write: function(folder path) -> None.
      choose_version: function(export_base) -> the next version (default: next_version).
    Returns:
      the path of the written version.
    Raises:
      FileExistsError: the version exists already.
      ValueError: version is not a positive integer.
    """
    os.makedirs(export_base, exist_ok=True)
    remove_stale_temporaries(export_base)
    version = choose_version(export_base) if version is None else version
    if not isinstance(version, int) or version < 1:
        raise ValueError('version must be a positive integer, got %r' % (version,))
    final = os.path.join(export_base, str(version))
    if os.path.exists(final):
        raise FileExistsError('export version %s exists already; choose another --version' % final)
    temp_parent = tempfile.mkdtemp(
        prefix='%s%d-%d-%s-' % (TEMP_PREFIX, version, os.getpid(), socket.gethostname()),
        dir=export_base)
    temp = os.path.join(temp_parent, 'model')
    try:
        write(temp)
        if os.path.exists(final):
            raise FileExistsError('export version %s appeared while writing; not overwritten'
                                  % final)
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp_parent, ignore_errors=True)
    return final


def write_saved_model(session, export_base, signature_defs, version=None, extra_files=None):
    """Saves the session's graph and variables as `<export_base>/<version>/` (write_version).

    Args:
      session: tf.compat.v1.Session whose graph holds the signatures' tensors; assets are the
        graph's ASSET_FILEPATHS collection (see add_asset).
      export_base: model base path, created when missing.
      signature_defs: dict signature key -> SignatureDef.
      version: int version, or None for next_version(export_base).
      extra_files: dict path relative to the version folder (such as
        'assets.extra/x.txt') -> text, written before the version appears.
    Returns:
      the path of the written version.
    Raises:
      FileExistsError: the version exists already.
      ValueError: version is not a positive integer.
    """
    def write(folder):
        builder = tf.compat.v1.saved_model.Builder(folder)
        with session.graph.as_default():
            assets = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
            builder.add_meta_graph_and_variables(
                session, [SERVE_TAG], signature_def_map=signature_defs,
                assets_collection=assets or None, clear_devices=True, strip_default_attrs=True)
        builder.save()
        for relative, text in (extra_files or {}).items():
            os.makedirs(os.path.dirname(os.path.join(folder, relative)), exist_ok=True)
            with open(os.path.join(folder, relative), 'w', encoding='utf-8') as extra:
                extra.write(text)

    return write_version(export_base, version, write)
