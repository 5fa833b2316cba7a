"""labels.txt: one class a line, `id:name`, starting with `0:background`.

Imports without TensorFlow (the web client uses it).
"""
from common.files import atomic_write

BACKGROUND = 'background'
LABELS_FILENAME = 'labels.txt'


class LabelsError(ValueError):
    """A labels file that cannot be used; the message names the file and line."""


def read_labels(path):
    """Reads a labels file.

    Accepts `id:name` lines (the format write_labels writes) or plain class names one a line
    (ids 1, 2, ... in file order). Blank lines are ignored.

    Args:
      path: labels file.

    Returns:
      dict id -> name, always with 0 -> 'background'.

    Raises:
      LabelsError: unreadable file, mixed formats, bad or duplicate ids/names.
    """
    try:
        with open(path, encoding='utf-8') as f:
            lines = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise LabelsError('%s: cannot read labels file (%s)' % (path, e)) from e
    if not lines:
        raise LabelsError('%s: labels file is empty' % path)
    with_ids = [':' in line for _, line in lines]
    if any(with_ids) and not all(with_ids):
        raise LabelsError('%s: mixes `id:name` lines and plain names' % path)
    names_by_id = {0: BACKGROUND}
    if all(with_ids):
        seen = set()
        for n, line in lines:
            key, name = (part.strip() for part in line.split(':', 1))
            if not key.isdigit() or not name:
                raise LabelsError('%s:%d: expected `id:name`, got %r' % (path, n, line))
            class_id = int(key)
            if class_id in seen:
                raise LabelsError('%s:%d: duplicate id %d' % (path, n, class_id))
            seen.add(class_id)
            names_by_id[class_id] = name
    else:
        names = [line for _, line in lines if line != BACKGROUND]
        names_by_id.update(enumerate(names, 1))
    if names_by_id[0] != BACKGROUND:
        raise LabelsError('%s: id 0 must be %r, got %r' % (path, BACKGROUND, names_by_id[0]))
    names = list(names_by_id.values())
    if len(set(names)) != len(names):
        raise LabelsError('%s: duplicate class names' % path)
    return names_by_id


def write_labels(path, names_by_id):
    """Writes `names_by_id` (id -> name; 0 -> background added) atomically."""
    names_by_id = dict(names_by_id)
    names_by_id.setdefault(0, BACKGROUND)
    text = ''.join('%d:%s\n' % (i, names_by_id[i]) for i in sorted(names_by_id))
    atomic_write(path, text)


def ids_by_name(names_by_id):
    """Inverse of a labels dict without the background: name -> id."""
    return {name: i for i, name in names_by_id.items() if i != 0}
