"""common.progress: one progress line format with speed and ETA, logged at most every N s."""
import logging

from common import progress


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_format_duration():
    assert progress.format_duration(200.9) == '0:03:20'
    assert progress.format_duration(3 * 3600 + 61) == '3:01:01'
    assert progress.format_duration(-5) == '0:00:00'


def test_counted_puts_the_noun_in_the_right_number():
    assert progress.counted(1, 'shard') == '1 shard'
    assert progress.counted(3, 'shard') == '3 shards'
    assert progress.counted(0, 'image') == '0 images'
    assert progress.counted(2, 'entry', 'entries') == '2 entries'


def test_format_progress():
    assert (progress.format_progress('converted', 200, 1000, 'images', 40.0)
            == 'converted 200/1000 images, 40.0 images/s, ETA 0:00:20')
    assert (progress.format_progress('evaluated', 30, None, 'images', 12.34)
            == 'evaluated 30 images, 12.3 images/s')
    assert (progress.format_progress('converted', 1000, 1000, 'images', 40.0)
            == 'converted 1000/1000 images, 40.0 images/s')


def test_progress_log_is_throttled_and_logs_the_end(caplog):
    clock = _Clock()
    log = progress.ProgressLog('converted', 100, every_seconds=10.0, clock=clock)
    with caplog.at_level(logging.INFO):
        clock.now += 5
        assert log.update(10) is None
        clock.now += 5
        assert log.update(20) == 'converted 20/100 images, 2.0 images/s, ETA 0:00:40'
        clock.now += 1
        assert log.update(30) is None
        clock.now += 9
        assert log.update(40) == 'converted 40/100 images, 2.0 images/s, ETA 0:00:30'
        clock.now += 1
        assert log.update(100) == 'converted 100/100 images, 4.8 images/s, took 0:00:21'
    assert [r.getMessage() for r in caplog.records] == [
        'converted 20/100 images, 2.0 images/s, ETA 0:00:40',
        'converted 40/100 images, 2.0 images/s, ETA 0:00:30',
        'converted 100/100 images, 4.8 images/s, took 0:00:21']
    assert log.elapsed == 21.0
