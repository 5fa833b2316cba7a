"""deployment.flag_checks: each failure names its flag."""
import types

import pytest

from deployment import flag_checks


def _flags(tmp_path, **overrides):
    values = dict(dataset_dir=str(tmp_path), model_name='ssd_300_vgg', batch_size=8,
                  weight_decay=0.0, moving_average_decay=None)
    values.update(overrides)
    return types.SimpleNamespace(**values)


def test_valid_flags_pass(tmp_path):
    f = _flags(tmp_path)
    flag_checks.required(f, ['dataset_dir', 'model_name'])
    flag_checks.dataset_and_model(f)
    flag_checks.positive(f, ['batch_size'])
    flag_checks.non_negative(f, ['weight_decay'])
    flag_checks.moving_average_decay(f)
    flag_checks.moving_average_decay(_flags(tmp_path, moving_average_decay=0.999))


@pytest.mark.parametrize('check, overrides, message', [
    (lambda f: flag_checks.required(f, ['dataset_dir']), {'dataset_dir': ''}, '--dataset_dir is required'),
    (flag_checks.dataset_and_model, {'dataset_dir': '/no/such/dir'}, '--dataset_dir /no/such/dir'),
    (flag_checks.dataset_and_model, {'model_name': 'ssd_301'}, "--model_name must be one of"),
    (lambda f: flag_checks.positive(f, ['batch_size']), {'batch_size': 0}, '--batch_size must be > 0'),
    (lambda f: flag_checks.non_negative(f, ['weight_decay']), {'weight_decay': -1e-4},
     '--weight_decay must be >= 0'),
    (flag_checks.moving_average_decay, {'moving_average_decay': 1.0}, '--moving_average_decay'),
])
def test_bad_value_names_the_flag(tmp_path, check, overrides, message):
    with pytest.raises(ValueError, match=message):
        check(_flags(tmp_path, **overrides))
