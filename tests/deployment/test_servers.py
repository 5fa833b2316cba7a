"""Tests for deployment/servers.py: the task's server and its sessions' configuration."""
import pytest

from deployment import cluster, servers
from tests import helpers

JOBS = {'worker': ['127.0.0.1:%d' % helpers.free_port()],
        'ps': ['127.0.0.1:%d' % helpers.free_port()]}


@pytest.mark.parametrize('address, interfaces, expected', [
    ('127.0.0.1:2222', ['lo', 'eth0'], "the cluster gives this task 127.0.0.1:2222, but "
     "TensorFlow's server listens on port 2222 of every interface (eth0) and has no "
     "authentication: keep this machine's network private, or start the cluster with "
     "python -m deployment.local_cluster (a network of its own)"),
    ('localhost:2222', ['lo', 'eth0', 'wlan0'], 'of every interface (eth0, wlan0)'),
    ('[::1]:2222', ['lo', 'eth0'], 'listens on port 2222 of every interface (eth0)'),
    ('127.0.0.1:2222', ['lo'], None),                    # a network of its own
    ('10.0.0.5:2222', ['lo', 'eth0'], None),             # meant for the network
    ('ssd-train-ps-0.default.svc:2222', ['lo', 'eth0'], None),
])
def test_a_loopback_task_reachable_from_other_networks_is_warned_about(address, interfaces,
                                                                       expected):
    warning = servers.exposure_warning(address, interfaces)
    if expected is None:
        assert warning is None
    else:
        assert expected in warning


def test_session_config_filters_devices_and_bounds_operations():
    task = cluster.Cluster(JOBS, 'worker', 0)
    config = servers.session_config(task, servers.server_config(2), 15)
    assert list(config.device_filters) == ['/job:ps', '/job:worker/task:0']
    assert config.operation_timeout_in_ms == 15000
    assert config.device_count['CPU'] == 2
    assert servers.session_config(task).operation_timeout_in_ms == 0

