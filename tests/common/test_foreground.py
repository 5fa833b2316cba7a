"""common.foreground: on a terminal, Ctrl-C reaches the command and not its caller; elsewhere
the command runs as a plain child; the exit code is the command's."""
import os
import subprocess
import sys
import textwrap
import time

from common import foreground
from tests import helpers

# Stops on SIGINT with exit 0 after saying so; says when it is ready.
CHILD = textwrap.dedent('''\
    import signal, sys, time
    signal.signal(signal.SIGINT, lambda *_: (print('child got SIGINT', flush=True), sys.exit(0)))
    print('child ready', flush=True)
    time.sleep(120)
    ''')
# Would end with KeyboardInterrupt (and never print its line) if Ctrl-C reached it.
CALLER = textwrap.dedent('''\
    import subprocess, sys
    code = subprocess.call([sys.executable, '-m', 'common.foreground', sys.executable, '-c',
                            sys.argv[1]])
    print('caller carried on, command exit code %d' % code, flush=True)
    ''')


def _ctrl_c_once_ready(command):
    """Runs `command` on a terminal, types Ctrl-C once it printed 'child ready'; returns its
    exit code and everything it printed."""
    terminal = helpers.Terminal(command)
    try:
        deadline = time.monotonic() + 60
        while 'child ready' not in terminal.output:
            assert time.monotonic() < deadline and terminal.process.poll() is None, \
                terminal.output
            time.sleep(0.05)
        code = terminal.stop_with_ctrl_c()
    finally:
        terminal.kill_leftovers()
    return code, terminal.output


def test_on_a_terminal_ctrl_c_reaches_only_the_command():
    code, output = _ctrl_c_once_ready([sys.executable, '-c', CALLER, CHILD])
    assert 'child got SIGINT' in output
    assert 'caller carried on, command exit code 0' in output, output
    assert 'KeyboardInterrupt' not in output
    assert code == 0


# A shell whose INT trap says so: a shell can not trap a signal it was started with ignored.
TRAPPING_SHELL = ('sleep 120 & trap "echo shell trapped SIGINT; kill $!; exit 0" INT; '
                  'echo child ready; wait')
# Ignores SIGINT, as a command run with `&` by a script does, then runs the command.
IGNORING_CALLER = 'import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n' + CALLER


def test_ctrl_c_reaches_a_shells_trap_when_the_caller_ignores_sigint():
    code, output = _ctrl_c_once_ready([sys.executable, '-c', IGNORING_CALLER.replace(
        "sys.executable, '-c'", "'bash', '-c'"), TRAPPING_SHELL])
    assert 'shell trapped SIGINT' in output, output
    assert 'caller carried on, command exit code 0' in output, output
    assert code == 0


def _states(sid):
    """{pid: state letter} of the processes of session `sid`."""
    states = {}
    for pid in helpers.session_processes(sid):
        try:
            with open('/proc/%d/stat' % pid, encoding='utf-8') as stat:
                states[pid] = stat.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
    return states


def _wait(condition, what, terminal):
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, (what, terminal.output)
        time.sleep(0.05)


def test_ctrl_z_stops_the_command_with_its_caller_and_fg_resumes_both(tmp_path):
    # An interactive bash runs the caller as a job, as when `make demo` is typed at a prompt.
    (tmp_path / 'caller.py').write_text(CALLER.replace('sys.argv[1]]',
                                                       'open(sys.argv[1]).read()]'))
    (tmp_path / 'child.py').write_text(CHILD)
    env = dict(os.environ, PS1='$ ', PYTHONPATH=helpers.REPO)
    terminal = helpers.Terminal(['bash', '--norc', '--noprofile', '-i'], cwd=str(tmp_path),
                                env=env)
    sid = terminal.process.pid

    def job():  # the processes of the session besides bash
        return {pid: state for pid, state in _states(sid).items() if pid != sid}

    try:
        os.write(terminal.master, b'%s caller.py child.py\n' % sys.executable.encode())
        _wait(lambda: 'child ready' in terminal.output, 'child ready', terminal)
        os.write(terminal.master, b'\x1a')  # Ctrl-Z
        _wait(lambda: 'Stopped' in terminal.output, 'bash saw the job stop', terminal)
        assert set(job().values()) == {'T'} and len(job()) == 3  # caller, foreground, child
        os.write(terminal.master, b'fg\n')
        _wait(lambda: 'T' not in job().values(), 'the job running again', terminal)
        terminal.ctrl_c()
        _wait(lambda: 'caller carried on' in terminal.output, 'the caller\'s line', terminal)
        os.write(terminal.master, b'exit\n')
        terminal.process.wait(60)
        terminal.close()
    finally:
        terminal.kill_leftovers()
    assert 'caller carried on, command exit code 0' in terminal.output, terminal.output


def test_without_a_terminal_the_command_runs_in_the_callers_group_and_its_code_is_returned():
    process = subprocess.Popen(
        [sys.executable, '-m', 'common.foreground', sys.executable, '-c',
         'import os, sys; print(os.getpgrp()); sys.exit(3)'],
        cwd=helpers.REPO, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True)  # no controlling terminal; its group id is its pid
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 3
    assert int(output) == process.pid


def test_a_command_ended_by_a_signal_gives_128_plus_its_number():
    assert foreground.run([sys.executable, '-c', 'import os, signal; '
                           'os.kill(os.getpid(), signal.SIGTERM)']) == 128 + 15
