"""The HTTP/1.1 transport of the REST API (http.server, one thread per connection).

Bodies are capped at `max_request_bytes` (413, as TF Serving); requests in flight are counted so
that `drain()` can stop accepting and wait for them; a client that closed its connection while
its request waited is not served (its predict is not run).
"""
from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bert_tf.serving.server.rest_api import RestApi

logger = logging.getLogger(__name__)


class _RequestTooLarge(Exception):
    pass


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bert_tf-dev-model-server"
    timeout = 60  # idle keep-alive connections are closed after this many seconds

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_PUT(self):  # noqa: N802 - TF Serving answers other methods "Malformed request"
        self._serve("PUT")

    def do_DELETE(self):  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        if not self.server.begin_request():
            self.close_connection = True
            self._reply(503, {"error": "the server is shutting down"})
            return
        try:
            self._serve_one(method)
        finally:
            self.server.end_request()

    def _serve_one(self, method: str) -> None:
        limit = self.server.max_request_bytes
        try:
            body = self._read_body(limit)
        except _RequestTooLarge as e:
            self._reply(413, {"error": str(e)})
            return
        except ValueError as e:
            self.close_connection = True
            self._reply(400, {"error": f"Malformed request body: {e}"})
            return
        path = urllib.parse.urlsplit(self.path).path
        status, reply = self.server.api.handle(method, path, body, self._client_gone)
        if self.server.draining:
            self.close_connection = True
        self._reply(status, reply)

    def _client_gone(self) -> bool:
        """Whether the client closed its side (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def _read_body(self, limit: int | None) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if limit and length > limit:
            # Drain a moderately oversized body so the client reads the reply; close otherwise.
            if length <= 16 * limit:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            else:
                self.close_connection = True
            raise _RequestTooLarge(f"Request body of {length} bytes exceeds the server's limit "
                                   f"of {limit} bytes (--max_request_bytes)")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes:
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if limit and total > limit:
                self.close_connection = True
                raise _RequestTooLarge(f"Request body exceeds the server's limit of {limit} "
                                       "bytes (--max_request_bytes)")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _reply(self, status: int, reply: dict[str, Any]) -> None:
        try:
            data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed in a message: escape it instead
            data = json.dumps(reply).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        logger.debug("REST %s - %s", self.address_string(), format % args)


class HttpServer(ThreadingHTTPServer):
    """The REST API's HTTP server; `drain(grace)` stops accepting and waits for in-flight
    requests."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, api: RestApi, max_request_bytes: int | None):
        self.api = api
        self.max_request_bytes = max_request_bytes
        self.draining = False
        self._in_flight = 0
        self._idle = threading.Condition()
        super().__init__(address, _HttpHandler)

    def begin_request(self) -> bool:
        """Counts a request in; False once draining (the request is refused)."""
        with self._idle:
            if self.draining:
                return False
            self._in_flight += 1
            return True

    def end_request(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def drain(self, grace: float) -> int:
        """Stops accepting connections and waits up to `grace` seconds for the requests in
        flight; returns how many were still running when the wait ended (0: all finished)."""
        with self._idle:
            self.draining = True
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + grace
        with self._idle:
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            return self._in_flight

    def handle_error(self, request, client_address):
        # A client that went away mid-reply is not the server's problem: no traceback.
        logger.debug("REST connection from %s failed", client_address, exc_info=True)


def make_http_server(host: str, port: int, api: RestApi,
                     max_request_bytes: int | None) -> HttpServer:
    """An HttpServer bound to (host, port) (IPv6 when host has a colon)."""
    host = host.strip("[]")
    server_class = HttpServer
    if ":" in host:
        server_class = type("HttpServer6", (HttpServer,), {"address_family": socket.AF_INET6})
    return server_class((host, port), api, max_request_bytes)
