"""Tests for common/devices.py."""
import subprocess
import sys

from common import devices


class _Config:
    """The part of a ConfigProto that devices touches."""

    def __init__(self):
        self.device_count = {}


def test_gpus_visible_needs_the_driver_and_visible_devices(tmp_path):
    driver = tmp_path / 'version'
    assert not devices.gpus_visible({}, str(driver))
    driver.write_text('NVRM version: 550.54')
    assert devices.gpus_visible({}, str(driver))
    assert devices.gpus_visible({'CUDA_VISIBLE_DEVICES': '0,1'}, str(driver))
    assert not devices.gpus_visible({'CUDA_VISIBLE_DEVICES': ''}, str(driver))
    assert not devices.gpus_visible({'CUDA_VISIBLE_DEVICES': '-1'}, str(driver))


def test_without_absent_gpus_sets_no_gpu_devices_only_without_gpus(tmp_path):
    driver = tmp_path / 'version'
    config = _Config()
    assert devices.without_absent_gpus(config, {}, str(driver)) is config
    assert config.device_count == {'GPU': 0}
    driver.write_text('NVRM version: 550.54')
    config = _Config()
    assert devices.without_absent_gpus(config, {}, str(driver)).device_count == {}


def test_a_session_with_that_config_does_not_initialise_cuda():
    """Run in a fresh process: the CUDA initialisation happens once per process."""
    code = ('import tensorflow as tf\n'
            'from common import devices\n'
            'tf.compat.v1.disable_eager_execution()\n'
            'config = devices.without_absent_gpus(tf.compat.v1.ConfigProto())\n'
            'with tf.compat.v1.Session(config=config) as session:\n'
            '    print(session.run(tf.constant(3)))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == '3'
    if not devices.gpus_visible():
        assert 'failed call to cuInit' not in result.stderr
