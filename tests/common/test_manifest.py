"""common/manifest.py: what build() writes parses back; a malformed manifest names its field."""
import json

import pytest

from common import manifest, normalization, np_post_processing
from common.version import VERSION


def _manifest(**changes):
    data = manifest.build('ssd_300_vgg', (300, 300), normalization.VGG_MEAN, 8732,
                          ['background', 'circle', 'square'], np_post_processing.DEFAULTS,
                          'float32', '/train/model.ckpt-600', 600)
    data.update(changes)
    return data


def test_round_trip():
    parsed = manifest.parse(manifest.to_json(_manifest()))
    assert parsed.network == 'ssd_300_vgg'
    assert parsed.input_size == (300, 300)
    assert parsed.normalization == normalization.VGG_MEAN
    assert parsed.num_anchors == 8732
    assert parsed.class_names == ('background', 'circle', 'square')
    assert parsed.post_processing == dict(np_post_processing.DEFAULTS)
    assert parsed.checkpoint == {'path': '/train/model.ckpt-600', 'step': 600}
    assert parsed.project_version == VERSION
    assert manifest.parse(manifest.to_json(_manifest()).encode('utf-8')) == parsed


@pytest.mark.parametrize('text, message', [
    ('{"format": 1', 'not valid JSON'),
    ('[1, 2]', 'must be a JSON object'),
    (json.dumps(_manifest(format=2)), 'format 2 is not supported'),
    (json.dumps({k: v for k, v in _manifest().items() if k != 'network'}),
     "missing field 'network'"),
    (json.dumps(_manifest(input_size=[300])), "'input_size' must be"),
    (json.dumps(_manifest(num_anchors=0)), "'num_anchors' must be a positive integer"),
    (json.dumps(_manifest(num_classes=4)), 'num_classes is 4 but class_names has 3'),
    (json.dumps(_manifest(normalization={'name': 'x', 'mean': [1, 2, 3], 'std': [1, 1, 1],
                                         'channel_order': 'xyz'})),
     'normalization.channel_order must be one of'),
    (json.dumps(_manifest(post_processing={'nms_threshold': 0.45})),
     'post_processing lacks select_threshold'),
    (json.dumps(_manifest(post_processing=dict(np_post_processing.DEFAULTS, keep_top_k='x'))),
     'post_processing.keep_top_k must be a number'),
])
def test_malformed_manifests_are_refused_naming_the_field(text, message):
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.parse(text)
