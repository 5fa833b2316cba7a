"""Fixtures of the importer tests: the live torchvision reference (torch installed only)."""
import pytest

from tests.importers import torchvision_reference


@pytest.fixture(scope='session')
def torchvision_live(tmp_path_factory):
    """(detections, block outputs, seeded .pth) of torchvision run now; skips without torch."""
    if not torchvision_reference.torch_available():
        pytest.skip('torch and torchvision are not installed (pip install ".[torch]")')
    return torchvision_reference.run_reference_script(str(tmp_path_factory.mktemp('torch')))
