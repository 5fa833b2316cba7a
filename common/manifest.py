"""The export manifest: the JSON that says how to use an SSD export (no TensorFlow).

Every export version carries it twice: as the file `assets.extra/ssd_manifest.json` (for
people and tools reading the folder) and as the output `manifest` of the `detect`
signature (string [batch], the same JSON per image), which is how it reaches a client
through TF Serving: TF Serving's GetModelMetadata returns only signatures, never asset
files, while a Predict on `detect` with one empty string as input and
`output_filter=['manifest']` computes only that constant (no image is decoded), on TF
Serving and on the local model server alike.

Fields: format, network, input_size [H, W], normalization {name, mean, std,
channel_order}, num_anchors, num_classes, class_names (index = class id),
post_processing {select_threshold, nms_threshold, pre_nms_top_k, keep_top_k}, precision,
checkpoint {path, step}, project_version; for the record (the graph applies them, a client
needs neither) anchors {sizes, ratios, steps, offset, clip} and box_coding {order,
variances}, which tell the variants of one network apart (an imported detector's data).
"""
import collections
import json

from common import normalization as normalization_lib
from common.version import VERSION

FORMAT = 1
FILENAME = 'assets.extra/ssd_manifest.json'
POST_PROCESSING_FIELDS = ('select_threshold', 'nms_threshold', 'pre_nms_top_k', 'keep_top_k')

Manifest = collections.namedtuple('Manifest', [
    'network',          # nets_factory name, e.g. 'ssd_300_vgg'.
    'input_size',       # (height, width) of the `images` input.
    'normalization',    # common.normalization.Normalization.
    'num_anchors',      # A of the `scores` / `boxes` outputs.
    'class_names',      # tuple of num_classes names, index = class id (0: background).
    'post_processing',  # dict of np_post_processing.postprocess keyword arguments.
    'precision',        # --precision of the export.
    'checkpoint',       # {'path', 'step'} of the exported checkpoint.
    'project_version',  # version of the project that exported it.
])


class ManifestError(ValueError):
    """A malformed manifest; the message names the field."""


def build(network, input_size, normalization, num_anchors, class_names, post_processing,
          precision, checkpoint_path, step, geometry=None):
    """The manifest of an export as a JSON-ready dict.

    Args:
      network: network name.
      input_size: (height, width).
      normalization: common.normalization.Normalization (or its name).
      num_anchors: anchors of the network.
      class_names: list of names, index = class id.
      post_processing: postprocess keyword arguments of the `detect` signature.
      precision: the export's --precision.
      checkpoint_path: the exported checkpoint.
      step: its global step, or None when the checkpoint has none.
      geometry: optional {'anchors': {...}, 'box_coding': {...}} (nets.ssd_params.geometry).
    """
    return {
        **(geometry or {}),
        'format': FORMAT,
        'network': network,
        'input_size': [int(v) for v in input_size],
        'normalization': normalization_lib.to_dict(normalization),
        'num_anchors': int(num_anchors),
        'num_classes': len(class_names),
        'class_names': list(class_names),
        'post_processing': {name: post_processing[name] for name in POST_PROCESSING_FIELDS},
        'precision': precision,
        'checkpoint': {'path': checkpoint_path, 'step': None if step is None else int(step)},
        'project_version': VERSION,
    }


def to_json(manifest):
    """The manifest dict as JSON text (sorted keys, one trailing newline)."""
    return json.dumps(manifest, indent=2, sort_keys=True) + '\n'


def _field(data, name, kind, check=None, what=None):
    if name not in data:
        raise ManifestError('manifest: missing field %r' % name)
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool) or (check and not check(value)):
        raise ManifestError('manifest: field %r must be %s, got %r' % (name, what, value))
    return value


def _positive_int(value):
    return value >= 1


def parse(text):
    """Reads and checks a manifest.

    Args:
      text: JSON text (str or UTF-8 bytes).

    Returns:
      Manifest.

    Raises:
      ManifestError: not JSON, another format, or a missing or invalid field (named).
    """
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError('manifest is not valid JSON (%s)' % e) from None
    if not isinstance(data, dict):
        raise ManifestError('manifest must be a JSON object, got %s' % type(data).__name__)
    if data.get('format') != FORMAT:
        raise ManifestError('manifest format %r is not supported (this version reads %d)'
                            % (data.get('format'), FORMAT))
    network = _field(data, 'network', str, bool, 'a non-empty string')
    size = _field(data, 'input_size', list,
                  lambda v: len(v) == 2 and all(isinstance(x, int) and x >= 1 for x in v),
                  '[height, width] of positive integers')
    try:
        normalization = normalization_lib.from_dict(data.get('normalization'))
    except normalization_lib.NormalizationError as e:
        raise ManifestError('manifest: %s' % e) from None
    num_anchors = _field(data, 'num_anchors', int, _positive_int, 'a positive integer')
    names = _field(data, 'class_names', list,
                   lambda v: len(v) >= 2 and all(isinstance(x, str) for x in v),
                   'a list of at least 2 strings')
    num_classes = _field(data, 'num_classes', int, _positive_int, 'a positive integer')
    if num_classes != len(names):
        raise ManifestError('manifest: num_classes is %d but class_names has %d names'
                            % (num_classes, len(names)))
    post = _field(data, 'post_processing', dict, None, 'an object')
    missing = [name for name in POST_PROCESSING_FIELDS if name not in post]
    if missing:
        raise ManifestError('manifest: post_processing lacks %s' % ', '.join(missing))
    for name in POST_PROCESSING_FIELDS:
        value = post[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ManifestError('manifest: post_processing.%s must be a number >= 0, got %r'
                                % (name, value))
    precision = _field(data, 'precision', str, bool, 'a non-empty string')
    checkpoint = _field(data, 'checkpoint', dict, None, 'an object')
    version = _field(data, 'project_version', str, None, 'a string')
    return Manifest(network, tuple(size), normalization, num_anchors, tuple(names),
                    {name: post[name] for name in POST_PROCESSING_FIELDS}, precision,
                    dict(checkpoint), version)
