"""The HTTP layer: a threading HTTP/1.1 server on 127.0.0.1 that hands each request to an
``Application`` and writes its ``Response`` in a single ``write`` call.

Built on ``http.server`` so it needs nothing outside the standard library, with what that
module does not do by default and a fast client needs: keep-alive (HTTP/1.1), Nagle
disabled and one write per response (no 40 ms delayed-ACK stalls), Content-Length always,
no per-request logging, no reverse DNS lookup at bind time. It also tracks open
connections so ``stop()`` can close idle keep-alive connections and join their threads, and
it can end a connection with a TCP reset (for the "dropped connection" fault).
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Response:
    """A complete answer. ``mode``: "full", "truncate" (send half the body, then close:
    the client sees fewer bytes than Content-Length) or "drop" (send half, then reset)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    mode: str = "full"


class Application(Protocol):
    def respond(self, method: str, target: str) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

    def do_GET(self) -> None:
        self._answer()

    # Other methods reach the application too, which answers 405. HEAD is left to
    # BaseHTTPRequestHandler (501 without a body) since a HEAD answer must not carry one.
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silenced: writing a log line per request would cost more than answering it."""

    def _answer(self) -> None:
        response = self.server.app.respond(self.command, self.path)
        if self.command != "GET":  # its request body, if any, is unread: do not reuse the connection
            self.close_connection = True
        try:
            self.wfile.write(self._serialise(response))
        except OSError:  # the client went away (e.g. it timed out on a slow answer)
            self.close_connection = True
            return
        if response.mode == "drop":
            self.server.reset_on_close(self.connection)

    def _serialise(self, response: Response) -> bytes:
        body = response.body
        lines = [
            f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if response.mode != "full":
            self.close_connection = True
            body = body[: len(body) // 2]
        if self.close_connection:
            lines.append("Connection: close")
        return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


class SimulatorHTTPServer(ThreadingHTTPServer):
    """One thread per connection (keep-alive connections serve many requests each)."""

    daemon_threads = True
    block_on_close = False  # stop() joins the connection threads itself, with a timeout
    request_queue_size = 128

    def __init__(self, port: int, app: Application) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._resets: set[socket.socket] = set()
        super().__init__((LOOPBACK, port), _Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s ``getfqdn`` call, which can block on DNS."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: socket.socket, client_address: object) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address),
            name="svcdesk-simulator-connection", daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def reset_on_close(self, request: socket.socket) -> None:
        """Close this connection with a TCP RST instead of a FIN when its handler ends."""
        with self._lock:
            self._resets.add(request)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._lock:
            self._connections.pop(request, None)
            reset = request in self._resets
            self._resets.discard(request)
        if not reset:
            super().shutdown_request(request)
            return
        try:  # SO_LINGER with a zero timeout makes close() send RST and drop unsent data
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        request.close()

    def handle_error(self, request: object, client_address: object) -> None:
        """Connection errors are normal here (faults, clients timing out); stay quiet."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Wake every connection thread (idle keep-alive ones block reading) and join them."""
        with self._lock:  # (a hook calling stop() runs on one of these threads: skip it)
            connections = [(s, t) for s, t in self._connections.items() if t is not threading.current_thread()]
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
