"""Tests for common/normalization.py: the kinds, their JSON form and its checks."""
import pytest

from common import normalization


@pytest.mark.parametrize('kind', sorted(normalization.KINDS))
def test_round_trip_through_dict(kind):
    value = normalization.KINDS[kind]
    assert normalization.from_dict(normalization.to_dict(kind)) == value
    assert normalization.get(kind) is value and normalization.get(value) is value


def test_vgg_mean_numbers():
    assert normalization.to_dict('vgg_mean') == {
        'name': 'vgg_mean', 'mean': [123.0, 117.0, 104.0], 'std': [1.0, 1.0, 1.0],
        'channel_order': 'rgb'}


@pytest.mark.parametrize('change, message', [
    ({'mean': [1, 2]}, 'mean must be 3 finite numbers'),
    ({'std': [1, 0, 1]}, 'std must be > 0'),
    ({'std': [1, float('nan'), 1]}, 'std must be 3 finite numbers'),
    ({'channel_order': 'grb'}, 'channel_order must be one of rgb, bgr'),
    ({'name': ''}, 'name must be a non-empty string'),
])
def test_malformed_dicts_are_named(change, message):
    data = {**normalization.to_dict('vgg_mean'), **change}
    with pytest.raises(normalization.NormalizationError, match=message):
        normalization.from_dict(data)


def test_missing_field_and_unknown_name():
    with pytest.raises(normalization.NormalizationError, match='missing field.*channel_order'):
        normalization.from_dict({'name': 'x', 'mean': [0, 0, 0], 'std': [1, 1, 1]})
    with pytest.raises(normalization.NormalizationError, match='unknown normalization'):
        normalization.get('imagenet')
