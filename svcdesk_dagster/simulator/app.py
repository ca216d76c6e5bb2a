"""``Simulator``: the two vendor APIs, their data, and the test controls."""

from __future__ import annotations

import datetime as dt
import hmac
import http.client
import re
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from svcdesk_dagster.simulator.data import (
    IncidentFactory,
    RecordFactory,
    ServiceFactory,
    TicketFactory,
    Timeline,
    epoch_ms_for_seed,
    pick_ids,
)
from svcdesk_dagster.simulator.faults import Decision, Faults
from svcdesk_dagster.simulator.server import LOOPBACK, Response, SimulatorHTTPServer
from svcdesk_dagster.simulator.store import ResourceStore, encode_json
from svcdesk_dagster.simulator.timestamps import iso_ms, parse_iso_ms

MAX_RECORDS = 1_000_000
MAX_LIMIT = 100
HEALTH_PATH = "/_simulator/health"  # readiness probe of start(); not an API path, not logged
_ROUTES = {
    "/service-desk/v1/tickets": ("service_desk", "tickets"),
    "/incident-management/v1/incidents": ("incident_management", "incidents"),
    "/incident-management/v1/services": ("incident_management", "services"),
}
_FILTERABLE = frozenset({"tickets", "incidents"})  # /v1/services ignores updated_since
_EVERYTHING = -(2**62)  # an updated_since older than any record: the listing of all tickets
_DIGITS = re.compile(r"[0-9]+")
_ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "service_unavailable",
    504: "gateway_timeout",
}
_PROXY_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


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
    "rate_limited"), or None.
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


class HookHandle:
    """Returned by ``Simulator.on_request``; ``remove()`` unregisters that one callback."""

    def __init__(self, simulator: Simulator, callback: Callable[[RequestInfo], None]) -> None:
        self._simulator = simulator
        self.callback = callback

    def remove(self) -> None:
        self._simulator._remove_hook(self)


class _BadRequest(Exception):
    """A query parameter the vendor rejects (400); the message names the parameter."""


def _error_body(status: int, message: str) -> bytes:
    code = _ERROR_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return encode_json({"error": {"code": code, "message": message}})


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, _error_body(status, message), headers=headers)


def _paging_value(params: dict[str, str], name: str, default: int, lowest: int, highest: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) and lowest <= int(raw) <= (highest if highest is not None else int(raw)):
        return int(raw)
    bounds = f"from {lowest} to {highest}" if highest is not None else f">= {lowest}"
    raise _BadRequest(f"invalid {name} {raw!r}: must be an integer {bounds}")


def _lenient_paging(params: dict[str, str], name: str, default: int, lowest: int, highest: int | None) -> int | None:
    try:
        return _paging_value(params, name, default, lowest, highest)
    except _BadRequest:
        return None


class Simulator:
    """The service desk and incident management APIs on 127.0.0.1, seeded and scriptable.

    See the package docstring for the design, and the vendor's documented behaviour it follows.
    Record counts go from 0 to 1,000,000 each; ``deleted_ticket_fraction`` of the generated
    tickets (default 2%) are already soft-deleted, as on a real service desk, so the plain
    ticket listing shows ``len(live_tickets())`` records, not ``tickets``.
    ``cache_megabytes`` bounds the serialised-record cache (split 60/30/10 between tickets,
    incidents and services). ``request_log_limit`` keeps only that many latest entries in
    ``requests`` (None: all), for long-running servers.
    """

    def __init__(
        self,
        tickets: int = 1_000,
        incidents: int = 500,
        services: int = 20,
        seed: int = 42,
        service_desk_api_key: str = "sd-test-key",
        incident_management_api_key: str = "im-test-key",
        port: int = 0,
        *,
        deleted_ticket_fraction: float = 0.02,
        cache_megabytes: int = 128,
        request_log_limit: int | None = None,
    ) -> None:
        for name, count in (("tickets", tickets), ("incidents", incidents), ("services", services)):
            if not 0 <= count <= MAX_RECORDS:
                raise ValueError(f"{name} must be from 0 to {MAX_RECORDS:,}, not {count}")
        if incidents and not services:
            raise ValueError("incidents reference services: services must be >= 1 when incidents > 0")
        if not service_desk_api_key or not incident_management_api_key:
            raise ValueError("API keys must be non-empty")
        self.seed = seed
        self.faults = Faults()
        self._keys = {"service_desk": service_desk_api_key, "incident_management": incident_management_api_key}
        self._requested_port = port
        self._port: int | None = port or None
        self._lock = threading.RLock()  # guards the stores (mutations vs. page building)
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._hooks: tuple[HookHandle, ...] = ()
        self._log: deque[RequestInfo] = deque(maxlen=request_log_limit)
        self._arrivals = 0
        self._offset_ms = 0
        self._clock_offset = dt.timedelta(0)
        self._stores = self._build_stores(tickets, incidents, services, deleted_ticket_fraction, cache_megabytes)

    def _build_stores(self, tickets: int, incidents: int, services: int, deleted_fraction: float,
                      cache_megabytes: int) -> dict[str, ResourceStore]:
        seed, epoch = self.seed, epoch_ms_for_seed(self.seed)
        service_factory = ServiceFactory(seed, epoch)
        factories: list[tuple[RecordFactory, int, float, float]] = [
            (TicketFactory(seed, epoch), tickets, deleted_fraction, 0.6),
            (IncidentFactory(seed, epoch, service_factory, services), incidents, 0.0, 0.3),
            (service_factory, services, 0.0, 0.1),
        ]
        return {
            factory.resource: ResourceStore(
                factory,
                Timeline(n, seed, factory.resource, epoch),
                pick_ids(n, seed, f"{factory.resource}:deleted", fraction),
                int(cache_megabytes * share * 2**20),
            )
            for factory, n, fraction, share in factories
        }

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Simulator:
        """Serve on 127.0.0.1 from a background thread; returns once the server answers."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = SimulatorHTTPServer(self._requested_port, self)
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05},
                name="svcdesk-simulator", daemon=True,
            )
            self._thread.start()
            self._server, self._port = server, server.server_address[1]
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, join the threads. Idempotent."""
        with self._lifecycle:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        self._stopping.set()  # ends any delayed ("slow") answer at once
        server.shutdown()
        server.close_connections(timeout=5.0)
        server.server_close()
        thread.join(5.0)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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
                self._stopping.wait(0.01)
            finally:
                connection.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("port 0 is only resolved by start()")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def service_desk_url(self) -> str:
        return f"{self.base_url}/service-desk"

    @property
    def incident_management_url(self) -> str:
        return f"{self.base_url}/incident-management"

    # -- ground truth ----------------------------------------------------------------

    def live_tickets(self) -> list[dict[str, Any]]:
        """Tickets a plain listing shows now (soft-deleted ones excluded), ascending id."""
        return list(self.iter_live_tickets())

    def iter_live_tickets(self) -> Iterator[dict[str, Any]]:
        """``live_tickets`` streamed: constant memory even for 1,000,000 tickets."""
        return self._iter_served("tickets", None)

    def all_tickets(self) -> list[dict[str, Any]]:
        """Every ticket including the soft-deleted ones (``deleted_at`` set)."""
        return list(self._iter_served("tickets", _EVERYTHING))

    def live_incidents(self) -> list[dict[str, Any]]:
        return list(self._iter_served("incidents", None))

    def live_services(self) -> list[dict[str, Any]]:
        """Services that ``/v1/services`` lists now (removed ones excluded)."""
        return list(self._iter_served("services", None))

    def get(self, resource: str, record_id: Any) -> dict[str, Any]:
        """One record as the API serves it (soft-deleted tickets included); KeyError if absent."""
        store = self._store(resource)
        with self._lock:
            key = store.factory.key_of(record_id)
            store.core(key)  # KeyError for unknown or removed records
            return store.served([key])[0]

    def _iter_served(self, resource: str, since_ms: int | None, batch: int = 100) -> Iterator[dict[str, Any]]:
        """Records of a listing as of the call; served in batches so the lock is never held
        while the caller consumes them (records changed meanwhile show their new state)."""
        store = self._store(resource)
        with self._lock:
            keys = store.keys(since_ms)
        while True:
            with self._lock:
                taken = _take(keys, batch)
                records = store.served(key for key in taken if store.exists(key))
            if not taken:
                return
            yield from records

    # -- mutations -------------------------------------------------------------------

    def create_ticket(self, **overrides: Any) -> dict[str, Any]:
        """A new ticket (status "new", created and updated now) with the next id."""
        return self._create("tickets", overrides)

    def update_ticket(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        return self._update("tickets", ticket_id, fields)

    def delete_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Soft delete: ``deleted_at`` and ``updated_at`` become now."""
        now = self.now()
        return self._update("tickets", ticket_id, {"deleted_at": now, "updated_at": now})

    def create_incident(self, **overrides: Any) -> dict[str, Any]:
        """A new triggered incident; its ``service_id`` is a live service unless given."""
        with self._lock:
            if "service_id" not in overrides:
                overrides["service_id"] = self._live_service_id()
            return self._create("incidents", overrides)

    def update_incident(self, incident_id: str, **fields: Any) -> dict[str, Any]:
        """Also stamps ``acknowledged_at``/``resolved_at`` when ``status`` moves to
        acknowledged/resolved (and clears them on a re-trigger), unless they are given."""
        with self._lock:
            store = self._store("incidents")
            current = store.core(store.factory.key_of(incident_id))
            now = self.now()  # one reading, so the stamps equal updated_at
            stamps = self._lifecycle_stamps(current["status"], fields.get("status", current["status"]), now)
            return self._update("incidents", incident_id, {"updated_at": now, **stamps, **fields})

    def create_service(self, **overrides: Any) -> dict[str, Any]:
        return self._create("services", overrides)

    def update_service(self, service_id: str, **fields: Any) -> dict[str, Any]:
        return self._update("services", service_id, fields)

    def remove_service(self, service_id: str) -> None:
        """The service disappears from ``/v1/services``; incidents keep referencing it."""
        store = self._store("services")
        with self._lock:
            store.remove(store.factory.key_of(service_id))

    def add_extra_field(self, resource: str, name: str, value: Any) -> None:
        """Every record of ``resource`` gains field ``name`` (a vendor adding a field).
        ``value`` may be a callable taking the record dict. Does not change ``updated_at``."""
        with self._lock:
            self._store(resource).add_extra_field(name, value)

    def set_field_transform(self, resource: str, field: str, fn: Callable[[Any], Any]) -> None:
        """Every served record's ``field`` becomes ``fn(value)`` (e.g. a type change).
        Replaces an earlier transform of that field. ``updated_since`` filters on the stored,
        untransformed ``updated_at``."""
        with self._lock:
            self._store(resource).set_field_transform(field, fn)

    def _create(self, resource: str, overrides: dict[str, Any]) -> dict[str, Any]:
        store = self._store(resource)
        with self._lock:
            self._check_fields(store, overrides)
            key = store.max_key + 1
            record = store.factory.fresh(key, self.now_ms())
            record.update(overrides)
            store.put(key, record)
            return store.served([key])[0]

    def _update(self, resource: str, record_id: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a record; ``updated_at`` becomes now unless given explicitly."""
        store = self._store(resource)
        with self._lock:
            self._check_fields(store, fields)
            key = store.factory.key_of(record_id)
            record = store.core(key)
            record.update({"updated_at": self.now(), **fields})
            store.put(key, record)
            return store.served([key])[0]

    def _check_fields(self, store: ResourceStore, fields: dict[str, Any]) -> None:
        allowed = (set(store.factory.fields) | store.extra_field_names) - {"id"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise ValueError(f"{store.factory.resource}: no settable field(s) {unknown}; allowed: {sorted(allowed)}")

    @staticmethod
    def _lifecycle_stamps(old_status: str, status: str, now: str) -> dict[str, Any]:
        if status == old_status:
            return {}
        if status == "triggered":
            return {"acknowledged_at": None, "resolved_at": None}
        if status == "acknowledged":
            return {"acknowledged_at": now, "resolved_at": None}
        return {"resolved_at": now} if status == "resolved" else {}

    def _live_service_id(self) -> str:
        store = self._store("services")
        first = next(store.keys(None), None)
        if first is None:
            raise ValueError("no live service to attach the incident to; pass service_id")
        return store.factory.public_id(first)

    # -- clock -----------------------------------------------------------------------

    @property
    def clock_offset(self) -> dt.timedelta:
        """The vendor's clock minus the real UTC clock (may be negative)."""
        return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, offset: dt.timedelta) -> None:
        self._clock_offset = offset
        self._offset_ms = offset // dt.timedelta(milliseconds=1)

    def now_ms(self) -> int:
        """The vendor's current time, in milliseconds since 1970."""
        return time.time_ns() // 1_000_000 + self._offset_ms

    def now(self) -> str:
        """The vendor's current time as the API writes it, e.g. ``2026-11-20T08:15:02.517Z``."""
        return iso_ms(self.now_ms())

    # -- hooks and request log -------------------------------------------------------

    def on_request(self, callback: Callable[[RequestInfo], None]) -> HookHandle:
        """Call ``callback(info)`` in the server thread before each API request is answered
        (before faults and auth are applied). It may call the mutation methods."""
        handle = HookHandle(self, callback)
        with self._lock:
            self._hooks = (*self._hooks, handle)
        return handle

    def clear_hooks(self) -> None:
        with self._lock:
            self._hooks = ()

    def _remove_hook(self, handle: HookHandle) -> None:
        with self._lock:
            self._hooks = tuple(h for h in self._hooks if h is not handle)

    @property
    def requests(self) -> list[RequestInfo]:
        """Every request answered (oldest first), each with its ``status``."""
        with self._lock:
            return list(self._log)

    def request_count(self, resource: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1 for info in self._log
                if (resource is None or info.resource == resource) and (status is None or info.status == status)
            )

    def reset_request_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- serving ---------------------------------------------------------------------

    def respond(self, method: str, target: str) -> Response:
        """Answer one HTTP request (called by the server, one thread per connection)."""
        path, _, query = target.partition("?")
        if path == HEALTH_PATH:
            return Response(200, b'{"status":"ok"}')
        params = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
        public_params = {name: value for name, value in params.items() if name != "api_key"}
        route = _ROUTES.get(path)
        info = self._arrive(route, path, public_params)
        try:
            response = self._route(method, path, route, params, info)
        except Exception:  # a failing hook, extra field or transform: show it, keep serving
            traceback.print_exc()
            response = _error(500, "the simulator failed answering this request; see its stderr")
        self._record(info, response)
        return response

    def _route(self, method: str, path: str, route: tuple[str, str] | None, params: dict[str, str],
               info: RequestInfo) -> Response:
        if route is None:
            return _error(404, f"no such endpoint: {path}")
        if method != "GET":
            return _error(405, f"{method} is not supported; use GET", (("Allow", "GET"),))
        for handle in self._hooks:
            handle.callback(info)
        return self._respond_to_api(route, params, info)

    def _arrive(self, route: tuple[str, str] | None, path: str, params: dict[str, str]) -> RequestInfo:
        with self._lock:
            index, self._arrivals = self._arrivals, self._arrivals + 1
        api, resource = route or (None, None)
        return RequestInfo(
            api, resource, path, params,
            offset=_lenient_paging(params, "offset", 0, 0, None),
            limit=_lenient_paging(params, "limit", MAX_LIMIT, 1, MAX_LIMIT),
            index=index,
        )

    def _record(self, info: RequestInfo, response: Response) -> None:
        info.status = response.status if response.mode == "full" else 0
        with self._lock:
            self._log.append(info)

    def _respond_to_api(self, route: tuple[str, str], params: dict[str, str], info: RequestInfo) -> Response:
        decision = self.faults.decide(route[1])
        if decision.delay:
            self._stopping.wait(decision.delay)
        info.fault = decision.kind
        if decision.kind in ("error", "rate_limited", "html_502"):
            return self._fault_response(decision)
        response = self._vendor_response(route, params)
        if decision.kind in ("drop", "truncate"):
            return Response(response.status, response.body, response.content_type, response.headers, decision.kind)
        return response

    @staticmethod
    def _fault_response(decision: Decision) -> Response:
        if decision.kind == "html_502":
            return Response(502, _PROXY_502, content_type="text/html")
        if decision.kind == "rate_limited":
            return _error(429, "rate limit exceeded", (("Retry-After", str(decision.retry_after)),))
        return _error(decision.status, "injected failure: try again later")

    def _vendor_response(self, route: tuple[str, str], params: dict[str, str]) -> Response:
        api, resource = route
        key = params.get("api_key")
        if key is None or not hmac.compare_digest(key.encode(), self._keys[api].encode()):
            return _error(401, "missing or invalid api_key")
        try:
            offset = _paging_value(params, "offset", 0, 0, None)
            limit = _paging_value(params, "limit", MAX_LIMIT, 1, MAX_LIMIT)
            since_ms = self._since(resource, params)
        except _BadRequest as bad:
            return _error(400, str(bad))
        store = self._stores[resource]
        with self._lock:
            records, total = store.page(since_ms, offset, limit)
        tail = b'],"total":%d,"offset":%d,"limit":%d}' % (total, offset, limit)
        return Response(200, b'{"data":[' + b",".join(records) + tail)

    @staticmethod
    def _since(resource: str, params: dict[str, str]) -> int | None:
        raw = params.get("updated_since")
        if raw is None or resource not in _FILTERABLE:
            return None
        try:
            return parse_iso_ms(raw)
        except ValueError:
            raise _BadRequest(
                f"invalid updated_since {raw!r}: must be an ISO 8601 timestamp with a UTC offset, "
                "e.g. 2026-11-20T08:15:02.517Z"
            ) from None

    def _store(self, resource: str) -> ResourceStore:
        try:
            return self._stores[resource]
        except KeyError:
            raise ValueError(f"resource must be one of {sorted(self._stores)}, not {resource!r}") from None


def _take(iterator: Iterator[int], n: int) -> list[int]:
    return [key for _, key in zip(range(n), iterator)]


def serve_forever(
    port: int,
    tickets: int,
    incidents: int,
    services: int,
    seed: int,
    service_desk_api_key: str,
    incident_management_api_key: str,
) -> None:
    """Run a simulator in the foreground until Ctrl-C (or SIGTERM), then stop cleanly.

    Prints the two base URLs (never the keys). Keeps only the last 10,000 request-log
    entries, since a long-running server would otherwise grow without bound."""
    simulator = Simulator(
        tickets=tickets, incidents=incidents, services=services, seed=seed,
        service_desk_api_key=service_desk_api_key,
        incident_management_api_key=incident_management_api_key,
        port=port, request_log_limit=10_000,
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    try:  # around everything: Ctrl-C may land anywhere, even before the wait starts
        with simulator:
            print(f"Service desk API:         {simulator.service_desk_url}", flush=True)
            print(f"Incident management API:  {simulator.incident_management_url}", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
