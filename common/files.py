"""Atomic file writes: a temporary name in the same folder, renamed when complete."""
import os
import secrets

_TEMPORARY_ATTEMPTS = 100


def _open_temporary(directory, name):
    """Creates a new hidden temporary file beside `name`; returns (path, fd).

    The file is created with mode 0o666, so the kernel applies the process umask
    (a result gets the same permissions as any other file the process writes,
    unlike tempfile.mkstemp's private 0o600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)
    for _ in range(_TEMPORARY_ATTEMPTS):
        path = os.path.join(directory, '.%s.%s.tmp' % (name, secrets.token_hex(4)))
        try:
            return path, os.open(path, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError('no free temporary name for %s in %s' % (name, directory))


def atomic_write(path, data):
    """Writes bytes or str `data` to `path` so readers never see a partial file.

    The file gets the usual permissions (0o666 minus the umask).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp, fd = _open_temporary(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data.encode('utf-8') if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
