"""Flask web page and JSON API in front of the SSD model server: `create_app()`.

The app is imported on first use, so `python -m web.wait_ready` and other light tools do not
load Flask, OpenCV or the gRPC client.
"""


def create_app(test_config=None):
    """Builds the app (see web.app.create_app)."""
    from web import app  # pylint: disable=import-outside-toplevel
    return app.create_app(test_config)


__all__ = ['create_app']
