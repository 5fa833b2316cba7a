"""TensorFlow's known-harmless log lines, kept out of the scripts' output.

TensorFlow prints some lines on every run that say nothing about the run: its start-up banner
(twice, as two of its libraries each load a CUDA stub), the failed CUDA probe of a machine
without GPU drivers, optimizer notes and deprecation notes of its own internal calls. The
project's own calls use APIs that print nothing; `HARMLESS` lists what is left, with the reason
each line is harmless (docs/troubleshooting.md, "Log lines that are not problems", is this list).

- `filter_stderr()` (first thing in each script, before TensorFlow is imported) passes the
  process's stderr through a small filter process: the banner is shown once, the other listed
  lines are dropped, everything else goes through unchanged, in order. A separate process,
  not a thread, so that nothing written before a crash is lost.
- `filter_python_logs()` (in cli.setup_logging) drops the listed records of TensorFlow's Python
  logger and the listed Python warnings.

`SSD_ALL_LOGS=1` in the environment turns both off: every line as TensorFlow prints it.
Standard library only (no TensorFlow import).
"""
import atexit
import collections
import logging
import os
import re
import select
import signal
import sys
import warnings

SWITCH = 'SSD_ALL_LOGS'
"""Environment variable: `1` shows every line (no filtering)."""

Harmless = collections.namedtuple('Harmless', ['text', 'kind', 'reason'])
Harmless.__doc__ = """A known-harmless line: the text that identifies it, what is done with it
(BANNER: shown once per process; DROPPED; NO_GPU: dropped once the banner said the machine has
no CUDA drivers; PYTHON_LOG: a record of TensorFlow's Python logger, dropped; PYTHON_WARNING: a
Python warning, dropped), and why it is harmless."""
BANNER, DROPPED, NO_GPU, PYTHON_LOG, PYTHON_WARNING = (
    'banner', 'dropped', 'no_gpu', 'python_log', 'python_warning')
NO_CUDA_DRIVERS = 'Could not find cuda drivers on your machine, GPU will not be used'

HARMLESS = (
    Harmless('All log messages before absl::InitializeLog() is called are written to STDERR',
             BANNER, 'absl (TensorFlow\'s C++ logging) announcing where its first lines go'),
    Harmless(NO_CUDA_DRIVERS, BANNER,
             'this machine has no NVIDIA driver; TensorFlow runs on the CPU'),
    Harmless('This TensorFlow binary is optimized to use available CPU instructions', BANNER,
             'the wheel is built for a baseline CPU and uses newer instructions where it can'),
    Harmless('To enable the following instructions:', BANNER,
             'the second line of the same note (a TensorFlow built from source could use them '
             'everywhere)'),
    Harmless('oneDNN custom operations are on', BANNER,
             'TensorFlow uses Intel\'s oneDNN kernels on this CPU; results may differ from '
             'other kernels in the last float bits'),
    Harmless('failed call to cuInit', NO_GPU,
             'TensorFlow probes CUDA when it first traces a graph function (the input '
             'pipeline, the export); without a driver the probe fails (UNKNOWN ERROR (303), '
             'TensorFlow issue 37689). Shown when the banner did not say there is no driver.'),
    Harmless('MLIR V1 optimization pass is not enabled', DROPPED,
             'a note of TensorFlow\'s graph optimizer: an optional pass is off'),
    Harmless('TFRecordDataset `buffer_size` is unspecified', DROPPED,
             'a note of each TFRecord reader (giving the size logs a note too)'),
    Harmless('Local rendezvous is aborting with status: CANCELLED', DROPPED,
             'a session of a cluster task ending while a step waits for a tensor (stopping a '
             'task, a ps restart); TensorFlow cancels the step'),
    Harmless('Local rendezvous is aborting with status: OUT_OF_RANGE', DROPPED,
             'an input pipeline reaching its end (evaluation)'),
    Harmless('get_checkpoint_mtimes (from tensorflow.python.checkpoint.checkpoint_management) '
             'is deprecated', PYTHON_LOG,
             'TensorFlow\'s own session manager calls it when a training resumes from a '
             'checkpoint'),
    Harmless('Coordinator stopped with threads still running', PYTHON_LOG,
             'the chief of a synchronous cluster stops while its queue runner waits for the '
             'other replicas\' gradients of a step that will not come'),
    Harmless('SyncReplicasOptimizer.__init__ (from tensorflow.python.training.'
             'sync_replicas_optimizer) is deprecated', PYTHON_LOG,
             'synchronous cluster training (--sync_replicas) uses it: graph-mode training on '
             'parameter servers has no other synchronous optimizer (TensorFlow 2 moved it to '
             'distribution strategies, another design)'),
    Harmless('QueueRunner.__init__ (from tensorflow.python.training.queue_runner_impl) is '
             'deprecated', PYTHON_LOG,
             'the SyncReplicasOptimizer builds its token queue with it'),
    Harmless('from outer graph might be getting used by function', PYTHON_WARNING,
             'training with a --seed other than 0: the augmentation\'s random ops take their '
             'seeds from the graph seed, as intended (the same seed gives the same draws)'),
    Harmless('`layer.apply` is deprecated', PYTHON_WARNING,
             'tf_slim 1.1.0 (its last release) calls it inside slim.conv2d and '
             'slim.separable_conv2d'),
)


def enabled(environ=None):
    """Whether filtering is on (SSD_ALL_LOGS is not 1)."""
    return (os.environ if environ is None else environ).get(SWITCH, '') != '1'


class LineFilter:
    """Decides line by line what the stderr filter passes on (the C++ entries of HARMLESS)."""

    def __init__(self, entries=HARMLESS):
        self._entries = [entry for entry in entries if entry.kind in (BANNER, DROPPED, NO_GPU)]
        self._seen = set()

    def keep(self, line):
        """True to pass `line` (str, without its newline) on."""
        for entry in self._entries:
            if entry.text not in line:
                continue
            if entry.kind == DROPPED:
                return False
            if entry.kind == NO_GPU:
                return NO_CUDA_DRIVERS not in self._seen
            first = entry.text not in self._seen
            self._seen.add(entry.text)
            return first
        return True


_FLUSH = b'\0tf_logs: flush\0'
"""Written by the process to its stderr at exit: the filter passes on everything before it,
then acknowledges."""


def _run_filter(source, sink, ack, wait_for_newline_s=0.2):
    """Copies lines from fd `source` to fd `sink` through a LineFilter until end of file.

    A line still without its newline after `wait_for_newline_s` (a prompt) is passed on. At
    each _FLUSH in the stream, everything before it is passed on and a byte written to fd `ack`.
    """
    line_filter = LineFilter()

    def pass_on(lines):
        kept = [line + b'\n' for line in lines
                if line_filter.keep(line.decode('utf-8', 'replace'))]
        if kept:
            os.write(sink, b''.join(kept))

    pending = b''
    while True:
        ready, _, _ = select.select([source], [], [], wait_for_newline_s if pending else None)
        if not ready:
            os.write(sink, pending)
            pending = b''
            continue
        data = os.read(source, 65536)
        if not data:
            break
        pending += data
        while _FLUSH in pending:
            before, pending = pending.split(_FLUSH, 1)
            *lines, last = before.split(b'\n')
            pass_on(lines)
            if last:
                os.write(sink, last)
            os.write(ack, b'.')
        *lines, pending = pending.split(b'\n')
        pass_on(lines)
    if pending:
        os.write(sink, pending)


_installed = []


def filter_stderr(environ=None):
    """Passes this process's stderr (fd 2, inherited by its children) through the filter.

    Call it first in a script, before TensorFlow is imported (its import prints the banner).
    A forked process reads the lines and writes the kept ones to the original stderr until
    every writer has closed it. At exit this process waits (5 s at most) until the filter has
    passed on what it wrote, so its last lines come out before the shell's prompt; children
    still running keep writing through the filter. Does nothing when SSD_ALL_LOGS=1 or when
    already done.
    """
    if _installed or not enabled(environ):
        return
    read_end, write_end = os.pipe()
    ack_read, ack_write = os.pipe()
    original = os.dup(2)
    pid = os.fork()
    if pid == 0:  # the filter: ignores signals, ends when every writer has closed the pipe
        try:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP):
                signal.signal(signum, signal.SIG_IGN)
            os.close(write_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd, target in ((0, read_end), (1, devnull), (2, original), (3, ack_write)):
                os.dup2(target, fd)
            os.closerange(4, os.sysconf('SC_OPEN_MAX'))
            _run_filter(0, 2, 3)
        except OSError:  # the terminal or pipe behind stderr is gone
            pass
        finally:
            os._exit(0)  # pylint: disable=protected-access
    os.close(read_end)
    os.close(ack_write)
    os.dup2(write_end, 2)
    os.close(write_end)
    _installed.append((original, ack_read))
    atexit.register(close_stderr_filter)


def close_stderr_filter(timeout_s=5.0):
    """Puts the original stderr back and waits (at most `timeout_s`) for the filter to pass
    on what this process wrote. Runs at exit; a process ending with os._exit calls it first.
    Does nothing when no filter is installed."""
    if not _installed:
        return
    original, ack = _installed.pop()
    logging.shutdown()
    try:
        sys.stderr.flush()
        os.write(2, _FLUSH)
        os.dup2(original, 2)
        select.select([ack], [], [], timeout_s)
    except (OSError, ValueError):  # stderr closed, or the filter gone
        return


class _DropRecords(logging.Filter):
    """Drops the records of TensorFlow's Python logger whose message holds a listed text."""

    def __init__(self, texts):
        super().__init__()
        self._texts = tuple(texts)

    def filter(self, record):
        message = record.getMessage()
        return not any(text in message for text in self._texts)


def filter_python_logs(environ=None):
    """Drops the PYTHON_LOG records of the 'tensorflow' logger and the PYTHON_WARNING warnings
    (unless SSD_ALL_LOGS=1)."""
    if not enabled(environ):
        return
    logger = logging.getLogger('tensorflow')
    if not any(isinstance(f, _DropRecords) for f in logger.filters):
        logger.addFilter(_DropRecords(entry.text for entry in HARMLESS
                                      if entry.kind == PYTHON_LOG))
    for entry in HARMLESS:
        if entry.kind == PYTHON_WARNING:
            warnings.filterwarnings('ignore', message='.*' + re.escape(entry.text))
