"""SSD-Tensorflow (balancap) TF1 checkpoints: `ssd_300_vgg.ckpt`, `ssd_512_vgg.ckpt`.

Its `nets/ssd_vgg_300.py` / `ssd_vgg_512.py` name the backbone as slim's vgg_16 under the model
scope (`ssd_300_vgg/conv1/conv1_1/weights` ... `conv5/conv5_3`, `conv6`, `conv7`: the same names
as here), the extra blocks `block8` ... `block11` (`block12` for SSD512) with `conv1x1` and
`conv3x3`, and per feature layer `block4_box` ... with `conv_loc`, `conv_cls` and, on block4,
`L2Normalization/gamma`. Weights are [kh, kw, in, out], as here; the checkpoint may also hold
training state (global_step, optimizer slots, moving averages), which is not imported.
"""
import tensorflow as tf

from importers import errors, vgg_layers
from nets import checkpoints

SOURCE = 'ssd_tensorflow'
# Model scope in the checkpoint -> feature layers.
SCOPES = {'ssd_300_vgg': 6, 'ssd_512_vgg': 7}
_TRAINING_STATE = ('global_step', '/Momentum', '/Adam', '/RMSProp', '/ExponentialMovingAverage',
                   'beta1_power', 'beta2_power')


def _block(layer):
    """Project feature / extra layer -> SSD-Tensorflow block name (conv4_3 -> block4, conv8 ->
    block8)."""
    if layer == 'conv4_3':
        return 'block4'
    return 'block' + layer.split('/')[0][4:]


def layer_names(num_feature_layers):
    """Project layer name -> SSD-Tensorflow layer name (without the model scope)."""
    names = {name: name for name in vgg_layers.BACKBONE}
    for name in vgg_layers.extra_layers(num_feature_layers):
        names[name] = '%s/%s' % (_block(name), 'conv1x1' if name.endswith('_1') else 'conv3x3')
    for feature, loc, cls in vgg_layers.head_layers(num_feature_layers):
        names[loc] = '%s_box/conv_loc' % _block(feature)
        names[cls] = '%s_box/conv_cls' % _block(feature)
    return names


def variable_names(scope, num_feature_layers):
    """Project variable name (relative to the model scope) -> checkpoint variable name."""
    names = layer_names(num_feature_layers)
    found = {'%s/%s' % (layer.name, variable): '%s/%s/%s' % (scope, names[layer.name], variable)
             for layer in vgg_layers.all_layers(num_feature_layers)
             if layer.name != vgg_layers.L2_NORM for variable in layer.variables}
    found[vgg_layers.L2_NORM_VARIABLE] = '%s/block4_box/L2Normalization/gamma' % scope
    return found


def is_training_state(name):
    """Whether a checkpoint variable is training state rather than a model weight."""
    return any(part in name for part in _TRAINING_STATE)


def read_checkpoint(path):
    """The model tensors of a TF1 checkpoint (training state left out) as numpy arrays.

    Raises:
        errors.WeightsError: not a readable checkpoint.
    """
    try:
        prefix = checkpoints.resolve_checkpoint(path)
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        return {name: reader.get_tensor(name) for name in names if not is_training_state(name)}
    except (ValueError, tf.errors.OpError) as error:
        raise errors.WeightsError('%s: not a readable TensorFlow checkpoint (%s)' % (
            path, errors.first_line(error))) from None


def scope_of(tensors, path):
    """('ssd_300_vgg' or 'ssd_512_vgg', feature layers) of the checkpoint's tensors.

    Raises:
        errors.WeightsError: no SSD-Tensorflow VGG model scope in the checkpoint.
    """
    scopes = {name.split('/')[0] for name in tensors}
    found = sorted(scopes & set(SCOPES))
    if len(found) != 1:
        raise errors.WeightsError('%s: not an SSD-Tensorflow VGG checkpoint: expected variables '
                                  'under one of %s, found scopes %s' % (
                                      path, ', '.join(sorted(SCOPES)),
                                      ', '.join(sorted(scopes)[:5]) or 'none'))
    return found[0], SCOPES[found[0]]


def num_classes_of(tensors, scope, num_feature_layers, path):
    """Classes (background included) from block4_box's class and location heads."""
    names = variable_names(scope, num_feature_layers)
    try:
        cls = tensors[names['conv4_3_box/cls/weights']].shape[-1]
        loc = tensors[names['conv4_3_box/loc/weights']].shape[-1]
    except KeyError as error:
        raise errors.WeightsError('%s: variable %s is missing' % (path, error.args[0])) from None
    if loc % 4 or cls % (loc // 4):
        raise errors.WeightsError('%s: %s has %d outputs, not a multiple of %d boxes' % (
            path, names['conv4_3_box/cls/weights'], cls, loc // 4))
    return cls // (loc // 4)
