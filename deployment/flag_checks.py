"""Checks of script flag values, shared by the training and evaluation scripts.

Each raises ValueError with a message naming the flag, before any graph is built.
"""
import os

from nets import nets_factory


def required(f, names):
    """Each flag in `names` is set (not None or empty)."""
    for name in names:
        if not getattr(f, name):
            raise ValueError('--%s is required' % name)


def dataset_and_model(f):
    """--dataset_dir is a folder and --model_name a known network."""
    if not os.path.isdir(f.dataset_dir):
        raise ValueError('--dataset_dir %s is not a directory' % f.dataset_dir)
    if f.model_name not in nets_factory.NETWORK_NAMES:
        raise ValueError('--model_name must be one of %s, got %r'
                         % (', '.join(nets_factory.NETWORK_NAMES), f.model_name))


def positive(f, names):
    """Each flag in `names` is None or > 0."""
    for name in names:
        value = getattr(f, name)
        if value is not None and value <= 0:
            raise ValueError('--%s must be > 0, got %s' % (name, value))


def non_negative(f, names):
    """Each flag in `names` is >= 0."""
    for name in names:
        if getattr(f, name) < 0:
            raise ValueError('--%s must be >= 0, got %s' % (name, getattr(f, name)))


def moving_average_decay(f):
    """--moving_average_decay is None or in (0, 1)."""
    if f.moving_average_decay is not None and not 0.0 < f.moving_average_decay < 1.0:
        raise ValueError('--moving_average_decay must be in (0, 1), got %s'
                         % f.moving_average_decay)
