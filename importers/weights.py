"""From a source's tensors to the project's variables: renaming, layout, completeness."""
import numpy as np

from importers import errors

# Source weight layouts: torch and Caffe store conv weights [out, in, kh, kw]; TensorFlow and
# this project [kh, kw, in, out].
OIHW, HWIO = 'oihw', 'hwio'


def to_hwio(array, layout):
    """A conv weight in the project's [kh, kw, in, out] layout."""
    if layout == OIHW and array.ndim == 4:
        return np.transpose(array, (2, 3, 1, 0))
    return array


def convert(tensors, sources, layout, path):
    """Renames and re-lays out a source's tensors as the project's variables.

    Args:
        tensors: dict source tensor name -> numpy array (every tensor of the file).
        sources: dict project variable name (relative to the model scope) -> source name.
        layout: OIHW or HWIO, the source's conv weight layout.
        path: the file (for the messages).

    Returns:
        dict project variable name -> float32 array.

    Raises:
        errors.WeightsError: a tensor the network needs is missing, or the file has tensors
            the network does not use (another architecture).
    """
    missing = sorted(name for name in sources.values() if name not in tensors)
    if missing:
        raise errors.WeightsError('%s: %d tensor(s) the network needs are missing (e.g. %s)' % (
            path, len(missing), missing[0]))
    unused = sorted(set(tensors) - set(sources.values()))
    if unused:
        raise errors.WeightsError('%s: %d tensor(s) belong to no layer of the network (e.g. %s): '
                                  'a model of another architecture' % (path, len(unused),
                                                                       unused[0]))
    return {name: np.ascontiguousarray(to_hwio(np.asarray(tensors[source], np.float32), layout))
            for name, source in sources.items()}
