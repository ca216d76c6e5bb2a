"""The server's lifecycle: serving on a background thread, so a test drives the simulator and
its client from one process.

``start`` returns only once the server answers over HTTP, and ``stop`` closes every connection
(idle keep-alive ones included) and joins their threads, so a test never races a server that is
not up yet or outlives it.
"""

from __future__ import annotations

import http.client
import threading
import time

from svcdesk_simulator.routing import HEALTH_PATH
from svcdesk_simulator.server import LOOPBACK, Application, SimulatorHTTPServer


class BackgroundServer:
    """One ``SimulatorHTTPServer`` on 127.0.0.1, started and stopped any number of times.

    ``port`` 0 takes a free port, known from ``start`` on. ``stopping`` is set while the server
    stops, so waits in request threads (a "slow" fault) end at once.
    """

    def __init__(self, port: int) -> None:
        self.stopping = threading.Event()
        self._requested_port = port
        self._port: int | None = port or None
        self._lock = threading.Lock()
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("port 0 is only resolved by start()")
        return self._port

    def start(self, app: Application) -> None:
        """Serve ``app`` from a background thread; returns once the server answers. Idempotent."""
        with self._lock:
            if self._server is not None:
                return
            self.stopping.clear()
            server = SimulatorHTTPServer(self._requested_port, app)
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05},
                name="svcdesk-simulator", daemon=True,
            )
            self._thread.start()
            self._server, self._port = server, server.server_address[1]
        self._wait_until_ready()

    def stop(self) -> None:
        """Stop serving, close every connection, join the threads. Idempotent."""
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        self.stopping.set()  # ends any delayed ("slow") answer at once
        server.shutdown()
        server.close_connections(timeout=5.0)
        server.server_close()
        thread.join(5.0)

    def _wait_until_ready(self, timeout: float = 10.0) -> None:
        """Poll the health path over HTTP: the listening socket accepts connections before
        the serving thread runs, so only an answer proves the server is up."""
        deadline = time.monotonic() + timeout
        while True:
            connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
            try:
                connection.request("GET", HEALTH_PATH)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"simulator on port {self.port} did not answer within {timeout}s")
                self.stopping.wait(0.01)
            finally:
                connection.close()
