"""Starting and stopping `python -m serving.model_server` processes (tests, benchmarks, demos).

Each process is started from the repository root on 127.0.0.1 and stopped by its process id.
"""
import os
import signal
import subprocess
import sys

from client import waiting
from common import ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_model_server(base, port=None, flags=(), log=subprocess.DEVNULL, env=None):
    """Starts `python -m serving.model_server` on 127.0.0.1.

    Args:
        base: model base path.
        port: gRPC port (None: a free one).
        flags: more command-line flags.
        log: where stdout and stderr go (a file object, subprocess.PIPE or DEVNULL).
        env: environment (None: this one).

    Returns:
        (process, 'host:port'); wait for it with wait_until_serving.
    """
    port = ports.free_port() if port is None else port
    command = [sys.executable, '-m', 'serving.model_server', '--host=127.0.0.1',
               '--port=%d' % port, '--model_base_path=%s' % base, *flags]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, '127.0.0.1:%d' % port


def wait_until_serving(address, process=None, deadline_s=180.0, model_name='ssd'):
    """Waits until a version of the model is AVAILABLE (bounded; no fixed sleeps).

    Raises:
        RuntimeError: the process exited, or nothing was served within deadline_s.
    """
    alive = None if process is None else (lambda: process.poll() is None)
    if waiting.wait_until_available(address, model_name, deadline_s, interval_s=0.1,
                                    alive=alive):
        return
    if process is not None and process.poll() is not None:
        raise RuntimeError('model server exited with %d' % process.returncode)
    raise RuntimeError('model server at %s not serving after %.0f s' % (address, deadline_s))


def stop_process(process, timeout=30.0):
    """Stops a process by its pid: SIGTERM, SIGKILL after timeout seconds. Returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
