"""gunicorn's access log with the request's text escaped: control bytes, non-ASCII, quotes and
backslashes of User-Agent, Referer, the request line and every other header are written as
\\xNN (as nginx escapes its log), so a client cannot forge log lines or send terminal escape
sequences to whoever reads the log. web/gunicorn.conf.py sets `logger_class` to this."""
import re

from gunicorn import glogging

_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def escape(text):
    """`text` with each unsafe character as \\xNN (\\uNNNN beyond U+00FF)."""
    return _UNSAFE.sub(lambda m: ('\\x%02x' if ord(m.group()) < 256 else '\\u%04x')
                       % ord(m.group()), text)


class EscapingLogger(glogging.Logger):
    """gunicorn's Logger whose access-log atoms are escaped."""

    def atoms(self, resp, req, environ, request_time):
        return {name: escape(value) if isinstance(value, str) else value
                for name, value in super().atoms(resp, req, environ, request_time).items()}
