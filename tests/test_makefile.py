"""The Makefile's demo targets: busy ports stop the demo at once; Ctrl-C stops both servers."""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from client import waiting
from tests import helpers

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _make(*args, **kwargs):
    """Starts make in its own process group with default signal handling, as a terminal would."""
    return subprocess.Popen(
        ['make', '--no-print-directory', '-C', str(ROOT), *args], start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_stops_before_any_work_when_a_port_is_busy(tmp_path):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = _make('demo', 'DEMO_DIR=%s' % tmp_path, 'GRPC_PORT=%d' % port,
                        'WEB_PORT=%d' % helpers.free_port())
        output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert 'port %d on 127.0.0.1 is already in use' % port in output
    assert 'GRPC_PORT=<port>' in output
    assert not (tmp_path / 'shapes_voc').exists()


def test_ctrl_c_stops_the_model_server_and_the_web_app_every_time(tmp_path):
    helpers.export_toy_model(str(tmp_path / 'exports' / 'ssd'), version=1)
    for _ in range(3):
        grpc_port, web_port = helpers.free_port(), helpers.free_port()
        process = _make('demo-serve', 'DEMO_DIR=%s' % tmp_path, 'GRPC_PORT=%d' % grpc_port,
                        'WEB_PORT=%d' % web_port)
        try:
            assert waiting.wait_for_url('http://127.0.0.1:%d/healthz' % web_port, 120,
                                        alive=lambda: process.poll() is None), \
                process.communicate(timeout=30)[0]
            os.killpg(process.pid, signal.SIGINT)
            os.killpg(process.pid, signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
            deadline = time.monotonic() + 10
            while _group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _group_alive(process.pid), output
            assert 'make: ***' not in output  # no 'Error 130' (or any error) on Ctrl-C
            # The web app starts once the model is served: no expected 503 in its log.
            assert '"GET /healthz HTTP/1.1" 503' not in output
            assert 'unavailable' not in output
        finally:
            if _group_alive(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
        for port in (grpc_port, web_port):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(('127.0.0.1', port))


def _dry_run(demo_dir, *knobs):
    result = subprocess.run(['make', '--no-print-directory', '-n', '-C', str(ROOT), 'demo',
                             'DEMO_DIR=%s' % demo_dir, 'PYTHON=true', *knobs],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_each_demo_knob_reruns_its_stage_and_what_follows(tmp_path):
    _dry_run(tmp_path)  # writes the knob files
    for knob in (tmp_path / '.knobs').iterdir():
        os.utime(knob, (time.time() - 200, time.time() - 200))
    outputs = ['shapes_voc/ImageSets/Main/test.txt', 'records/shapes_trainval_summary.json',
               'records/shapes_test_summary.json', 'train/.done', 'eval/metrics.json',
               'exports/ssd/1/saved_model.pb']
    now = time.time()
    for i, name in enumerate(outputs):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
        os.utime(tmp_path / name, (now - 100 + i, now - 100 + i))
    (tmp_path / 'train' / '.knobs').write_bytes((tmp_path / '.knobs' / 'model').read_bytes())
    assert 'train_ssd_network.py' not in _dry_run(tmp_path)
    more_steps = _dry_run(tmp_path, 'DEMO_TRAIN_STEPS=1200')
    assert 'train_ssd_network.py' in more_steps and 'export_model.py' in more_steps
    assert 'make_shapes_dataset.py' not in more_steps
    assert 'make_shapes_dataset.py' in _dry_run(tmp_path, 'DEMO_NUM_TRAIN=4000')
