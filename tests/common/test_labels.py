import pytest

from common import labels


def test_write_then_read_round_trip(tmp_path):
    path = tmp_path / 'labels.txt'
    labels.write_labels(str(path), {1: 'circle', 2: 'traffic light'})
    assert path.read_text() == '0:background\n1:circle\n2:traffic light\n'
    assert labels.read_labels(str(path)) == {0: 'background', 1: 'circle', 2: 'traffic light'}


def test_plain_names_get_ids_from_one(tmp_path):
    path = tmp_path / 'classes.txt'
    path.write_text('cat\n\ndog\n')
    assert labels.read_labels(str(path)) == {0: 'background', 1: 'cat', 2: 'dog'}


def test_ids_by_name_excludes_background():
    assert labels.ids_by_name({0: 'background', 1: 'cat', 2: 'dog'}) == {'cat': 1, 'dog': 2}


@pytest.mark.parametrize('text, message', [
    ('', 'empty'),
    ('0:background\ncat\n', 'mixes'),
    ('0:background\n1:cat\n1:dog\n', 'duplicate id 1'),
    ('0:background\nx:cat\n', ':2: expected'),
    ('0:cat\n', 'id 0 must be'),
    ('cat\ncat\n', 'duplicate class names'),
])
def test_bad_files_name_the_file_and_problem(tmp_path, text, message):
    path = tmp_path / 'bad.txt'
    path.write_text(text)
    with pytest.raises(labels.LabelsError, match=message) as error:
        labels.read_labels(str(path))
    assert str(path) in str(error.value)


def test_missing_file_is_a_labels_error(tmp_path):
    with pytest.raises(labels.LabelsError, match='cannot read'):
        labels.read_labels(str(tmp_path / 'nope.txt'))
