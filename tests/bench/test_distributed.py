"""The pieces of bench/distributed.py that run fast: progress-line speeds and TCP counters."""
import os
import re
import socket
import textwrap
import time

from bench import distributed
from deployment import local_cluster

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


TRAFFIC = textwrap.dedent('''\
    """The worker sends 50000 bytes to the ps over their cluster addresses."""
    import json, os, socket, time
    config = json.loads(os.environ['TF_CONFIG'])
    task = config['task']
    host, port = config['cluster'][task['type']][task['index']].rsplit(':', 1)
    if task['type'] == 'ps':
        listener = socket.socket()
        listener.bind((host, int(port)))
        listener.listen()
        connection, _ = listener.accept()
        received = 0
        while received < 50000:
            received += len(connection.recv(65536))
        print('received', received, flush=True)
    else:
        ps_host, ps_port = config['cluster']['ps'][0].rsplit(':', 1)
        for _ in range(600):
            try:
                connection = socket.create_connection((ps_host, int(ps_port)))
                break
            except OSError:
                time.sleep(0.05)
        connection.sendall(b'0' * 50000)
    while True:
        time.sleep(0.05)
    ''')


def test_tcp_bytes_reads_the_connections_in_the_clusters_network(tmp_path):
    script = tmp_path / 'traffic.py'
    script.write_text(TRAFFIC)
    cluster = local_cluster.LocalCluster([], num_ps=1, num_workers=1, output=None,
                                         script=str(script))
    with cluster:
        cluster.wait_for_line('ps 0', '^received 50000$', 60)
        assert distributed.tcp_bytes(cluster.process('ps 0').pid, cluster.network)[0] == 50000


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
