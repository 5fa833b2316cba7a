"""The layers of the project's VGG SSD, in the order every source lists them (pure Python).

A source importer maps each of these layers to its own tensor names; importers.train_dir_writer
checks that the mapping covers every variable of the network and uses every tensor of the
file. Layer names are relative to the model scope (`conv1/conv1_1`, `conv8/conv8_2`,
`conv4_3_box/cls`); a conv layer owns `weights` [kh, kw, in, out] and `biases` [out], the L2
normalisation `conv4_3_norm/scale` [512].
"""
import collections

BACKBONE = tuple('conv%d/conv%d_%d' % (block, block, i)
                 for block, repeat in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                 for i in range(1, repeat + 1)) + ('conv6', 'conv7')
L2_NORM = 'conv4_3_norm'
L2_NORM_VARIABLE = L2_NORM + '/scale'
# Feature layers of SSD300 (6) and SSD512 (7): conv4_3, conv7, then one per extra block.
FIRST_EXTRA_BLOCK = 8

# One layer of the network: `name` (relative to the model scope) and the variables it owns.
Layer = collections.namedtuple('Layer', 'name variables')


def num_extra_blocks(num_feature_layers):
    """Extra blocks (conv8 ...) of a VGG SSD with this many feature layers (6 -> 4, 7 -> 5)."""
    return num_feature_layers - 2


def extra_layers(num_feature_layers):
    """Names of the extra conv layers: conv8/conv8_1, conv8/conv8_2, ... ."""
    last = FIRST_EXTRA_BLOCK + num_extra_blocks(num_feature_layers)
    return tuple('conv%d/conv%d_%d' % (block, block, i)
                 for block in range(FIRST_EXTRA_BLOCK, last) for i in (1, 2))


def feature_layers(num_feature_layers):
    """Feature layer names in output order: conv4_3, conv7, conv8, ... ."""
    last = FIRST_EXTRA_BLOCK + num_extra_blocks(num_feature_layers)
    return ('conv4_3', 'conv7') + tuple('conv%d' % block
                                        for block in range(FIRST_EXTRA_BLOCK, last))


def head_layers(num_feature_layers):
    """(feature layer, loc head name, cls head name) per feature layer."""
    return tuple((layer, layer + '_box/loc', layer + '_box/cls')
                 for layer in feature_layers(num_feature_layers))


def all_layers(num_feature_layers):
    """Every Layer of the network, backbone first, heads last."""
    convs = BACKBONE + extra_layers(num_feature_layers) + tuple(
        name for _, loc, cls in head_layers(num_feature_layers) for name in (loc, cls))
    layers = [Layer(name, ('weights', 'biases')) for name in convs]
    layers.insert(len(BACKBONE), Layer(L2_NORM, ('scale',)))
    return tuple(layers)

