"""torchvision's `ssd300_vgg16` state dict: its key layout and how to read a `.pth` file.

The layout (torchvision/models/detection/ssd.py, SSDFeatureExtractorVGG and SSDHead):
`backbone.features.N` is VGG-16's `features` up to conv4_3 (conv layers at 0, 2, 5, 7, 10, 12,
14, 17, 19, 21; pool3 in ceil mode), `backbone.scale_weight` the conv4_3 L2-norm scale,
`backbone.extra.0` pool4, conv5_1..conv5_3 (1, 3, 5) and, at 7, pool5 + conv6 (7.1, dilation 6)
+ conv7 (7.3); `backbone.extra.1..4` the extra blocks (1x1 at .0, 3x3 at .2);
`head.regression_head.module_list.i` / `head.classification_head.module_list.i` the 3x3 heads
of feature layer i. Weights are [out, in, kh, kw]. Only numpy is needed here; reading a file
needs torch (the optional extra).
"""
from importers import errors, vgg_layers

TORCH_EXTRA = 'pip install ".[torch]" (or pip install -r requirements-torch.txt)'
SOURCE = 'torchvision'
# VGG-16 `features` indices of conv1_1 ... conv4_3.
_FEATURE_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)
# backbone.extra.0 indices of conv5_1 ... conv5_3, then conv6 and conv7 inside the fc block.
_CONV5 = (1, 3, 5)
_CONV6, _CONV7 = '7.1', '7.3'
NUM_FEATURE_LAYERS = 6
SCALE_KEY = 'backbone.scale_weight'


def layer_keys(num_feature_layers=NUM_FEATURE_LAYERS):
    """Project layer name -> torchvision module key (without `.weight` / `.bias`)."""
    backbone = (['backbone.features.%d' % i for i in _FEATURE_CONVS]
                + ['backbone.extra.0.%d' % i for i in _CONV5]
                + ['backbone.extra.0.' + _CONV6, 'backbone.extra.0.' + _CONV7])
    keys = dict(zip(vgg_layers.BACKBONE, backbone))
    extras = vgg_layers.extra_layers(num_feature_layers)
    for index, name in enumerate(extras):
        keys[name] = 'backbone.extra.%d.%d' % (1 + index // 2, 0 if index % 2 == 0 else 2)
    for index, (_, loc, cls) in enumerate(vgg_layers.head_layers(num_feature_layers)):
        keys[loc] = 'head.regression_head.module_list.%d' % index
        keys[cls] = 'head.classification_head.module_list.%d' % index
    return keys


def variable_keys(num_feature_layers=NUM_FEATURE_LAYERS):
    """Project variable name (relative to the model scope) -> state dict key."""
    suffix = {'weights': 'weight', 'biases': 'bias'}
    keys = {}
    layer_key = layer_keys(num_feature_layers)
    for layer in vgg_layers.all_layers(num_feature_layers):
        if layer.name == vgg_layers.L2_NORM:
            keys[vgg_layers.L2_NORM_VARIABLE] = SCALE_KEY
            continue
        for variable in layer.variables:
            keys['%s/%s' % (layer.name, variable)] = '%s.%s' % (layer_key[layer.name],
                                                                  suffix[variable])
    return keys


def num_classes_of(state_dict, path):
    """Classes (background included) of an ssd300_vgg16 state dict.

    Raises:
        errors.WeightsError: the dict is not torchvision's SSD300 VGG-16 layout.
    """
    expected = set(variable_keys().values())
    missing = sorted(expected - set(state_dict))
    if missing:
        found = sorted(state_dict)[:3]
        raise errors.WeightsError(
            '%s: not a torchvision ssd300_vgg16 state dict: %d of its %d tensors are missing '
            '(e.g. %s; the file has %s)' % (path, len(missing), len(expected), missing[0],
                                            ', '.join(found) or 'no tensors'))
    cls = state_dict['head.classification_head.module_list.0.weight']
    loc = state_dict['head.regression_head.module_list.0.weight']
    boxes = loc.shape[0] // 4
    if boxes == 0 or cls.shape[0] % boxes:
        raise errors.WeightsError('%s: head.classification_head.module_list.0.weight has %d '
                                  'outputs, not a multiple of the %d boxes per cell'
                                  % (path, cls.shape[0], boxes))
    return cls.shape[0] // boxes


def read_state_dict(path):
    """The tensors of a `.pth` file as float32 numpy arrays (torch.load, weights only).

    Accepts a plain state dict or a dict with the state dict under 'model' or 'state_dict'.

    Raises:
        errors.WeightsError: torch is not installed (the message names the extra), or the file
            is not a readable torch file of tensors.
    """
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise errors.WeightsError('%s: reading a torchvision .pth file needs PyTorch, an optional '
                                  'extra: %s' % (path, TORCH_EXTRA)) from None
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise errors.WeightsError('%s: not a readable torch file (%s: %s)' % (
            path, type(error).__name__, errors.first_line(error))) from None
    for key in ('model', 'state_dict'):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict):
        raise errors.WeightsError('%s: holds a %s, not a state dict' % (
            path, type(loaded).__name__))
    return {key: value.detach().cpu().float().numpy() for key, value in loaded.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()}
