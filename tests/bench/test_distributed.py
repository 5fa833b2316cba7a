"""The pieces of bench/distributed.py that run fast: progress-line speeds and TCP counters."""
import os
import re
import socket
import time

from bench import distributed

LINES = [
    '2026-11-28 03:30:01,000 INFO step 1/6: loss 9.0 (loc 1.0), lr 0.1, 0.50 images/s, ETA 0:01',
    'step 3/6: loss 8.0 (loc 1.0), lr 0.1, 2.00 images/s (cluster 4.00 images/s), ETA 0:01',
    'step 5/6: loss 7.0 (loc 1.0), lr 0.1, 3.00 images/s (cluster 6.00 images/s), ETA 0:00',
    'INFO Saving checkpoints for 5 into /tmp/x/model.ckpt.',
]


def test_speed_averages_the_progress_lines_after_the_warmup():
    own = re.compile(r'([\d.]+) images/s')
    assert distributed._speed(LINES, 2, own) == 2.5
    assert distributed._speed(LINES, 0, distributed.CLUSTER_SPEED) == 5.0
    assert distributed._speed(LINES, 9, own) != distributed._speed(LINES, 9, own)  # nan


def test_tcp_bytes_counts_the_connections_of_a_process():
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            server, _ = listener.accept()
            with server:
                before = distributed.tcp_bytes(os.getpid())
                client.sendall(b'0' * 100000)
                received = 0
                while received < 100000:
                    received += len(server.recv(65536))
                deadline = time.monotonic() + 5
                while True:  # bytes_acked moves when the peer's kernel acknowledges
                    after = distributed.tcp_bytes(os.getpid())
                    if after[1] - before[1] >= 100000 or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
    # Both ends are this process: each byte is counted once received, once sent.
    assert after[0] - before[0] == 100000
    assert after[1] - before[1] == 100000


def test_ps_shares_follow_the_placement_strategies():
    import tensorflow as tf

    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(name, shape, dtype=dtype)
                     for name, shape, dtype in (('step', [], tf.int64), ('a', [100], tf.float32),
                                                ('b', [1], tf.float32), ('c', [50], tf.float32))]
        # In turn: step, b on task 0; a, c on task 1. By size: each on the lighter task.
        assert distributed.ps_shares(variables, 2, 'round_robin') == [8 + 4, 400 + 200]
        assert distributed.ps_shares(variables, 2, 'size') == [8 + 4 + 200, 400]
        assert distributed.ps_shares(variables, 1, 'size') == [612]
