"""Tests for datasets/record_check.py: TensorFlow's bad-record errors become one line naming the
shard and the offset, in training and in evaluation."""
import os

import pytest
import tensorflow as tf

from datasets import record_check
from evaluation import eval_lib
from training import train_lib

RECORDS = [b'%03d' % i * (50 + 7 * i) for i in range(12)]


def _write(path, records=RECORDS):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def _offsets(records=RECORDS):
    """Byte offset where each record starts."""
    offsets, position = [], 0
    for record in records:
        offsets.append(position)
        position += 12 + len(record) + 4
    return offsets


def _read_all(files):
    """Reads the files as training does (interleaved); returns the DataLossError's message."""
    with tf.Graph().as_default():
        dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset, cycle_length=2, num_parallel_calls=2)
        batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        with tf.compat.v1.Session() as session:
            with pytest.raises(tf.errors.DataLossError) as error:
                while True:
                    session.run(batch)
    return error.value.message


def test_crc32c_known_value():
    assert record_check.crc32c(b'123456789') == 0xE3069283


@pytest.fixture
def shards(tmp_path):
    """Three shards with the same records: a good one, one with a flipped data byte in record
    5, one cut inside record 9."""
    good = _write(tmp_path / 'a-00000-of-00003.tfrecord')
    flipped = _write(tmp_path / 'a-00001-of-00003.tfrecord')
    with open(flipped, 'r+b') as f:
        f.seek(_offsets()[5] + 12 + 10)
        f.write(b'\x00')
    cut = _write(tmp_path / 'a-00002-of-00003.tfrecord')
    os.truncate(cut, _offsets()[9] + 20)
    return good, flipped, cut


def test_record_problem_at_each_kind_of_damage(shards, tmp_path):
    good, flipped, cut = shards
    offsets = _offsets()
    # TensorFlow reports a bad header at the record's start, bad data 12 bytes further.
    assert record_check.record_problem(flipped, offsets[5] + 12) == (
        offsets[5], 'data checksum mismatch')
    assert record_check.record_problem(cut, offsets[9] + 12) == (
        offsets[9], 'truncated: the record needs %d bytes, the file ends after 20'
        % (12 + len(RECORDS[9]) + 4))
    header = _write(tmp_path / 'header.tfrecord')
    with open(header, 'r+b') as f:
        f.seek(offsets[3] + 9)
        f.write(b'\xff')
    assert record_check.record_problem(header, offsets[3]) == (
        offsets[3], 'length checksum mismatch')
    short = _write(tmp_path / 'short.tfrecord')
    os.truncate(short, offsets[2] + 5)
    assert record_check.record_problem(short, offsets[2]) == (
        offsets[2], 'truncated: 5 header bytes of 12 before the end of the file')
    for offset in offsets:
        assert record_check.record_problem(good, offset) is None
        assert record_check.record_problem(good, offset + 12) is None
    assert record_check.record_problem(flipped, offsets[5] + 1) is None  # not a record start
    assert record_check.record_problem(good, 10 ** 6) is None


def _line(kind, offset, path, reason):
    return ('%s record at byte offset %d of %s (%s): re-create the shard with '
            'tf_convert_data.py, or move it away' % (kind, offset, path, reason))


def test_tensorflows_message_becomes_one_line_naming_the_shard(shards, tmp_path):
    good, flipped, cut = shards
    offsets = _offsets()
    message = _read_all([good, flipped])
    assert 'corrupted record at %d' % (offsets[5] + 12) in message
    assert record_check.describe_data_loss(message, [good, flipped, cut]) == _line(
        'corrupted', offsets[5], flipped, 'data checksum mismatch')
    message = _read_all([good, cut])
    assert record_check.describe_data_loss(message, [good, flipped, cut]) == _line(
        'truncated', offsets[9], cut, 'truncated: the record needs %d bytes, the file ends '
        'after 20' % (12 + len(RECORDS[9]) + 4))
    header = _write(tmp_path / 'header.tfrecord')
    with open(header, 'r+b') as f:
        f.seek(offsets[3] + 9)
        f.write(b'\xff')
    assert record_check.describe_data_loss(_read_all([header]), [good, header]) == _line(
        'corrupted', offsets[3], header, 'length checksum mismatch')
    assert record_check.describe_data_loss('checksum of a checkpoint', [good]) is None
    assert 'none shows it now' in record_check.describe_data_loss(
        'corrupted record at 7', [good])


def test_training_stops_with_the_shard_named(shards, tmp_path):
    good, flipped, _ = shards
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        dataset = tf.data.Dataset.from_tensor_slices([good, flipped]).interleave(
            tf.data.TFRecordDataset, cycle_length=2).repeat()
        record = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        train_op = tf.group(tf.strings.length(record), global_step.assign_add(1))
        graph = train_lib.TrainGraph(train_op, global_step,
                                     {'total': tf.constant(0.0), 'learning_rate': tf.constant(0.1)},
                                     None, 1, (), (good, flipped))
        with pytest.raises(record_check.CorruptRecordError) as error:
            train_lib.train(graph, str(tmp_path / 'train'), max_number_of_steps=100,
                            save_summaries_secs=1000)
    assert str(error.value) == 'Training stopped at step 11: ' + _line(
        'corrupted', _offsets()[5], flipped, 'data checksum mismatch')


def test_evaluation_stops_with_the_shard_named(shards, tmp_path):
    good, _, cut = shards
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        dataset = tf.data.TFRecordDataset([good, cut]).batch(64)  # fails in the first batch
        iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
        graph = eval_lib.EvalGraph(iterator.initializer, {'record': iterator.get_next()},
                                   tf.compat.v1.train.Saver([global_step]), global_step, 24, 1,
                                   None, (good, cut))
        with tf.compat.v1.Session() as session:
            session.run(global_step.initializer)
            checkpoint = graph.saver.save(session, str(tmp_path / 'model.ckpt'))
        with pytest.raises(record_check.CorruptRecordError) as error:
            eval_lib.run_evaluation(graph, checkpoint, {0: 'background', 1: 'a'})
    assert str(error.value).startswith(
        'Evaluation stopped after 0 images: truncated record at byte offset %d of %s'
        % (_offsets()[9], cut))
