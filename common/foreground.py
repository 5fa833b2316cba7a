"""Runs a command as the terminal's foreground job, so that Ctrl-C reaches it and not the caller.

    python -m common.foreground COMMAND [ARG...]

A terminal sends Ctrl-C's SIGINT to its whole foreground process group. Under `make` that
group holds make itself, and make answers a SIGINT by deleting its target and ending with an
error (`make: *** [...] Interrupt`, exit 130) whatever its recipe does. `make demo-serve` runs
its servers through this module instead: the command gets a process group of its own and the
terminal, so only it receives Ctrl-C; it stops its servers and exits 0, and make sees a recipe
that succeeded. Ctrl-Z stops the command and the caller together, `fg` resumes both, as a
shell's job control does.

Without a controlling terminal (CI, a pipe, a background job) the command runs in this
process group, as any child. SIGTERM and SIGHUP sent to this process go on to the command's
group. Exits with the command's code (128 + N when signal N ended it). Standard library only.
"""
import contextlib
import os
import signal
import subprocess
import sys


def _terminal():
    """The controlling terminal's fd when this process is in its foreground group, else None."""
    try:
        fd = os.open('/dev/tty', os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _give_terminal(fd, group):
    """Makes `group` the terminal's foreground group (allowed from a background group too)."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, group)
    except OSError:
        pass  # the terminal is gone (hang-up)
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _ignore(_signum, _frame):
    """A signal handler doing nothing (unlike SIG_IGN, a child does not inherit it)."""


def run(argv):
    """Runs argv (see the module docstring); returns its shell-style exit code."""
    terminal = _terminal()
    own_group = terminal is not None
    started, early = [], []

    def forward(signum, _frame):
        if not started:  # passed on once the command has started
            early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            if own_group:
                os.killpg(started[0], signum)
            else:
                os.kill(started[0], signum)

    # Without a group of its own the command gets a terminal's SIGINT itself; with one, a
    # SIGINT sent to this process only (kill) is passed on. Python functions, set before the
    # command starts, so that it starts with the default handling of these signals even when
    # this process was started with them ignored (a shell can not trap a signal ignored when
    # it starts).
    handlers = {signal.SIGTERM: forward, signal.SIGHUP: forward,
                signal.SIGINT: forward if own_group else _ignore}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        child = subprocess.Popen(argv, process_group=0 if own_group else None).pid
        started.append(child)
        for signum in early:
            forward(signum, None)
        if own_group:
            _give_terminal(terminal, child)
        while True:
            _, status = os.waitpid(child, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else \
                    os.WEXITSTATUS(status)
            if own_group:  # Ctrl-Z: stop with the command, as a shell would see a job stop
                _give_terminal(terminal, os.getpgrp())
                os.killpg(os.getpgrp(), signal.SIGTSTP)
                _give_terminal(terminal, child)
                os.killpg(child, signal.SIGCONT)
    finally:
        if own_group:
            _give_terminal(terminal, os.getpgrp())
            os.close(terminal)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit('usage: python -m common.foreground COMMAND [ARG...]')
    return run(argv)


if __name__ == '__main__':
    sys.exit(main())
