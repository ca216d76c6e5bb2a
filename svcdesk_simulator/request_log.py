"""The request log: every API request the simulator answered, for tests to assert on.

A test proves what a client did (how many pages it read, with which ``updated_since``, how it
retried) from these records rather than from the client's own account of it. Readiness probes
(``routing.HEALTH_PATH``) are not logged.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from svcdesk_simulator.listings import requested_window


@dataclass
class RequestInfo:
    """One request as hooks see it and as ``Simulator.requests`` records it.

    ``index``: 0-based arrival order among all requests (readiness probes excluded).
    ``params``: query parameters (first value of each) without ``api_key``.
    ``offset``/``limit``: as the server will use them (defaults applied), None if invalid.
    ``api``/``resource``: None for an unknown path (those get a 404 and are not hooked).
    ``status``: None while hooks run; then the status answered, or 0 when a "drop" or
    "truncate" fault kept the client from getting a complete response.
    ``fault``: the injected fault's kind ("error", "html_502", "drop", "truncate",
    "rate_limited"), or None; a 429 for a spent request budget (``budget.py``) is the vendor's
    own answer, not a fault.
    """

    api: str | None
    resource: str | None
    path: str
    params: dict[str, str]
    offset: int | None
    limit: int | None
    index: int
    status: int | None = None
    fault: str | None = None


class RequestLog:
    """Requests in arrival order; ``limit`` keeps only that many latest ones (None: all), so a
    long-running server does not grow without bound."""

    def __init__(self, limit: int | None) -> None:
        self._lock = threading.Lock()  # connection threads arrive and record concurrently
        self._entries: deque[RequestInfo] = deque(maxlen=limit)
        self._arrivals = 0

    def arrive(self, route: tuple[str, str] | None, path: str, params: dict[str, str]) -> RequestInfo:
        """A request's record, numbered in arrival order; logged once ``record`` gives its status."""
        with self._lock:
            index, self._arrivals = self._arrivals, self._arrivals + 1
        api, resource = route or (None, None)
        offset, limit = requested_window(params)
        return RequestInfo(api, resource, path, params, offset=offset, limit=limit, index=index)

    def record(self, info: RequestInfo, status: int) -> None:
        info.status = status
        with self._lock:
            self._entries.append(info)

    def entries(self) -> list[RequestInfo]:
        """Every request answered (oldest first)."""
        with self._lock:
            return list(self._entries)

    def count(self, resource: str | None = None, status: int | None = None) -> int:
        """Requests answered, of ``resource`` and with ``status`` when given."""
        with self._lock:
            return sum(
                1 for info in self._entries
                if (resource is None or info.resource == resource) and (status is None or info.status == status)
            )

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
