"""Tests of the shared pytest setup in tests/conftest.py."""
import pytest
import tensorflow as tf


@pytest.mark.parametrize('run', [1, 2])
def test_each_test_starts_with_an_empty_default_graph(run):
    graph = tf.compat.v1.get_default_graph()
    assert graph.get_operations() == [], 'ops left by another test (run %d)' % run
    with graph.as_default():
        tf.constant(run, name='left_behind')
    assert graph.get_operations()
