"""Waiting for a server to be ready: a URL answering 200, a model version AVAILABLE.

Bounded polls (no fixed sleeps in their callers): each stops at its deadline, or at once when
`alive()` says the process being waited for is gone. Standard library and the gRPC client
only (no TensorFlow).
"""
import time
import urllib.error
import urllib.request


def poll(ready, timeout_s, interval_s=0.2, alive=None):
    """Calls `ready()` every `interval_s` seconds until it is true.

    Args:
      ready: fn() -> bool.
      timeout_s: how long to try.
      interval_s: pause between calls.
      alive: optional fn() -> bool; polling stops when it turns false.

    Returns:
      True when ready within timeout_s, else False.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (alive is None or alive()):
        if ready():
            return True
        time.sleep(interval_s)
    return False


def url_answers_200(url, timeout_s=5.0):
    """Whether a GET of `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for_url(url, timeout_s, interval_s=0.2, alive=None):
    """Polls `url` until it answers 200; returns True, or False at the deadline."""
    return poll(lambda: url_answers_200(url, min(5.0, timeout_s)), timeout_s, interval_s, alive)


def wait_until_available(address, model_name, timeout_s, interval_s=0.2, alive=None):
    """Polls the model server(s) at `address` until one reports an AVAILABLE version of
    `model_name` (ModelService.GetModelStatus); returns True, or False at the deadline."""
    from client import ssd_client  # pylint: disable=import-outside-toplevel

    with ssd_client.SSDClient(address, model_name, retries=0) as client:
        def available():
            try:
                versions = client.status(timeout=min(2.0, timeout_s))['versions']
            except ssd_client.ServingError:
                return False
            return any(v['state'] == 'AVAILABLE' for v in versions)

        return poll(available, timeout_s, interval_s, alive)
