"""A small run of bench/web_load.py: gunicorn in front of the real model server, zero errors."""
import os
import re
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     'bench', 'web_load.py')


@pytest.mark.slow
def test_small_load_under_gunicorn(model_server):
    result = subprocess.run(
        [sys.executable, BENCH, f'--serving_address={model_server.address}', '--requests=40',
         '--concurrency=4', '--workers=2', '--warmup=2'],
        capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'ok 40  errors 0' in result.stdout
    match = re.search(r'p50 ([\d.]+) .*p99 ([\d.]+)', result.stdout)
    assert match and 0 < float(match.group(1)) <= float(match.group(2))
    assert 'machine: ' in result.stdout and 'TensorFlow' in result.stdout


def test_bench_flags_are_validated():
    result = subprocess.run([sys.executable, BENCH, '--requests=0'], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2 and '--requests must be >= 1' in result.stderr
    result = subprocess.run([sys.executable, BENCH, '--url=http://x', '--serving_address=y:1'],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and 'at most one of' in result.stderr
