"""serving.model_server --precision: refused where it cannot run, applied to every version."""
import numpy as np
import pytest

from client import tensor_proto
from common import devices, precision
from serving import model_server
from serving.model_manager import ModelManager


def test_mixed_float16_is_refused_without_a_gpu(capsys):
    if devices.gpus_visible():
        pytest.skip('this machine has a GPU')
    with pytest.raises(SystemExit) as exit_info:
        model_server._parse_args(['--model_base_path=/models/ssd', '--precision=mixed_float16'])
    assert exit_info.value.code == 2
    assert '--precision=mixed_float16 needs a GPU' in capsys.readouterr().err


def test_default_is_float32():
    args = model_server._parse_args(['--model_base_path=/models/ssd'])
    assert args.precision == 'float32'
    config = model_server._load_tensorflow(args.precision)[2]
    assert not config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16


def _scores(base, precision_name, images):
    config = model_server._load_tensorflow(precision_name)[2]
    manager = ModelManager('ssd', base, session_config=config)
    manager.start()
    try:
        loaded = manager.acquire('ssd')
        try:
            return loaded.run('serving_default',
                              {'images': tensor_proto.make_tensor_proto(images)})['scores']
        finally:
            loaded.release()
    finally:
        manager.stop()


def test_bfloat16_rewrite_runs_the_served_versions(toy_base, toy):
    try:
        precision.check('mixed_bfloat16', 0)
    except ValueError as error:
        pytest.skip(str(error))
    images = np.random.default_rng(0).uniform(-1, 1, [2, 4, 4, 3]).astype(np.float32)
    expected = toy.outputs(images)[0]
    np.testing.assert_allclose(_scores(toy_base, 'float32', images), expected, atol=1e-6)
    mixed = _scores(toy_base, 'mixed_bfloat16', images)
    # The toy's matmul runs in bfloat16 (8 bits of mantissa): close, but not float32's numbers.
    np.testing.assert_allclose(mixed, expected, atol=0.05)
    assert np.abs(mixed - expected).max() > 1e-5
