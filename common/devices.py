"""Whether this machine has GPUs, found without TensorFlow (asking it initialises CUDA).

On a machine without an NVIDIA driver, TensorFlow's first session or server tries to
initialise CUDA and logs `failed call to cuInit: ... CUDA error` at error level, which
alarms newcomers although nothing is wrong. A session config with no GPU devices skips that
initialisation; `without_absent_gpus` gives one to the processes that only run sessions and
servers: the model server, `detect_image --saved_model` and a cluster's task servers. A
process that builds graph functions (tf.data, map_fn: training, evaluation, export) gets the
line once anyway, from TensorFlow's eager context, which probes every platform and takes no
device count (TensorFlow issue 37689), so it is not applied there; docs/troubleshooting.md says so.
"""
import os

NVIDIA_DRIVER = '/proc/driver/nvidia/version'


def gpus_visible(environ=None, driver=NVIDIA_DRIVER):
    """Whether an NVIDIA driver is installed and CUDA_VISIBLE_DEVICES does not hide its GPUs."""
    environ = os.environ if environ is None else environ
    return os.path.exists(driver) and environ.get('CUDA_VISIBLE_DEVICES', '0') not in ('', '-1')


def without_absent_gpus(config, environ=None, driver=NVIDIA_DRIVER):
    """`config` (a tf.compat.v1.ConfigProto, changed in place) with no GPU devices when
    `gpus_visible` is false; returns it. On a GPU machine it is left as it is."""
    if not gpus_visible(environ, driver):
        config.device_count['GPU'] = 0
    return config
