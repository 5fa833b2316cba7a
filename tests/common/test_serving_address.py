"""SERVING_ADDRESS forms: one server, a static list, gRPC DNS and static targets."""
import socket

import pytest

from common import serving_address


def _fake_getaddrinfo(table):
    def getaddrinfo(host, port, type=0):  # pylint: disable=redefined-builtin
        if host not in table:
            raise socket.gaierror(-2, 'Name or service not known')
        return [(socket.AF_INET6 if ':' in ip else socket.AF_INET, type, 6, '',
                 (ip, port) if ':' not in ip else (ip, port, 0, 0)) for ip in table[host]]
    return getaddrinfo


@pytest.mark.parametrize('text,replicas,dns_name,balanced', [
    ('localhost:8500', (('localhost', 8500),), None, False),
    (' h1:8500, h2:9000 ', (('h1', 8500), ('h2', 9000)), None, True),
    ('dns:///tfserving.default.svc.cluster.local:8500', (),
     ('tfserving.default.svc.cluster.local', 8500), True),
    ('dns://10.0.0.10/svc:8500', (), ('svc', 8500), True),
    ('ipv4:127.0.0.1:8500,127.0.0.1:8501', (('127.0.0.1', 8500), ('127.0.0.1', 8501)), None,
     True),
    ('ipv6:[::1]:8500', (('::1', 8500),), None, False),
])
def test_forms(text, replicas, dns_name, balanced):
    address = serving_address.parse(text)
    assert (address.replicas, address.dns_name, address.balanced) == (replicas, dns_name, balanced)


@pytest.mark.parametrize('text,words', [
    ('localhost', ["'localhost' is not host:port"]),
    ('h1:8500,h2', ["'h2' is not host:port", 'dns:///name:port']),
    ('h1:8500,', ["'' is not host:port"]),
    ('h:99999', ['is not host:port']),
    ('dns://svc:8500', ['dns:///name:port']),
    ('dns:///svc', ["'svc' is not host:port"]),
    ('h:1,h:1', ['lists a replica twice']),
])
def test_malformed_addresses_are_named(text, words):
    with pytest.raises(serving_address.AddressError) as info:
        serving_address.parse(text)
    for word in words:
        assert word in str(info.value)


def test_replica_addresses_resolve_dns_names_now():
    lookup = _fake_getaddrinfo({'svc': ['10.1.0.5', '10.1.0.6', '10.1.0.5']})
    parse = serving_address.parse
    assert serving_address.replica_addresses(parse('dns:///svc:8500'), lookup) == [
        '10.1.0.5:8500', '10.1.0.6:8500']
    assert serving_address.replica_addresses(parse('a:1,[::1]:2')) == ['a:1', '[::1]:2']
    with pytest.raises(OSError):
        serving_address.replica_addresses(parse('dns:///nowhere:8500'), lookup)
