"""Server-side batching (serving/batching.py, --enable_batching): the parameters file as TF
Serving's, concurrent requests run as one batch, each gets its own rows, the answers equal the
unbatched ones, queue and size limits, one bad request does not fail its batch-mates."""
import os
import threading
import time

import numpy as np
import pytest

from client.ssd_client import SSDClient
from common.signatures import ServingError
from serving import batching, model_server
from serving.model_manager import ModelManager

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parameters(**kwargs):
    values = dict(max_batch_size=4, batch_timeout_micros=60 * 10**6, max_enqueued_batches=10,
                  num_batch_threads=2)
    values.update(kwargs)
    return batching.BatchingParameters(**values)


def _concurrently(function, arguments):
    """Calls function(argument) on one thread each; returns the results (or raised errors)."""
    results = [None] * len(arguments)

    def call(index):
        try:
            results[index] = function(arguments[index])
        except ServingError as e:
            results[index] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(arguments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _wait_until(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.01)


class _Recorder:
    """A batch function: doubles its input, records the batch sizes, fails on a negative row."""

    def __init__(self):
        self.sizes = []

    def __call__(self, inputs):
        self.sizes.append(len(inputs[0]))
        if (inputs[0] < 0).any():
            raise ServingError('negative input', 'INVALID_ARGUMENT')
        return [inputs[0] * 2, inputs[0][:, :1]]


def test_shipped_config_is_read_as_tf_serving_fields():
    parameters = batching.read_parameters(os.path.join(ROOT, 'serving', 'batching.config'))
    assert parameters == batching.BatchingParameters(
        max_batch_size=8, batch_timeout_micros=2000, max_enqueued_batches=100,
        num_batch_threads=4)
    assert batching.parse_parameters('') == batching.BatchingParameters()
    assert batching.parse_parameters(
        'max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 8 '
        'thread_pool_name { value: "x" }').allowed_batch_sizes == (4, 8)


@pytest.mark.parametrize('text, words', [
    ('max_batch_sise { value: 8 }', 'no field named "max_batch_sise"'),
    ('max_batch_size { value: 0 }', 'max_batch_size is 0, it must be >= 1'),
    ('num_batch_threads { value: 0 }', 'num_batch_threads is 0'),
    ('batch_timeout_micros { value: -1 }', 'batch_timeout_micros is -1'),
    ('max_batch_size { value: 8 } allowed_batch_sizes: 4', 'end at max_batch_size 8'),
    ('max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 8', 'increase'),
    ('pad_variable_length_inputs: true', 'pad_variable_length_inputs: true is not supported'),
])
def test_bad_parameters_name_the_file_and_field(text, words):
    with pytest.raises(ValueError, match='b.config') as error:
        batching.parse_parameters(text, 'b.config')
    assert words in str(error.value)


def test_server_flags(tmp_path):
    with pytest.raises(SystemExit):
        model_server._parse_args(['--model_base_path=x', '--batching_parameters_file=b.config'])
    bad = tmp_path / 'bad.config'
    bad.write_text('max_batch_size { value: 0 }')
    with pytest.raises(SystemExit):
        model_server._parse_args(['--model_base_path=x', '--enable_batching',
                                  '--batching_parameters_file=%s' % bad])
    args = model_server._parse_args(['--model_base_path=x', '--enable_batching'])
    assert args.batching == batching.BatchingParameters()


def test_concurrent_requests_run_as_one_batch_and_get_their_rows():
    batcher = batching.Batcher(_parameters())
    recorder = _Recorder()
    requests = [np.full([1, 3], i, np.float32) for i in range(4)]
    try:
        answers = _concurrently(lambda x: batcher.run('key', recorder, [x], 1), requests)
    finally:
        batcher.stop()
    assert recorder.sizes == [4]  # full at 4 items: run at once, long before the timeout
    for request, (doubled, first) in zip(requests, answers):
        np.testing.assert_array_equal(doubled, request * 2)
        np.testing.assert_array_equal(first, request[:, :1])
    assert batcher.batch_sizes == {4: 1}


def test_a_lone_request_runs_at_the_timeout_and_keys_are_apart():
    batcher = batching.Batcher(_parameters(batch_timeout_micros=1000))
    recorder = _Recorder()
    try:
        answers = _concurrently(lambda a: batcher.run(a[0], recorder, [a[1]], len(a[1])),
                                [('a', np.ones([2, 1], np.float32)),
                                 ('b', np.ones([1, 1], np.float32))])
    finally:
        batcher.stop()
    assert sorted(recorder.sizes) == [1, 2]
    assert [len(doubled) for doubled, _ in answers] == [2, 1]


def test_padding_to_allowed_batch_sizes():
    batcher = batching.Batcher(_parameters(batch_timeout_micros=1000, allowed_batch_sizes=(2, 4)))
    recorder = _Recorder()
    try:
        doubled, _ = batcher.run('k', recorder, [np.arange(3, dtype=np.float32)[:, None]], 3)
    finally:
        batcher.stop()
    assert recorder.sizes == [4]
    np.testing.assert_array_equal(doubled[:, 0], [0, 2, 4])


def test_a_failing_request_does_not_fail_its_batch():
    batcher = batching.Batcher(_parameters(max_batch_size=3))
    recorder = _Recorder()
    try:
        answers = _concurrently(lambda x: batcher.run('k', recorder, [x], 1),
                                [np.full([1, 1], v, np.float32) for v in (1, -1, 2)])
    finally:
        batcher.stop()
    assert recorder.sizes[0] == 3 and sorted(recorder.sizes[1:]) == [1, 1, 1]
    assert isinstance(answers[1], ServingError) and answers[1].code == 'INVALID_ARGUMENT'
    assert [a[0][0, 0] for a in (answers[0], answers[2])] == [2, 4]


def test_limits_of_size_and_queue():
    batcher = batching.Batcher(_parameters(max_batch_size=2, max_enqueued_batches=1,
                                           num_batch_threads=1))
    release = threading.Event()

    def blocked(inputs):
        release.wait(60)
        return [inputs[0]]

    try:
        with pytest.raises(ServingError, match='over the batching max_batch_size of 2') as error:
            batcher.run('k', blocked, [np.zeros([3, 1])], 3)
        assert error.value.code == 'INVALID_ARGUMENT'
        # The only thread runs a full batch; a second one waits; a third does not fit the queue.
        running = threading.Thread(target=batcher.run, args=('k', blocked, [np.zeros([2, 1])], 2))
        running.start()
        _wait_until(lambda: batcher.batch_sizes[2] == 1)
        waiting = threading.Thread(target=batcher.run, args=('k', blocked, [np.zeros([2, 1])], 2))
        waiting.start()
        _wait_until(lambda: any(batcher._queues.values()))
        with pytest.raises(ServingError, match='max_enqueued_batches 1') as error:
            batcher.run('k', blocked, [np.zeros([2, 1])], 2)
        assert error.value.code == 'UNAVAILABLE'
    finally:
        release.set()
        batcher.stop()
    running.join(60)
    waiting.join(60)


def test_requests_past_their_deadline_are_dropped_not_run():
    """A request whose client has given up is not run: the batch runs without it."""
    batcher = batching.Batcher(_parameters(max_batch_size=2, num_batch_threads=1))
    release, recorder = threading.Event(), _Recorder()

    def blocked(inputs):
        release.wait(60)
        return recorder(inputs)

    try:
        running = threading.Thread(target=batcher.run, args=('k', blocked, [np.ones([2, 1])], 2))
        running.start()
        _wait_until(lambda: batcher.batch_sizes[2] == 1)
        # Queued behind the running batch, which ends after 0.5 s: one request whose client
        # gives up after 0.05 s, one still waiting.
        timer = threading.Timer(0.5, release.set)
        timer.start()
        results = _concurrently(
            lambda deadline: batcher.run('k', blocked, [np.full([1, 1], 3.0)], 1, deadline),
            [time.monotonic() + 0.05, time.monotonic() + 60])
    finally:
        release.set()
        batcher.stop()
    running.join(60)
    assert isinstance(results[0], ServingError) and results[0].code == 'DEADLINE_EXCEEDED'
    assert 'deadline passed' in str(results[0])
    assert results[1][0].tolist() == [[6.0]]
    assert batcher.dropped == 1 and recorder.sizes == [2, 1]


@pytest.fixture
def servers(toy_base):
    """Two in-process servers of the toy model: batched (max 4, long timeout) and unbatched."""
    batcher = batching.Batcher(_parameters())
    started = []
    for with_batcher in (batcher, None):
        manager = ModelManager('ssd', toy_base, poll_seconds=0.1, batcher=with_batcher)
        manager.start()
        server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=8)
        server.start()
        started.append((server, manager, '127.0.0.1:%d' % port))
    yield batcher, started[0][2], started[1][2]
    for server, manager, _ in started:
        server.stop(0).wait()
        manager.stop()
    batcher.stop()


def test_batched_answers_equal_unbatched_ones(servers, toy):
    batcher, batched, unbatched = servers
    rng = np.random.RandomState(3)
    images = [rng.uniform(-1, 1, [1, 4, 4, 3]).astype(np.float32) for _ in range(4)]
    with SSDClient(batched, timeout=60) as client:
        answers = _concurrently(lambda x: client.predict({'images': x}), images)
        # Strings batch too: the toy `detect` answers the byte length of each image.
        jpegs = [b'x' * n for n in (3, 5, 7, 11)]
        lengths = _concurrently(lambda data: client.predict(
            {'encoded_images': [data]}, 'detect', output_filter=['num_detections'])[0],
            jpegs)
    assert batcher.batch_sizes == {4: 2}
    with SSDClient(unbatched, timeout=60) as client:
        for image, (outputs, version) in zip(images, answers):
            alone, _ = client.predict({'images': image})
            assert version == 1
            for alias in ('scores', 'boxes'):
                np.testing.assert_allclose(outputs[alias], alone[alias], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(outputs['scores'], toy.outputs(image)[0], rtol=1e-5)
    assert [int(out['num_detections'][0]) for out in lengths] == [3, 5, 7, 11]


def test_unbatchable_signatures_run_alone(servers):
    batcher, batched, _ = servers
    with SSDClient(batched, timeout=60) as client:
        outputs, _ = client.predict({'iterations': np.array(5, np.int32)}, 'slow')
    assert int(outputs['count']) == 5 and not batcher.batch_sizes
