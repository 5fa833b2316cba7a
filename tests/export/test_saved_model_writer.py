"""SavedModel versions: next integer, never overwritten, temporary folders invisible to the server
and removed once their export is gone."""
import os
import socket
import subprocess
import sys
import time

import pytest

from common.signatures import list_versions
from export import saved_model_writer


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


def _dead_pid():
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_temporary_folders_of_killed_exports_are_removed_by_the_next_one(tmp_path, toy):
    base = tmp_path / 'ssd'
    host = socket.gethostname()
    names = {'killed': '.tmp-1-%d-%s-abc' % (_dead_pid(), host),
             'running': '.tmp-1-%d-%s-def' % (os.getpid(), host),
             'old_format': '.tmp-3-ghi', 'recent_old_format': '.tmp-4-jkl',
             'other_host': '.tmp-5-%d-other-host.example-mno' % os.getpid()}
    for name in names.values():
        (base / name / 'model' / 'variables').mkdir(parents=True)
        (base / name / 'model' / 'saved_model.pb').write_bytes(b'partial')
    day_ago = time.time() - saved_model_writer.STALE_AFTER_SECONDS - 60
    for path in [base / names['old_format'], *(base / names['old_format']).rglob('*')]:
        os.utime(path, (day_ago, day_ago))
    assert toy.export(str(base)) == os.path.join(str(base), '1')
    assert sorted(os.listdir(base)) == sorted(
        ['1', names['running'], names['recent_old_format'], names['other_host']])
