"""A network of their own for the tasks of a local cluster: only loopback, nothing else.

TensorFlow's gRPC server listens on every interface of its network namespace, whatever host
the cluster spec gives it (it binds the wildcard address), and its runtime has no
authentication: a task started for 127.0.0.1 is reachable from the whole network. The local
launcher therefore runs every task inside one new network namespace whose only interface is
loopback, so the servers answer on 127.0.0.1 to the cluster's own processes and to nothing
else. No privilege is needed: a user namespace owned by the launcher's user (the user's own
ids mapped to themselves) owns the network namespace.

A small holder process creates both namespaces, brings loopback up and lives as long as the
launcher (it ends when its stdin closes); each task joins them before it starts (`setns`).
Where the kernel refuses (unprivileged user namespaces disabled, as some distributions and
container runtimes do), `start` says why and the tasks use the machine's network.

Linux only; standard library only.
"""
import ctypes
import os
import selectors
import subprocess
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
READY = 'ready'

# The holder: new user + network namespaces, loopback up, then wait for stdin to close.
_HOLDER = r'''
import ctypes, fcntl, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
try:
    if libc.unshare(%(flags)d) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    for name, text in (('setgroups', 'deny'), ('uid_map', '%%d %%d 1' %% (uid, uid)),
                       ('gid_map', '%%d %%d 1' %% (gid, gid))):
        with open('/proc/self/' + name, 'w') as f:
            f.write(text)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack('16sH', b'lo', 0)
        flags = struct.unpack('16sH', fcntl.ioctl(sock, 0x8913, request)[:18])[1]
        fcntl.ioctl(sock, 0x8914, struct.pack('16sH', b'lo', flags | 1))
except (OSError, AttributeError) as error:
    print('unavailable: %%s' %% error, flush=True)
    sys.exit(1)
print(%(ready)r, flush=True)
sys.stdin.read()
''' % {'flags': CLONE_NEWUSER | CLONE_NEWNET, 'ready': READY}


class PrivateNetwork:
    """The namespaces the tasks join; `start` first, `stop` when the cluster is done."""

    def __init__(self):
        self._holder = None
        self._fds = ()

    def start(self, timeout=30.0):
        """Creates the namespaces.

        Returns:
            None when the tasks can join them, else why not (one line).
        """
        if not sys.platform.startswith('linux'):
            return 'network namespaces are a Linux feature'
        try:
            self._holder = subprocess.Popen(
                [sys.executable, '-c', _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
        except OSError as error:
            return str(error)
        line = _read_line(self._holder, timeout)
        if line != READY:
            self.stop()
            return line.replace('unavailable: ', '', 1) or 'the namespace holder ended'
        pid = self._holder.pid
        self._fds = (os.open('/proc/%d/ns/user' % pid, os.O_RDONLY | os.O_CLOEXEC),
                     os.open('/proc/%d/ns/net' % pid, os.O_RDONLY | os.O_CLOEXEC))
        return None

    @property
    def active(self):
        """True when tasks join the private network."""
        return bool(self._fds)

    @property
    def fds(self):
        """File descriptors a task must keep open to join (subprocess pass_fds)."""
        return self._fds

    def join(self):
        """In a task between fork and exec: enters the namespaces (a no-op when inactive)."""
        if not self._fds:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        for fd, kind in zip(self._fds, (CLONE_NEWUSER, CLONE_NEWNET)):
            if libc.setns(fd, kind) != 0:
                raise OSError(ctypes.get_errno(), 'setns: %s' % os.strerror(ctypes.get_errno()))

    def stop(self):
        """Ends the holder (the namespaces go when the last task leaves them)."""
        for fd in self._fds:
            os.close(fd)
        self._fds = ()
        if self._holder is not None:
            self._holder.stdin.close()
            try:
                self._holder.wait(10)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait()
            self._holder.stdout.close()
            self._holder = None


def _read_line(process, timeout):
    """The first output line of `process` within `timeout` s ('' if it ends or stays silent)."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ''
    return process.stdout.readline().strip()
