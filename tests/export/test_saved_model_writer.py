"""SavedModel versions: next integer, never overwritten, temporary folders invisible to the server."""
import os

import pytest

from export import saved_model_writer
from serving.model_manager import list_versions


def test_versions_are_sequential_and_never_overwritten(tmp_path, toy):
    base = str(tmp_path / 'ssd')
    assert saved_model_writer.next_version(base) == 1
    assert toy.export(base) == os.path.join(base, '1')
    assert toy.export(base) == os.path.join(base, '2')
    assert toy.export(base, version=10) == os.path.join(base, '10')
    assert saved_model_writer.next_version(base) == 11
    before = os.path.getmtime(os.path.join(base, '2', 'saved_model.pb'))
    with pytest.raises(FileExistsError, match='exists already'):
        toy.export(base, version=2)
    assert os.path.getmtime(os.path.join(base, '2', 'saved_model.pb')) == before
    assert sorted(os.listdir(base)) == ['1', '10', '2']  # no temporary folder left behind
    assert os.listdir(os.path.join(base, '1', 'assets')) == ['labels.txt']


def test_temporary_and_incomplete_folders_are_not_versions(tmp_path):
    base = tmp_path / 'ssd'
    for name in ['.tmp-3-abc', '4', 'notes']:
        (base / name).mkdir(parents=True)
    (base / '.tmp-3-abc' / 'saved_model.pb').write_bytes(b'')
    assert list_versions(str(base)) == []
    (base / '4' / 'saved_model.pb').write_bytes(b'')
    assert list_versions(str(base)) == [4]
