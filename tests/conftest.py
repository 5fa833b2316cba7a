"""Shared pytest setup: quiet TensorFlow, a fresh default graph per test; the toy SavedModel
and an in-process model server; slow tests first."""
import os
import types

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402  (after the log level, before TensorFlow loads)
import tensorflow as tf  # noqa: E402  (after the log level)

from serving import model_server
from serving.model_manager import ModelManager
from tests import helpers


def pytest_collection_modifyitems(items):
    """Tests marked slow run first (otherwise in their order): `make test`'s two workers take
    whole files in this order, so the long files start early and the workers end together."""
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)


@pytest.fixture(autouse=True)
def fresh_default_graph():
    """Every test starts with an empty default graph.

    Most graph tests open their own `tf.Graph()`, but a script's main() run in-process
    disables eager execution and builds into the default graph, which would otherwise
    carry its ops (and variable names) into the next test.
    """
    tf.compat.v1.reset_default_graph()


@pytest.fixture
def toy_base(tmp_path):
    base = str(tmp_path / 'models' / 'ssd')
    helpers.export_toy_model(base)
    return base


@pytest.fixture
def toy_server(toy_base):
    """In-process server on a free 127.0.0.1 port, polling every 0.1 s.

    Yields (address, manager).
    """
    manager = ModelManager('ssd', toy_base, poll_seconds=0.1)
    manager.start()
    server, port = model_server.create_server(manager, 0, host='127.0.0.1', max_workers=32)
    server.start()
    yield '127.0.0.1:%d' % port, manager
    server.stop(0).wait()
    manager.stop()


@pytest.fixture
def toy():
    """The toy model's helpers (test modules cannot import conftest under importlib mode)."""
    return types.SimpleNamespace(export=helpers.export_toy_model, outputs=helpers.toy_outputs,
                                 classes=helpers.TOY_CLASSES, anchors=helpers.TOY_ANCHORS,
                                 hw=helpers.TOY_HW)
