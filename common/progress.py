"""Progress lines of long loops: count done, speed and time left (ETA).

One format for every long job (conversion, the shapes generator, evaluation; the
training log line uses `format_duration` for its ETA):
`converted 200/1000 images, 41.3 images/s, ETA 0:00:19`.
"""
import datetime
import logging
import time

DEFAULT_EVERY_SECONDS = 10.0


def counted(count, noun, plural=None):
    """'1 shard', '3 shards', '0 shards': a count with its noun in the right number.

    Args:
        count: the number.
        noun: the singular ('shard', 'image').
        plural: the plural when it is not noun + 's' ('entries').
    """
    return '%d %s' % (count, noun if count == 1 else plural or noun + 's')


def format_duration(seconds):
    """'H:MM:SS' of a number of seconds (fractions dropped, negatives as 0)."""
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def format_progress(what, done, total, unit, per_second):
    """One progress line, e.g. 'converted 200/1000 images, 41.3 images/s, ETA 0:00:19'.

    Args:
        what: the verb or name leading the line ('converted', 'evaluated', ...).
        done: units finished.
        total: units of the whole job, or None when unknown (no ETA then, nor once
            done reaches it).
        unit: plural name of a unit ('images').
        per_second: measured speed in units per second.
    """
    line = '%s %d%s %s, %.1f %s/s' % (what, done, '' if total is None else '/%d' % total, unit,
                                      per_second, unit)
    if total is not None and done < total and per_second > 0:
        line += ', ETA %s' % format_duration((total - done) / per_second)
    return line


class ProgressLog:
    """Logs a progress line at most every `every_seconds`, and always when done == total
    (that line ends with the time taken: '..., 41.3 images/s, took 0:00:24').

    Args:
        what, total, unit: as in format_progress.
        every_seconds: minimum time between two lines.
        clock: function returning seconds (tests pass a fake one).
    """

    def __init__(self, what, total=None, unit='images', every_seconds=DEFAULT_EVERY_SECONDS,
                 clock=time.monotonic):
        self._what = what
        self._total = total
        self._unit = unit
        self._every = every_seconds
        self._clock = clock
        self._start = clock()
        self._last = self._start

    @property
    def elapsed(self):
        """Seconds since the log was created."""
        return self._clock() - self._start

    def update(self, done):
        """Records `done` units; returns the logged line, or None when not due yet."""
        now = self._clock()
        finished = self._total is not None and done >= self._total
        if not finished and now - self._last < self._every:
            return None
        self._last = now
        elapsed = now - self._start
        line = format_progress(self._what, done, self._total, self._unit,
                               done / max(elapsed, 1e-9))
        if finished:
            line += ', took %s' % format_duration(elapsed)
        logging.info('%s', line)
        return line
