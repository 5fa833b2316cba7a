"""Preprocessing keyed by network name."""
import functools

from nets import nets_factory
from preprocessing import ssd_preprocessing


def network_input(name):
    """Returns ((height, width), Normalization) of network `name`, from its spec."""
    params = nets_factory.get_network(name).params
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
