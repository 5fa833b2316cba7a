"""Bounded cluster operations: which tasks answer, and a watchdog over blocking calls.

A task of TensorFlow's runtime that is gone refuses connections; one that hangs (stopped,
swapped out, deadlocked) still accepts them, since the kernel completes the TCP handshake,
but never answers. `task_problem` asks the task's gRPC worker service for its status with a
short deadline, which tells the two apart.

TensorFlow bounds a session's runs with `operation_timeout_in_ms`, but some of its calls wait
on a remote task without a deadline (creating a session waits for every device's answer,
closing one for every task's acknowledgement). `Watchdog` bounds each guarded phase in
Python: when one lasts longer than its bound, it logs which tasks do not answer and ends the
process, since a thread blocked inside TensorFlow cannot be interrupted. Checkpoints are
written to temporary names and renamed, so ending the process loses none.
"""
import contextlib
import logging
import os
import threading
import time

import grpc

PROBE_SECS = 2.0
GRACE_SECS = 10.0
EXIT_CODE = 1
_GET_STATUS = '/tensorflow.WorkerService/GetStatus'


def task_problem(address, timeout=PROBE_SECS):
    """Why the task at 'host:port' does not answer, or None when its server answers.

    Sends TensorFlow's GetStatus request (an empty message) with a deadline of `timeout`.
    """
    with grpc.insecure_channel(address) as channel:
        get_status = channel.unary_unary(_GET_STATUS)
        try:
            get_status(b'', timeout=timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return 'accepts connections but does not answer within %g s (hung?)' % timeout
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                return 'is gone (nothing answers there)'
            return 'answers %s: %s' % (error.code().name, error.details())
    return None


def describe_unresponsive(tasks, timeout=PROBE_SECS):
    """'ps 0 at h:p is gone ...; worker 1 at ...' for the tasks that do not answer, or None.

    Args:
        tasks: cluster.Task list.
    """
    problems = []
    for task in tasks:
        problem = task_problem(task.address, timeout)
        if problem:
            problems.append('%s %d at %s %s' % (task.job, task.index, task.address, problem))
    return '; '.join(problems) or None


def _stop_process(message):
    """Logs `message` and ends the process at once (a blocked TensorFlow call never returns)."""
    logging.error('%s. Stopping this task', message)
    logging.shutdown()
    os._exit(EXIT_CODE)  # pylint: disable=protected-access


class Watchdog:
    """Bounds the guarded phases of a cluster task.

    Use as a context manager (it runs a thread while entered); `guard(what, seconds)` bounds
    one phase. Phases nest: an inner phase replaces the outer one's bound while it runs, and
    the outer phase's time starts again when it ends.

    Args:
        tasks: cluster.Task list probed when a phase overruns (the other tasks).
        on_expiry: fn(message) called once when a phase overruns (default: log the message
            and end the process with EXIT_CODE).
        poll_secs: how often the bound is checked.
        probe_secs: deadline of each task's probe.
        grace_secs: extra time before acting, so that TensorFlow's own timeout of the same
            bound (`operation_timeout_in_ms`), where it works, reports first.
    """

    def __init__(self, tasks, on_expiry=None, poll_secs=0.5, probe_secs=PROBE_SECS,
                 grace_secs=GRACE_SECS):
        self._tasks = list(tasks)
        self._on_expiry = on_expiry or _stop_process
        self._poll_secs = poll_secs
        self._probe_secs = probe_secs
        self._grace_secs = grace_secs
        self._phases = []  # [what, seconds, deadline]
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = None

    def __enter__(self):
        self._stopped.clear()
        self._thread = threading.Thread(target=self._watch, name='cluster-watchdog',
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stopped.set()
        self._thread.join()
        with self._lock:
            del self._phases[:]

    def begin(self, what, seconds):
        """Starts a phase of at most `seconds`, until `end` (or until the watchdog exits)."""
        with self._lock:
            self._phases.append([what, seconds, time.monotonic() + seconds])

    def end(self):
        """Ends the innermost phase; the outer one's time starts again."""
        with self._lock:
            self._phases.pop()
            if self._phases:
                self._phases[-1][2] = time.monotonic() + self._phases[-1][1]

    @contextlib.contextmanager
    def guard(self, what, seconds):
        """Bounds the `with` block to `seconds`; `what` names it in the message."""
        self.begin(what, seconds)
        try:
            yield
        finally:
            self.end()

    def _overrun(self):
        with self._lock:
            if self._phases and time.monotonic() > self._phases[-1][2] + self._grace_secs:
                return tuple(self._phases[-1][:2])
        return None

    def _watch(self):
        while not self._stopped.wait(self._poll_secs):
            overrun = self._overrun()
            if overrun is None:
                continue
            what, seconds = overrun
            found = describe_unresponsive(self._tasks, self._probe_secs)
            self._on_expiry('%s did not finish within %g s (--operation_timeout_secs): %s' % (
                what, seconds, found or 'every other task answers (a slow operation? raise '
                '--operation_timeout_secs)'))
            return


def bounded(dog, what, seconds):
    """dog.guard(what, seconds), or no bound without a watchdog or seconds."""
    if dog is None or not seconds:
        return contextlib.nullcontext()
    return dog.guard(what, seconds)
