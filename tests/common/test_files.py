"""common.files.atomic_write: complete files only, usual (umask) permissions."""
import os
import stat

import pytest

from common.files import atomic_write


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """os.umask for the test; the previous umask is restored afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def test_writes_bytes_and_text_and_replaces(tmp_path):
    path = str(tmp_path / 'out.txt')
    atomic_write(path, 'first\n')
    atomic_write(path, b'second\n')
    assert open(path, 'rb').read() == b'second\n'
    assert os.listdir(tmp_path) == ['out.txt']


@pytest.mark.parametrize('mask, mode', [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_permissions_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = str(tmp_path / 'result.json')
    atomic_write(path, '{}')
    assert _mode(path) == mode
    atomic_write(path, '{"again": 1}')
    assert _mode(path) == mode


def test_failed_write_leaves_no_file(tmp_path):
    path = str(tmp_path / 'out.bin')
    with pytest.raises(TypeError):
        atomic_write(path, 12)
    assert os.listdir(tmp_path) == []
