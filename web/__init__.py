"""Flask web page and JSON API in front of the SSD model server: `create_app()`."""
from web.app import create_app

__all__ = ['create_app']
