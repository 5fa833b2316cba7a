"""Fault injection into the fleet: two local model servers on the toy export behind gunicorn
(SERVING_ADDRESS=a:p,b:q), a bounded load of 4 clients, and one server SIGSTOPped for 10 s then
SIGCONTed (bench/web_load.py --servers 2 --stop 10): >= 95 % of the requests succeed, none
takes longer than the overall deadline (SERVING_TIMEOUT 4 s; attempts of 1 s), and /healthz,
probed every 0.1 s, answers 200 within 0.5 s throughout."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING_TIMEOUT_S = 4.0


@pytest.mark.slow
def test_sigstop_of_one_replica_for_10_s(toy_base):
    # 2 workers x 8 threads for 4 clients: the probe always finds a free thread.
    result = subprocess.run(
        [sys.executable, '-m', 'bench.web_load', f'--model_base_path={toy_base}', '--servers=2',
         '--stop=10', '--requests=60', '--concurrency=4', '--workers=2', '--threads=8',
         '--warmup=4', '--after_seconds=2', f'--serving_timeout={SERVING_TIMEOUT_S}',
         '--attempt_timeout=1', '--min_success=0.95'],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    phases = {name: int(ok) for name, ok in re.findall(
        r'^ +(before|during|after) *: +(\d+) ok', result.stdout, re.M)}
    assert phases['during'] >= 20 and phases['after'] >= 20, output  # served while stopped
    success, longest = re.search(r'^success ([\d.]+)%, longest request ([\d.]+) ms',
                                 result.stdout, re.M).groups()
    assert float(success) >= 95.0, output
    assert float(longest) < 1e3 * SERVING_TIMEOUT_S, output
    probes, failed, worst = re.search(
        r'^/healthz: (\d+) probes, (\d+) not 200, p50 [\d.]+ ms, max ([\d.]+) ms',
        result.stdout, re.M).groups()
    assert int(probes) >= 50 and int(failed) == 0, output  # every 0.1 s or so for 12 s
    assert float(worst) < 500, output
