"""SERVING_ADDRESS: one model server, a static list of replicas or a gRPC DNS name (stdlib only).

Forms (docs/export-and-serving.md, "Several replicas"):
- `host:port`: one server (gRPC resolves the host name itself);
- `host1:8500,host2:8500`: a static list of replicas, balanced round-robin by the client
  (client.replicas: a channel to each);
- `dns:///name:port` (or `dns://resolver/name:port`): every address of the name is a replica,
  the name resolved again while the client lives (a headless Kubernetes Service lists every
  ready pod);
- `ipv4:1.2.3.4:8500,5.6.7.8:8500` and `ipv6:[::1]:8500,...`: gRPC's static target forms, read
  as a list.
"""
import dataclasses
import ipaddress
import socket

_STATIC_SCHEMES = ('ipv4:', 'ipv6:')
FORMS = 'host:port, host1:port1,host2:port2, dns:///name:port or ipv4:ip:port,...'


class AddressError(ValueError):
    """SERVING_ADDRESS is malformed; the message names the forms accepted."""


@dataclasses.dataclass(frozen=True)
class ServingAddress:
    """A parsed SERVING_ADDRESS.

    Attributes:
      text: the address as given.
      replicas: (host, port) pairs of a static list (one for `host:port`), empty for a DNS name.
      dns_name: (host, port) of a `dns:` target, else None.
    """
    text: str
    replicas: tuple
    dns_name: tuple = None

    @property
    def balanced(self):
        """True when several replicas may answer (a list or a DNS name)."""
        return self.dns_name is not None or len(self.replicas) > 1


def _host_port(text, whole):
    host, sep, port = text.strip().rpartition(':')
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressError(f'{whole!r}: {text.strip()!r} is not host:port (forms: {FORMS})')
    return host, int(port)


def parse(text):
    """Parses a SERVING_ADDRESS.

    Raises:
      AddressError: naming the part that is not host:port.
    """
    text = str(text).strip()
    if text.startswith('dns:'):
        name = text[len('dns:'):]
        if name.startswith('//'):  # dns://[resolver]/name:port
            _, slash, name = name[2:].partition('/')
            if not slash:
                raise AddressError(f'{text!r}: a DNS target is dns:///name:port (forms: {FORMS})')
        return ServingAddress(text, (), _host_port(name, text))
    body = text
    for scheme in _STATIC_SCHEMES:
        if text.startswith(scheme):
            body = text[len(scheme):]
    parts = body.split(',')
    replicas = tuple(_host_port(part, text) for part in parts)
    if len(set(replicas)) != len(replicas):
        raise AddressError(f'{text!r} lists a replica twice')
    return ServingAddress(text, replicas)


def _literal(host):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host, port, getaddrinfo=socket.getaddrinfo):
    """IP addresses of a host name (literal IPs as they are), IPv4 first, without duplicates."""
    literal = _literal(host)
    if literal is not None:
        return [str(literal)]
    infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for info_family, _, _, _, sockaddr in infos:
            if info_family == family and sockaddr[0] not in addresses:
                addresses.append(sockaddr[0])
    return addresses


def _join(ip, port):
    return f'[{ip}]:{port}' if ':' in ip else f'{ip}:{port}'


def replica_addresses(address, getaddrinfo=socket.getaddrinfo):
    """`host:port` of every replica now: the list as given, or the DNS name resolved now.

    Raises:
      OSError: the DNS name does not resolve.
    """
    if address.dns_name is None:
        return [_join(host, port) if _literal(host) else f'{host}:{port}'
                for host, port in address.replicas]
    host, port = address.dns_name
    return [_join(ip, port) for ip in resolve(host, port, getaddrinfo)]
