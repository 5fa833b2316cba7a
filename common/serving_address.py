"""SERVING_ADDRESS: one model server, a static list of replicas or a gRPC DNS name (stdlib only).

Forms (README, "Serving at scale"):
- `host:port`: one server (gRPC resolves the host name itself);
- `host1:8500,host2:8500`: a static list of replicas, balanced round-robin by the client; the
  hosts are resolved once, when the channel is made, into gRPC's `ipv4:a:p,b:q` (or `ipv6:`)
  target;
- `dns:///name:port` (or `dns://resolver/name:port`): gRPC's DNS resolver, re-resolved while
  the channel lives (a headless Kubernetes Service lists every ready pod);
- `ipv4:1.2.3.4:8500,5.6.7.8:8500` and `ipv6:[::1]:8500,...`: gRPC's static targets, as given.
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


def channel_target(address, getaddrinfo=socket.getaddrinfo):
    """The gRPC channel target of a ServingAddress.

    One `host:port` and DNS names are passed to gRPC as given; a list is resolved now into one
    static `ipv4:`/`ipv6:` target (gRPC's static resolver takes IP literals of one family only:
    IPv4 when every replica has one, else IPv6).

    Raises:
      AddressError: a replica's host does not resolve, or the replicas share no address family.
    """
    if address.dns_name is not None or len(address.replicas) == 1 or (
            address.text.startswith(_STATIC_SCHEMES)):
        return address.text
    resolved = []
    for host, port in address.replicas:
        try:
            ips = resolve(host, port, getaddrinfo)
        except OSError as e:
            raise AddressError(f'{address.text!r}: cannot resolve {host!r}: {e}') from None
        resolved.append((ips, port))
    for scheme, family in (('ipv4:', 4), ('ipv6:', 6)):
        picked = [next((ip for ip in ips if _literal(ip).version == family), None)
                  for ips, _ in resolved]
        if all(picked):
            return scheme + ','.join(_join(ip, port) for ip, (_, port) in zip(picked, resolved))
    raise AddressError(f'{address.text!r}: the replicas share no address family (IPv4 or IPv6)')


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
