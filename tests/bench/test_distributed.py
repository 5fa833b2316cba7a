"""The pieces of bench/distributed.py that run fast: progress-line speeds and process I/O."""
import os
import re

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


def test_io_counts_this_process_reads_and_writes(tmp_path):
    before = distributed._io(os.getpid())
    (tmp_path / 'x').write_bytes(b'0' * 100000)
    after = distributed._io(os.getpid())
    assert after[1] - before[1] >= 100000
