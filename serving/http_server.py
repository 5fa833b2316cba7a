"""A small HTTP/1.1 server for JSON APIs that hostile or slow clients cannot exhaust.

- A fixed pool of worker threads takes the accepted connections from a bounded queue; when the
  queue is full the connection gets 503 at once and is closed.
- Each socket read waits at most `read_timeout` seconds, and the whole request (head and body)
  must arrive within `request_timeout` seconds, else the connection is closed: half-sent
  requests cannot hold the workers.
- The body is read before the handler runs, within `max_body_bytes`: `Content-Length` (411
  without one on POST; 400 when it is not a non-negative decimal number; 413 over the limit,
  refused before reading) or `Transfer-Encoding: chunked` (decoded; 413 as soon as the chunks
  pass the limit).
- The query string is not part of the path the handler gets; every answer, errors of the HTTP
  layer included, is JSON `{"error": "..."}`.

`Handler.answer(method, path, body)` -> (status, JSON-ready payload) is the application.
"""
import http.server
import json
import logging
import queue
import re
import socket
import threading
import urllib.parse

_BUSY = json.dumps({'error': 'the server is busy: every connection slot is taken; retry later'})
_CHUNK_SIZE = re.compile(rb'^([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\r?\n$')
_READ_BYTES = 1 << 16


class RequestError(Exception):
    """An HTTP error answered as JSON: status, message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class BoundedHTTPServer(http.server.HTTPServer):
    """HTTPServer whose connections are handled by `threads` workers, `backlog` waiting."""

    def __init__(self, address, handler_class, threads=8, backlog=64, read_timeout=10.0,
                 request_timeout=30.0, max_body_bytes=64 * 2**20):
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.max_body_bytes = max_body_bytes
        self._waiting = queue.Queue(backlog)
        self._workers = [threading.Thread(target=self._work, name='http-%d' % i, daemon=True)
                         for i in range(threads)]
        super().__init__(address, handler_class)
        for worker in self._workers:
            worker.start()

    def process_request(self, request, client_address):
        try:
            self._waiting.put_nowait((request, client_address))
        except queue.Full:
            _refuse(request)

    def _work(self):
        while True:
            item = self._waiting.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # a broken connection must not end the worker
                logging.debug('HTTP connection from %s failed', client_address, exc_info=True)
            finally:
                self.shutdown_request(request)

    def server_close(self):
        super().server_close()
        for _ in self._workers:
            self._waiting.put(None)


def _refuse(request):
    """Answers 503 on a connection no worker can take, and closes it."""
    body = _BUSY.encode('utf-8')
    try:
        request.settimeout(1.0)
        request.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
                        b'Content-Length: %d\r\nConnection: close\r\n\r\n%s' % (len(body), body))
    except OSError:
        pass
    try:
        request.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    request.close()


class Handler(http.server.BaseHTTPRequestHandler):
    """Reads a request within the server's limits and answers the JSON of `answer()`."""

    protocol_version = 'HTTP/1.1'

    def answer(self, method, path, body):
        """The application: returns (HTTP status, JSON-ready payload). path: decoded, no query."""
        raise NotImplementedError

    def setup(self):
        self.timeout = self.server.read_timeout
        super().setup()

    def handle_one_request(self):
        """Bounds the time the request's head and body may take to arrive."""
        watchdog = threading.Timer(self.server.request_timeout, self._cut_off)
        watchdog.daemon = True
        self._watchdog = watchdog
        watchdog.start()
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True
        finally:
            watchdog.cancel()

    def _cut_off(self):
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _route(self):
        method = self.command
        try:
            body = self._read_body() if method == 'POST' else b''
            self._watchdog.cancel()
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path, errors='strict')
            status, payload = self.answer(method, path, body)
        except RequestError as e:
            status, payload = e.status, {'error': str(e)}
        except UnicodeDecodeError:
            status, payload = 400, {'error': 'the path is not UTF-8 once percent-decoded'}
        self._send(status, payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route  # noqa: N815

    def _read_body(self):
        encoding = self.headers.get('Transfer-Encoding')
        lengths = self.headers.get_all('Content-Length') or []
        if encoding is not None:
            if encoding.strip().lower() != 'chunked' or lengths:
                self.close_connection = True
                raise RequestError(400, 'Transfer-Encoding %r is not supported (only chunked, '
                                        'without Content-Length)' % encoding[:40])
            return self._read_chunked()
        if not lengths:
            self.close_connection = True
            raise RequestError(411, 'POST needs a Content-Length header or a chunked body')
        if len(set(lengths)) > 1 or not re.fullmatch(r'[0-9]{1,20}', lengths[0].strip()):
            self.close_connection = True
            raise RequestError(400, 'Content-Length %r is not a non-negative decimal number'
                               % ', '.join(lengths)[:60])
        length = int(lengths[0])
        if length > self.server.max_body_bytes:
            self.close_connection = True
            raise RequestError(413, 'the body of %d bytes is over the limit of %d bytes'
                               % (length, self.server.max_body_bytes))
        body = self._read_exactly(length)
        return body

    def _read_exactly(self, length):
        parts, left = [], length
        while left:
            part = self.rfile.read(min(left, _READ_BYTES))
            if not part:
                self.close_connection = True
                raise RequestError(400, 'the body ended after %d of %d bytes'
                                   % (length - left, length))
            parts.append(part)
            left -= len(part)
        return b''.join(parts)

    def _read_chunked(self):
        parts, size = [], 0
        while True:
            line = self.rfile.readline(64)
            match = _CHUNK_SIZE.match(line)
            if not match:
                self.close_connection = True
                raise RequestError(400, 'malformed chunk size line %r' % line[:40])
            chunk = int(match.group(1), 16)
            size += chunk
            if size > self.server.max_body_bytes:
                self.close_connection = True
                raise RequestError(413, 'the chunked body is over the limit of %d bytes'
                                   % self.server.max_body_bytes)
            if chunk == 0:
                break
            parts.append(self._read_exactly(chunk))
            if self.rfile.readline(3) not in (b'\r\n', b'\n'):
                self.close_connection = True
                raise RequestError(400, 'a chunk is longer than its size line says')
        while self.rfile.readline(8192) not in (b'\r\n', b'\n', b''):
            pass  # trailer fields
        return b''.join(parts)

    def _send(self, status, payload):
        data = json.dumps(payload).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """Errors of the HTTP layer (bad request line, headers too long, ...) as JSON."""
        self.close_connection = True
        self.command = getattr(self, 'command', None) or ''
        self.request_version = 'HTTP/1.1'  # a status line even for an unreadable request line
        self._send(code, {'error': message or self.responses.get(code, ('error',))[0]})

    def log_message(self, *args):
        pass
