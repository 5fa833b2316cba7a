"""A network of their own for the tasks of a local cluster: only loopback, nothing else.

TensorFlow's gRPC server listens on every interface of its network namespace, whatever host
the cluster spec gives it (it binds the wildcard address), and its runtime has no
authentication: a task started for 127.0.0.1 is reachable from the whole network. The local
launcher therefore runs every task inside one new network namespace whose only interface is
loopback, so the servers answer on 127.0.0.1 to the cluster's own processes and to nothing
else. No privilege is needed: a user namespace owned by the launcher's user (the user's own
ids mapped to themselves) owns the network namespace.

A small holder process creates both namespaces, brings loopback up and lives as long as the
launcher (it ends when its stdin closes). Each task joins them before it starts: `command`
puts a small Python program in front of the task's command line, which joins (`setns`) and
then becomes the task (`exec`). Joining happens in that fresh process, not between fork and
exec of the launcher: a user namespace only admits a single-threaded process, and a forked
child of a multithreaded program may not be one (gRPC's fork handlers start threads in the
child).
Where the kernel refuses (unprivileged user namespaces disabled, as some distributions and
container runtimes do), `start` says why and the tasks use the machine's network.

Linux only; standard library only.
"""
import os
import selectors
import subprocess
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
READY = 'ready'

# In front of a task's command line: join the namespaces of the fds given, then exec the rest.
_JOIN = r'''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for fd, kind in ((int(sys.argv[1]), %(user)d), (int(sys.argv[2]), %(net)d)):
    if libc.setns(fd, kind) != 0:
        sys.exit('cannot join the private network of the cluster: setns: %%s'
                 %% os.strerror(ctypes.get_errno()))
    os.close(fd)
libc.prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM again: joining a user namespace clears it
os.execvp(sys.argv[3], sys.argv[3:])
''' % {'user': CLONE_NEWUSER, 'net': CLONE_NEWNET}

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
        """File descriptors a `command` needs (subprocess pass_fds)."""
        return self._fds

    def command(self, argv):
        """The command line that runs `argv` in the namespaces (`argv` itself when inactive);
        start it with pass_fds=fds. A process that cannot join exits with a message."""
        if not self._fds:
            return list(argv)
        return [sys.executable, '-c', _JOIN] + [str(fd) for fd in self._fds] + list(argv)

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
