"""The Makefile's demo targets: busy ports stop the demo at once; Ctrl-C stops both servers
and exits 0."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from client import waiting
from tests import helpers

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _make(*args, **kwargs):
    """Starts make in its own process group with default signal handling, as a terminal would."""
    return subprocess.Popen(
        helpers.with_default_sigint(['make', '--no-print-directory', '-C', str(ROOT), *args]),
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        **kwargs)


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


def _ready_demo_dir(demo_dir):
    """A demo folder whose stages are all up to date, with the toy export as the model."""
    _dry_run(demo_dir)  # writes the knob files
    stages = ['shapes_voc/ImageSets/Main/test.txt', 'records/shapes_trainval_summary.json',
              'records/shapes_test_summary.json', 'train/.done', 'eval/metrics.json']
    now = time.time()
    for knob in (demo_dir / '.knobs').iterdir():
        os.utime(knob, (now - 200, now - 200))
    for i, name in enumerate(stages):
        (demo_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (demo_dir / name).touch()
        os.utime(demo_dir / name, (now - 100 + i, now - 100 + i))
    (demo_dir / 'train' / '.knobs').write_bytes((demo_dir / '.knobs' / 'model').read_bytes())
    helpers.export_toy_model(str(demo_dir / 'exports' / 'ssd'), version=1)


def test_ctrl_c_on_make_demo_and_demo_serve_exits_0_ten_times_in_a_row(tmp_path):
    _ready_demo_dir(tmp_path)
    assert 'train_ssd_network.py' not in _dry_run(tmp_path)
    for run in range(10):
        goal = ('demo', 'demo-serve')[run % 2]
        grpc_port, web_port = helpers.free_port(), helpers.free_port()
        terminal = helpers.Terminal(['make', '--no-print-directory', '-C', str(ROOT), goal,
                                     'DEMO_DIR=%s' % tmp_path, 'GRPC_PORT=%d' % grpc_port,
                                     'WEB_PORT=%d' % web_port])
        sid = terminal.process.pid
        try:
            assert waiting.wait_for_url('http://127.0.0.1:%d/healthz' % web_port, 180,
                                        alive=lambda: terminal.process.poll() is None), \
                terminal.output
            deadline = time.monotonic() + 30
            while 'Ctrl-C stops' not in terminal.output and time.monotonic() < deadline:
                time.sleep(0.1)
            code = terminal.stop_with_ctrl_c()
            output = terminal.output
            assert code == 0, (run, goal, output)
            assert 'make: ***' not in output, (run, goal, output)
            left = helpers.session_processes(sid)
            assert not left, (run, goal, helpers.describe_processes(left), output)
            # The web app starts once the model is served: no expected 503 in its log.
            assert '"GET /healthz HTTP/1.1" 503' not in output
            assert 'unavailable' not in output
        finally:
            terminal.kill_leftovers()
        for port in (grpc_port, web_port):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(('127.0.0.1', port))


def test_tensorboard_shows_training_and_evaluation_scalars_together(tmp_path):
    import tensorflow as tf  # only this test writes event files
    dirs = {'train': tmp_path / 'train', 'eval': tmp_path / 'eval'}
    tags = {'train': 'total_loss', 'eval': 'eval/mAP_voc07'}
    for run, folder in dirs.items():
        with tf.Graph().as_default(), tf.compat.v1.summary.FileWriter(str(folder)) as writer:
            writer.add_summary(tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
                tag=tags[run], simple_value=0.5)]), 10)
    port = helpers.free_port()
    process = _make('tensorboard', 'TRAIN_DIR=%s' % dirs['train'],
                    'EVAL_DIR=%s' % dirs['eval'], 'TB_PORT=%d' % port)
    found = {}

    def both_shown():
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/data/plugin/scalars/tags' % port,
                                        timeout=5) as response:
                found.update(json.loads(response.read()))
        except (urllib.error.URLError, OSError):
            return False
        # Runs are named after the logdir_spec names: 'train/.' and 'eval/.'.
        return {(run.split('/')[0], tag) for run, run_tags in found.items()
                for tag in run_tags} >= set(tags.items())

    try:
        assert waiting.poll(both_shown, 180, 0.5, alive=lambda: process.poll() is None), found
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=60)


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
