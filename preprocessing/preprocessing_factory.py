"""Preprocessing keyed by network name."""
import functools

from common import np_preprocessing
from preprocessing import ssd_preprocessing


def network_input(name):
    """Returns ((height, width), normalization) of network `name`.

    The size comes from nets_factory (the network's params), the
    normalisation from np_preprocessing.NORMALIZATION.
    """
    if name not in np_preprocessing.NORMALIZATION:
        raise ValueError('unknown network %r for preprocessing (expected one of %s)'
                         % (name, ', '.join(sorted(np_preprocessing.NORMALIZATION))))
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    img_shape = nets_factory.get_network(name).params.img_shape
    return (int(img_shape[0]), int(img_shape[1])), np_preprocessing.NORMALIZATION[name]


def get_preprocessing(name, is_training):
    """Returns fn(sample dict) -> sample dict for network `name`.

    Training fns also take an optional stateless `seed` (int32 [2]).
    See ssd_preprocessing.preprocess_for_train / preprocess_for_eval.
    """
    out_hw, normalization = network_input(name)
    fn = ssd_preprocessing.preprocess_for_train if is_training else ssd_preprocessing.preprocess_for_eval
    return functools.partial(fn, out_hw=out_hw, normalization=normalization)
