"""The "Your own data" block of docs/data.md, run as a user pastes it: on a flat folder of generated
images with their XML side by side (no ImageSets), through conversion, training, evaluation,
export and `make serve`; then an upload to the page, and Ctrl-C."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from common import tf_logs
from datasets import make_shapes_dataset
from tests import helpers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')
# Lines that name a problem: TensorFlow's warning and error lines, Python warnings, logging
# warnings. Each must be one of the documented harmless lines.
PROBLEM = re.compile(r'^[WE]\d{4} |WARNING|Warning|deprecated|Traceback')


def _walkthrough_block():
    with open(os.path.join(helpers.REPO, 'docs', 'data.md'), encoding='utf-8') as page:
        text = page.read()
    return re.search(r'<!-- walkthrough:[^\n]*-->\n```\n(.*?)```', text, re.S).group(1)


def _with_values(block, values):
    """The block with its first assignments (DATA=..., ...) set to `values`."""
    for name, value in values.items():
        block, count = re.subn(r'\b%s=("[^"]*"|\S+)' % name, '%s=%s' % (name, value), block,
                               count=1, flags=re.M)
        assert count == 1, name
    return block


def _flat_folder(tmp_path):
    """20 shapes images (64-96 px) with their XML side by side, as LabelImg writes them."""
    voc = tmp_path / 'voc'
    make_shapes_dataset.make_dataset(str(voc), 20, 0, seed=4, side_range=(64, 96))
    flat = tmp_path / 'photos'
    flat.mkdir()
    for path in glob.glob(str(voc / 'JPEGImages' / '*')) + glob.glob(str(voc / 'Annotations' /
                                                                           '*')):
        shutil.copy(path, flat)
    return flat


def _get(url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def test_the_own_data_walkthrough_runs_as_written(tmp_path):
    # The walkthrough starts after `make venv` (its `make serve` would otherwise reinstall an
    # outdated .venv first, with pip's own output).
    subprocess.run(['make', '--no-print-directory', '-C', helpers.REPO, 'venv'],
                   capture_output=True, timeout=1200, check=True)
    flat = _flat_folder(tmp_path)
    work = tmp_path / 'work'
    grpc_port, web_port = helpers.free_port(), helpers.free_port()
    block = _with_values(_walkthrough_block(), {
        'DATA': flat, 'CLASSES': '"%s"' % ' '.join(CLASSES), 'WORK': work, 'STEPS': 2,
        'GRPC_PORT': grpc_port, 'WEB_PORT': web_port})
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    for name in ('TF_CPP_MIN_LOG_LEVEL', tf_logs.SWITCH):
        env.pop(name, None)  # as a user runs it
    terminal = helpers.Terminal(['bash', '-ec', block], env=env)
    sid = terminal.process.pid
    try:
        deadline = time.monotonic() + 1500
        while 'Ctrl-C stops' not in terminal.output:
            assert terminal.process.poll() is None, terminal.output
            assert time.monotonic() < deadline, terminal.output
            time.sleep(0.5)
        url = 'http://127.0.0.1:%d' % web_port
        model = json.loads(_get(url + '/api/v1/model')[1])
        assert [model['classes'][str(i)] for i in range(1, 6)] == list(CLASSES)
        with open(glob.glob(str(flat / '*.jpg'))[0], 'rb') as image:
            status, body = _get(url + '/api/v1/detect', image.read(),
                                {'Content-Type': 'image/jpeg'})
        answer = json.loads(body)
        assert status == 200 and 'detections' in answer and 'below_threshold' in answer
        assert _get(url + '/')[0] == 200
        code = terminal.stop_with_ctrl_c()
    finally:
        terminal.kill_leftovers()
    output = terminal.output
    assert code == 0, output
    assert 'make: ***' not in output and not helpers.session_processes(sid)
    # The split files were written into the folder, 18 + 2 images; each stage left its output.
    main = flat / 'ImageSets' / 'Main'
    assert [len((main / name).read_text().split()) for name in ('trainval.txt', 'test.txt')] \
        == [18, 2]
    assert 'train or evaluate on them with --dataset_dir=%s --dataset_name=mydata ' \
        '--dataset_split_name=trainval' % (work / 'records') in output
    assert json.loads((work / 'eval' / 'metrics.json').read_text())['num_images'] == 2
    assert (work / 'exports' / 'mydata' / '1' / 'saved_model.pb').exists()
    # Quiet logs: every line naming a problem is a documented harmless one; the banner comes
    # once per TensorFlow process (2 conversions, training, evaluation, export, model server).
    documented = [entry.text for entry in tf_logs.HARMLESS]
    problems = [line for line in output.splitlines() if PROBLEM.search(line)
                and not any(text in line for text in documented)]
    assert not problems, problems
    assert output.count(tf_logs.NO_CUDA_DRIVERS) <= 6
