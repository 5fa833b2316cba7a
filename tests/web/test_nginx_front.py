"""The nginx front (web/nginx/default.conf.template): 40 clients trickling request heads at
1 byte/s do not delay the /healthz probe (bench/slow_clients.py, nginx front only): nginx reads
the slow requests, gunicorn's threads stay free."""
import os
import re
import subprocess
import sys

import pytest

from web import nginx_front

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_template_renders_the_port_and_upstream_and_keeps_nginx_variables():
    text = nginx_front.render(8080, '127.0.0.1:5000')
    assert 'listen 8080;' in text and 'server 127.0.0.1:5000;' in text
    assert '${' not in text and '$proxy_add_x_forwarded_for' in text


@pytest.mark.slow
@pytest.mark.skipif(nginx_front.executable() is None, reason='nginx is not installed (make nginx)')
def test_slow_clients_do_not_delay_the_probe_behind_nginx():
    result = subprocess.run(
        [sys.executable, '-m', 'bench.slow_clients', '--fronts=nginx', '--clients=40',
         '--seconds=3', '--workers=1', '--threads=2'],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    probes, unanswered, worst = re.search(
        r'^nginx : /healthz probes (\d+), unanswered (\d+), p50 [\d.]+ ms, max ([\d.]+) ms',
        result.stdout, re.M).groups()
    assert int(probes) >= 3 and int(unanswered) == 0, output
    assert float(worst) < 1000, output  # Kubernetes' probe timeout (web/k8s/web.yaml)
