"""Writes a graph-mode session as a TF-Serving SavedModel version, atomically.

`<export_base>/<version>/` appears complete or not at all: the model is written to a hidden
temporary folder beside it and renamed; an existing version is never overwritten. Default-valued
op attributes are stripped so that older TF Serving releases can load the graph.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from serving.model_manager import SERVE_TAG, list_versions

PREDICT_METHOD = 'tensorflow/serving/predict'


def next_version(export_base):
    """Returns 1 + the highest integer version under export_base (1 when there is none)."""
    versions = list_versions(export_base)
    return versions[-1] + 1 if versions else 1


def predict_signature(inputs, outputs):
    """Builds a predict SignatureDef from dicts alias -> graph tensor."""
    def infos(tensors):
        return {alias: tf.compat.v1.saved_model.build_tensor_info(t) for alias, t in tensors.items()}
    return tf.compat.v1.saved_model.build_signature_def(infos(inputs), infos(outputs), PREDICT_METHOD)


def add_asset(path):
    """Registers a file as a SavedModel asset (copied to assets/). Returns its string tensor."""
    tensor = tf.constant(path, name='asset_' + os.path.basename(path).replace('.', '_'))
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, tensor)
    return tensor


def write_saved_model(session, export_base, signature_defs, version=None):
    """Saves the session's graph and variables as `<export_base>/<version>/`.

    Args:
      session: tf.compat.v1.Session whose graph holds the signatures' tensors; assets are the
        graph's ASSET_FILEPATHS collection (see add_asset).
      export_base: model base path, created when missing.
      signature_defs: dict signature key -> SignatureDef.
      version: int version, or None for next_version(export_base).
    Returns:
      the path of the written version.
    Raises:
      FileExistsError: the version exists already.
      ValueError: version is not a positive integer.
    """
    os.makedirs(export_base, exist_ok=True)
    version = next_version(export_base) if version is None else version
    if not isinstance(version, int) or version < 1:
        raise ValueError('version must be a positive integer, got %r' % (version,))
    final = os.path.join(export_base, str(version))
    if os.path.exists(final):
        raise FileExistsError('export version %s exists already; choose another --version' % final)
    temp_parent = tempfile.mkdtemp(prefix='.tmp-%d-' % version, dir=export_base)
    temp = os.path.join(temp_parent, 'model')
    try:
        builder = tf.compat.v1.saved_model.Builder(temp)
        with session.graph.as_default():
            assets = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
            builder.add_meta_graph_and_variables(session, [SERVE_TAG], signature_def_map=signature_defs,
                                                 assets_collection=assets or None, clear_devices=True,
                                                 strip_default_attrs=True)
        builder.save()
        if os.path.exists(final):
            raise FileExistsError('export version %s appeared while writing; not overwritten' % final)
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp_parent, ignore_errors=True)
    return final
