"""Fine-tuning helpers: which variables to restore from a checkpoint, which to train.

Model variables live under the network scope (e.g. `ssd_300_vgg/conv1/conv1_1/weights`);
a slim classification checkpoint names them under its own scope (`vgg_16/conv1/...`),
so the restore map replaces the leading model scope by `checkpoint_model_scope`.
"""
import logging

import tensorflow as tf

from common import progress
from nets import checkpoint_state


def _split_scopes(scopes):
    """'a, b/c' or ['a', 'b/c'] -> ['a', 'b/c'] (empty entries dropped)."""
    if isinstance(scopes, str):
        scopes = scopes.split(',')
    return [s.strip().rstrip('/') for s in scopes or () if s.strip()]


def _in_scopes(name, scopes):
    return any(name == s or name.startswith(s + '/') for s in scopes)


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix, a V1 checkpoint file (slim's vgg_16.ckpt) or a
    directory (the newest checkpoint its `checkpoint` file lists, resolved against it).

    Raises:
        ValueError: no checkpoint there (the message names the path); a
            checkpoint_state.CheckpointError when the directory's newest checkpoint lies outside
            it or its files are missing (naming the previous checkpoint that loads).
    """
    if tf.io.gfile.isdir(path):
        latest = checkpoint_state.latest(path)
        if latest is None:
            raise ValueError('%s: no checkpoint in this directory' % path)
        if not tf.io.gfile.exists(latest + '.index'):
            checkpoint_state.check_loads(latest)
        return latest
    if tf.io.gfile.exists(path + '.index'):
        return path
    if tf.io.gfile.exists(path):
        try:
            tf.train.load_checkpoint(path)
        except (tf.errors.OpError, ValueError) as e:
            raise ValueError('%s: not a readable checkpoint (%s)' % (path, e)) from e
        return path
    raise ValueError('%s: no such checkpoint (%s.index does not exist)' % (path, path))


def variables_to_restore(variables, checkpoint_path, model_scope, checkpoint_model_scope=None,
                         exclude_scopes=None, ignore_missing_vars=False):
    """Maps checkpoint names to the model variables that should take their values.

    Args:
        variables: candidate variables (e.g. the model variables).
        checkpoint_path: checkpoint prefix.
        model_scope: the network's variable scope, e.g. 'ssd_300_vgg'.
        checkpoint_model_scope: the scope of the same variables in the checkpoint
            (e.g. 'vgg_16'); None: same as model_scope.
        exclude_scopes: scopes (model names) not to restore (freshly initialised).
        ignore_missing_vars: skip variables missing from the checkpoint or of another
            shape (logged) instead of failing.

    Returns:
        dict checkpoint name -> variable.

    Raises:
        ValueError: a variable is missing or has another shape (without
            ignore_missing_vars), or nothing would be restored.
    """
    exclude = _split_scopes(exclude_scopes)
    reader = tf.train.load_checkpoint(checkpoint_path)
    shapes = reader.get_variable_to_shape_map()
    restore = {}
    for var in variables:
        name = var.op.name
        if _in_scopes(name, exclude):
            continue
        ckpt_name = name
        if checkpoint_model_scope and _in_scopes(name, [model_scope]):
            ckpt_name = checkpoint_model_scope.rstrip('/') + name[len(model_scope.rstrip('/')):]
        problem = None
        if ckpt_name not in shapes:
            problem = 'is not in the checkpoint'
        elif list(shapes[ckpt_name]) != var.shape.as_list():
            problem = 'has shape %s in the checkpoint, %s in the model' % (
                shapes[ckpt_name], var.shape.as_list())
        if problem:
            message = 'Variable %s (checkpoint name %s) %s' % (name, ckpt_name, problem)
            if not ignore_missing_vars:
                raise ValueError(message + ' (use --ignore_missing_vars to skip it)')
            logging.warning('%s: not restored', message)
            continue
        restore[ckpt_name] = var
    if not restore:
        raise ValueError('No variable of the model matches checkpoint %s (model scope %s, '
                         'checkpoint scope %s)' % (checkpoint_path, model_scope,
                                                   checkpoint_model_scope or model_scope))
    return restore


def make_init_fn(restore_map, checkpoint_path):
    """Returns fn(scaffold, session) restoring `restore_map` (for tf.compat.v1.train.Scaffold)."""
    saver = tf.compat.v1.train.Saver(restore_map, reshape=False, sharded=False)
    logging.info('Fine-tuning: %s from %s', progress.counted(len(restore_map), 'variable'),
                 checkpoint_path)

    def init_fn(unused_scaffold, session):
        saver.restore(session, checkpoint_path)

    return init_fn


def trainable_variables(trainable_scopes=None):
    """The trainable variables under `trainable_scopes` (all of them when empty).

    Raises:
        ValueError: a scope matches no trainable variable.
    """
    variables = tf.compat.v1.trainable_variables()
    scopes = _split_scopes(trainable_scopes)
    if not scopes:
        return variables
    for scope in scopes:
        if not any(_in_scopes(v.op.name, [scope]) for v in variables):
            raise ValueError('--trainable_scopes: scope %r matches no trainable variable' % scope)
    return [v for v in variables if _in_scopes(v.op.name, scopes)]
