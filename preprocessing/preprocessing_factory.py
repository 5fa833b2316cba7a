"""Preprocessing keyed by network name."""
import functools

from nets import ssd_params
from preprocessing import ssd_preprocessing


def network_input(name):
    """Returns ((height, width), normalization) of network `name`, from its SSDParams."""
    if name not in ssd_params.PARAMS:
        raise ValueError('unknown network %r for preprocessing (expected one of %s)'
                         % (name, ', '.join(sorted(ssd_params.PARAMS))))
    params = ssd_params.PARAMS[name]
    return (int(params.img_shape[0]), int(params.img_shape[1])), params.normalization


def get_preprocessing(name, is_training):
    """Returns fn(sample dict) -> sample dict for network `name`.

    Training fns also take an optional stateless `seed` (int32 [2]).
    See ssd_preprocessing.preprocess_for_train / preprocess_for_eval.
    """
    out_hw, normalization = network_input(name)
    if is_training:
        fn = ssd_preprocessing.preprocess_for_train
    else:
        fn = ssd_preprocessing.preprocess_for_eval
    return functools.partial(fn, out_hw=out_hw, normalization=normalization)
