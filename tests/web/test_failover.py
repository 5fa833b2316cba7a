"""Failover under load: two local model servers behind gunicorn on 127.0.0.1, one
SIGKILLed mid-run and started again (bench/web_load.py --servers 2 --kill, on the toy export):
no request fails, every phase is answered, and requests reach the restarted server again."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_sigkill_of_one_replica_fails_no_request(toy_base):
    # 240 requests bound the phases before the kill and after the restart; while the server
    # restarts (its TensorFlow import and model load) the clients go on against the other one.
    result = subprocess.run(
        [sys.executable, '-m', 'bench.web_load', f'--model_base_path={toy_base}', '--servers=2',
         '--kill', '--requests=240', '--concurrency=8', '--workers=2', '--warmup=4',
         '--after_seconds=3'],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r'^ok \d+  errors 0 $', result.stdout, re.M), output
    phases = {name: (int(ok), float(p50), float(p99)) for name, ok, p50, p99 in re.findall(
        r'^ +(before|during|after) *: +(\d+) ok, p50 ([\d.]+) ms, p99 ([\d.]+) ms',
        result.stdout, re.M)}
    assert set(phases) == {'before', 'during', 'after'}, output
    assert phases['before'][0] >= 80 and phases['during'][0] > 0, output
    assert phases['after'][0] >= 80, output
    assert all(0 < p50 <= p99 for _, p50, p99 in phases.values()), output
    restarted, other = map(float, re.search(
        r'restarted server ([\d.]+), other server ([\d.]+)', result.stdout).groups())
    # Round-robin: once its channels reconnect, the restarted server does its share of the work.
    assert restarted > 0.25 * other > 0, output
