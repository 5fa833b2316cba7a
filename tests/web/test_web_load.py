"""A small run of bench/web_load.py: gunicorn in front of the real model server, zero errors."""
import io
import os
import re
import subprocess
import sys

import PIL.Image
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = [sys.executable, '-m', 'bench.web_load']  # run from ROOT, as the README says


@pytest.mark.slow
def test_small_load_under_gunicorn(model_server):
    result = subprocess.run(
        BENCH + [f'--serving_address={model_server.address}', '--requests=40',
         '--concurrency=4', '--workers=2', '--warmup=2'],
        capture_output=True, text=True, cwd=ROOT, timeout=400, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'ok 40  errors 0' in result.stdout
    match = re.search(r'p50 ([\d.]+) .*p99 ([\d.]+)', result.stdout)
    assert match and 0 < float(match.group(1)) <= float(match.group(2))
    assert 'machine: ' in result.stdout and 'TensorFlow' in result.stdout


def test_bench_flags_are_validated():
    result = subprocess.run(BENCH + ['--requests=0'], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, check=False)
    assert result.returncode == 2 and '--requests must be >= 1' in result.stderr
    result = subprocess.run(BENCH + ['--url=http://x', '--serving_address=y:1'],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2 and 'at most one of' in result.stderr
    result = subprocess.run(BENCH + ['--image=huge'], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, check=False)
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr
    result = subprocess.run(BENCH + ['--kill'], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, check=False)
    assert result.returncode == 2 and '--kill and --stop need --servers >= 2' in result.stderr
    result = subprocess.run(BENCH + ['--servers=2', '--kill', '--stop=10'], capture_output=True,
                            text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2 and '--kill or --stop, not both' in result.stderr
    result = subprocess.run(BENCH + ['--servers=2', '--serving_address=y:1'], capture_output=True,
                            text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2 and 'start their own model servers' in result.stderr


def test_phase_latencies_split_at_kill_and_restart():
    from bench import web_load
    results = [(200, 0.010, 1.0), (200, 0.030, 2.0), (0, 0.5, 2.5), (200, 0.020, 3.0),
               (200, 0.040, 5.0), (503, 0.1, 6.0)]
    phases = web_load.phase_latencies(results, fault_at=2.0, back_at=4.0)
    assert phases == {'before': [10.0], 'during': [20.0, 30.0], 'after': [40.0]}


def test_large_test_images():
    from bench import web_load
    with PIL.Image.open(io.BytesIO(web_load.large_png())) as image:
        assert (image.format, image.size) == ('PNG', (6000, 6000))
    with PIL.Image.open(io.BytesIO(web_load.large_jpeg())) as image:
        assert (image.format, image.size) == ('JPEG', (6000, 4000))
