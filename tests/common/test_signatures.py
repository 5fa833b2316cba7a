"""Version folder names: plain ASCII decimals within int64; others are reported, hidden ones not;
and the serving contract module stays free of TensorFlow."""
import subprocess
import sys

import pytest

from common import signatures


@pytest.mark.parametrize('name,version', [
    ('0', 0), ('7', 7), ('42', 42), (str(2 ** 63 - 1), 2 ** 63 - 1),
    (str(2 ** 63), None), ('99999999999999999999', None), ('\u00b2', None), ('\u0663', None),
    ('007', None), ('-1', None), ('+1', None), ('1e3', None), (' 1', None), ('', None),
    ('notes', None),
])
def test_parse_version(name, version):
    assert signatures.parse_version(name) == version


def test_scan_versions(tmp_path):
    for name in ['1', '5', '12', '\u00b2', 'notes', '.tmp-3-x', '9']:
        (tmp_path / name).mkdir()
    for name in ['1', '12', '\u00b2', '.tmp-3-x']:
        (tmp_path / name / signatures.SAVED_MODEL_FILENAME).write_bytes(b'')
    (tmp_path / '3').write_text('a file, not a folder')
    (tmp_path / '7').symlink_to(tmp_path / '7')  # a symbolic link loop
    (tmp_path / '12' / '12').symlink_to(tmp_path / '12')  # a loop inside a version
    versions, ignored = signatures.scan_versions(str(tmp_path))
    assert versions == {1: str(tmp_path / '1'), 12: str(tmp_path / '12')}
    assert sorted(ignored) == sorted(['\u00b2', 'notes', '7'])
    assert 'no version number' in ignored['notes']
    assert ignored['7'] == 'cannot be read (Too many levels of symbolic links)'
    assert signatures.list_versions(str(tmp_path)) == [1, 12]
    assert signatures.scan_versions(str(tmp_path / 'missing')) == ({}, {})


def test_serving_error_carries_a_status_name():
    error = signatures.ServingError('input "x" is odd', 'INVALID_ARGUMENT')
    assert (str(error), error.code) == ('input "x" is odd', 'INVALID_ARGUMENT')
    assert signatures.ServingError('no code').code == 'UNKNOWN'


def test_imports_no_tensorflow():
    code = ('import sys, common.signatures, client.protos, client.tensor_proto; '
            'print([m for m in sys.modules if m.split(".")[0] in ("tensorflow", '
            '"tensorflow_serving")])')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == '[]'
