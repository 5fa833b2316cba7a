"""GET /healthz with one replica hung: answered within Kubernetes' probe timeout, 200 while
another replica serves, the hung one named in the detail."""
import threading
import time
from concurrent import futures

import grpc
import pytest

from client import protos
from client.ssd_client import SSDClient
from web import create_app


@pytest.fixture
def hung_address():
    """A gRPC server that takes calls and never answers (until the test ends)."""
    release = threading.Event()

    def hang(request, context):
        release.wait(60)
        context.abort(grpc.StatusCode.UNAVAILABLE, 'released')

    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers([protos.generic_handler(protos.MODEL_SERVICE,
                                                            {'GetModelStatus': hang})])
    port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    yield '127.0.0.1:%d' % port
    release.set()
    server.stop(0).wait()


def test_healthz_with_one_replica_hung(hung_address, toy_server):
    """Answered within the web pods' 1 s probe timeout: replicas are asked at once, 0.3 s."""
    client = SSDClient('%s,%s' % (hung_address, toy_server[0]), timeout=10.0)
    app = create_app({'TESTING': True, 'CLIENT': client})
    try:
        probe = app.test_client()
        probe.get('/healthz')  # connects
        start = time.monotonic()
        health = probe.get('/healthz')
        seconds = time.monotonic() - start
    finally:
        client.close()
    assert seconds < 1.0, seconds
    assert health.status_code == 200 and health.json['versions'] == [1]
    replicas = {r['address']: r for r in health.json['replicas']}
    assert 'DEADLINE_EXCEEDED' in replicas[hung_address]['error']
    assert replicas[toy_server[0]]['versions'] == [{'version': 1, 'state': 'AVAILABLE'}]
