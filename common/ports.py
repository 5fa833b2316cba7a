"""Checks that the ports a command is about to listen on are free, before any work starts.

    python -m common.ports GRPC_PORT=127.0.0.1:8500 WEB_PORT=127.0.0.1:5000

exits 1 with one line per busy port, naming the variable that chooses another one, so that a
second `make demo` stops before it trains or serves anything.
"""
import errno
import socket
import sys


def is_free(host, port):
    """True when a listening socket could be bound to (host, port) now."""
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_port(host='127.0.0.1'):
    """A TCP port nothing listens on now on `host` (bind it soon: another process may take it)."""
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def busy_ports(named_addresses):
    """Messages for the busy ones of {'GRPC_PORT': ('127.0.0.1', 8500), ...}."""
    return ['port %d on %s is already in use (another `make demo` or server?); choose another '
            'one with %s=<port>' % (port, host, name)
            for name, (host, port) in named_addresses.items() if not is_free(host, port)]


def _parse(argument):
    name, _, address = argument.partition('=')
    host, _, port = address.rpartition(':')
    if not name or not host or not port.isdigit():
        raise SystemExit('expected NAME=host:port, got %r' % argument)
    return name, (host.strip('[]'), int(port))


def main(argv=None):
    messages = busy_ports(dict(_parse(a) for a in (sys.argv[1:] if argv is None else argv)))
    for message in messages:
        print(message, file=sys.stderr)
    return 1 if messages else 0


if __name__ == '__main__':
    sys.exit(main())
