"""Tests for nets/checkpoint_state.py: relative entries, another dir's checkpoints refused,
broken checkpoints named, the newest one that loads."""
import os
import shutil

import pytest
import tensorflow as tf

from nets import checkpoint_state, checkpoints

STEPS = (10, 20, 30)


def _write_train_dir(train_dir, relative=True):
    """Checkpoints model.ckpt-10, -20, -30 of one variable (its value = the step)."""
    with tf.Graph().as_default():
        value = tf.compat.v1.get_variable('w', initializer=tf.zeros([64, 64]))
        step = tf.compat.v1.placeholder(tf.float32, [])
        assign = value.assign(tf.fill([64, 64], step))
        saver = tf.compat.v1.train.Saver(save_relative_paths=relative)
        with tf.compat.v1.Session() as session:
            for global_step in STEPS:
                session.run(assign, {step: global_step})
                saver.save(session, os.path.join(str(train_dir), 'model.ckpt'),
                           global_step=global_step, write_meta_graph=False)
    return str(train_dir)


def _prefix(train_dir, step):
    return os.path.join(train_dir, 'model.ckpt-%d' % step)


def _data_file(prefix):
    return prefix + '.data-00000-of-00001'


def test_entries_are_relative_and_resolve_against_the_dir_given(tmp_path):
    original = _write_train_dir(tmp_path / 'a')
    text = open(os.path.join(original, 'checkpoint')).read()
    assert 'model_checkpoint_path: "model.ckpt-30"' in text and str(tmp_path) not in text
    copy = str(tmp_path / 'b')
    shutil.copytree(original, copy)
    assert checkpoint_state.listed(copy) == [_prefix(copy, s) for s in STEPS]
    assert checkpoint_state.latest(copy) == _prefix(copy, 30)
    assert checkpoints.resolve_checkpoint(copy) == _prefix(copy, 30)


def test_a_copy_with_absolute_entries_is_refused_naming_both_dirs(tmp_path):
    original = _write_train_dir(tmp_path / 'a', relative=False)
    assert checkpoint_state.latest(original) == _prefix(original, 30)  # its own: fine
    copy = str(tmp_path / 'b')
    shutil.copytree(original, copy)
    with pytest.raises(checkpoint_state.CheckpointError) as error:
        checkpoints.resolve_checkpoint(copy)
    message = str(error.value)
    assert '%s names %s, outside the train dir %s' % (
        os.path.join(copy, 'checkpoint'), _prefix(original, 10), copy) in message
    assert '%s is here' % _prefix(copy, 10) in message
    with pytest.raises(checkpoint_state.CheckpointError, match='outside the train dir'):
        checkpoint_state.newest_loadable(copy)


def test_a_symlinked_dir_is_the_same_dir(tmp_path):
    original = _write_train_dir(tmp_path / 'a', relative=False)
    link = str(tmp_path / 'link')
    os.symlink(original, link)
    assert checkpoint_state.latest(link) == _prefix(original, 30)


@pytest.mark.parametrize('damage, reason', [
    ('truncate', 'model.ckpt-30.data-00000-of-00001: Read less bytes than requested'),
    ('flip', 'model.ckpt-30.data-00000-of-00001: '),
    ('delete_data', 'model.ckpt-30.data-00000-of-00001 is missing'),
    ('delete_index', 'model.ckpt-30.index is missing'),
    ('empty_index', 'model.ckpt-30.index: '),
])
def test_a_broken_latest_checkpoint_is_named_and_the_previous_one_offered(tmp_path, damage,
                                                                          reason):
    train_dir = _write_train_dir(tmp_path)
    latest = _prefix(train_dir, 30)
    if damage == 'truncate':
        os.truncate(_data_file(latest), 1000)
    elif damage == 'flip':
        with open(_data_file(latest), 'r+b') as f:
            f.seek(5000)
            f.write(b'\xff' * 64)
    elif damage == 'delete_data':
        os.remove(_data_file(latest))
    elif damage == 'delete_index':
        os.remove(latest + '.index')
    else:
        open(latest + '.index', 'w').close()
    assert reason in checkpoint_state.load_problem(latest)
    assert checkpoint_state.load_problem(_prefix(train_dir, 20)) is None
    with pytest.raises(checkpoint_state.CheckpointError) as error:
        checkpoint_state.check_loads(latest)
    assert str(error.value).startswith('checkpoint %s does not load (%s' % (latest, reason))
    assert str(error.value).endswith('the previous checkpoint %s loads: give --checkpoint_path=%s'
                                     % ((_prefix(train_dir, 20),) * 2))
    skipped = []
    assert checkpoint_state.newest_loadable(train_dir, skipped.append) == (
        _prefix(train_dir, 20), [_prefix(train_dir, 10), _prefix(train_dir, 20)])
    assert len(skipped) == 1 and skipped[0].startswith('Skipping checkpoint %s: %s'
                                                        % (latest, reason))


def test_no_checkpoint_that_loads_is_an_error_naming_each(tmp_path):
    train_dir = _write_train_dir(tmp_path)
    for step in STEPS:
        os.truncate(_data_file(_prefix(train_dir, step)), 10)
    with pytest.raises(checkpoint_state.CheckpointError) as error:
        checkpoint_state.newest_loadable(train_dir, lambda message: None)
    assert str(error.value).startswith('no checkpoint of %s loads: model.ckpt-30 (' % train_dir)
    assert 'model.ckpt-10 (' in str(error.value)
    with pytest.raises(checkpoint_state.CheckpointError, match='no older checkpoint of'):
        checkpoint_state.check_loads(_prefix(train_dir, 30))


def test_an_unreadable_checkpoint_file_falls_back_to_the_files_found(tmp_path, caplog):
    train_dir = _write_train_dir(tmp_path)
    with open(os.path.join(train_dir, 'checkpoint'), 'w') as f:
        f.write('model_checkpoint_path: "model.ck')
    assert checkpoint_state.listed(train_dir) == [_prefix(train_dir, s) for s in STEPS]
    assert 'is unreadable; using the checkpoints found beside it' in caplog.text
    assert checkpoint_state.newest_loadable(str(tmp_path / 'empty')) == (None, [])


def test_a_v1_checkpoint_file_loads(tmp_path):
    path = str(tmp_path / 'vgg_16.ckpt')
    with tf.Graph().as_default():
        tf.compat.v1.get_variable('w', initializer=tf.ones([3]))
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1).save(
                session, path, write_meta_graph=False)
    assert checkpoint_state.load_problem(path) is None
    os.truncate(path, 20)
    assert checkpoint_state.load_problem(path).startswith('vgg_16.ckpt: ')
