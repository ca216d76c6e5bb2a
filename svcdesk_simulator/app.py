"""``Simulator``: the two vendor APIs, their data, and the test controls, behind one object.

It only wires together the parts that do the work, one per job (listed in the package
docstring), so tests, the demo and the benchmark see one API. ``settings_for`` points a sync at
a running simulator; ``serve_forever`` runs one in the foreground (``svcdesk simulate``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from svcdesk_simulator.background import BackgroundServer
from svcdesk_simulator.budget import Budget, RequestBudget
from svcdesk_simulator.churn import Churn
from svcdesk_simulator.clock import Clock
from svcdesk_simulator.faults import Faults
from svcdesk_simulator.hooks import HookHandle, Hooks
from svcdesk_simulator.latency import Latency
from svcdesk_simulator.listings import Listings
from svcdesk_simulator.mutations import Mutations
from svcdesk_simulator.request_log import RequestInfo, RequestLog
from svcdesk_simulator.routing import ApiKeys, Router
from svcdesk_simulator.server import LOOPBACK, Response
from svcdesk_simulator.vendor import VendorData, VendorSize

SERVE_FOREVER_LOG_LIMIT = 10_000


class Simulator:
    """The service desk and incident management APIs on 127.0.0.1, seeded and scriptable.

    See the package docstring for the design, and the vendor's documented behaviour it follows.
    ``size`` says how much data it holds (``VendorSize``); keyword arguments named like its
    fields override them: ``Simulator(tickets=345, seed=7)``. Soft-deleted tickets are not
    listed, so the plain ticket listing shows ``len(live_tickets())`` records, not ``tickets``.
    ``cache_megabytes`` bounds the serialised-record cache (``VendorData``).
    ``request_log_limit`` keeps only that many latest entries in ``requests`` (None: all),
    for long-running servers. ``latency_ms``/``jitter_ms`` and ``budget`` start it paced and
    budgeted, as ``pace`` and ``set_budget`` do.
    """

    def __init__(
        self,
        size: VendorSize = VendorSize(),
        *,
        service_desk_api_key: str = "sd-test-key",
        incident_management_api_key: str = "im-test-key",
        port: int = 0,
        cache_megabytes: int = 128,
        request_log_limit: int | None = None,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        budget: Budget | None = None,
        **size_fields: Any,
    ) -> None:
        self.size = dataclasses.replace(size, **size_fields)
        self.seed = self.size.seed
        self.faults = Faults()
        self._keys = ApiKeys(service_desk_api_key, incident_management_api_key)
        self._clock = Clock()
        self._hooks = Hooks()
        self._log = RequestLog(request_log_limit)
        data = VendorData(self.size, cache_megabytes)
        self._listings = Listings(data)
        self._mutations = Mutations(data, self._clock)
        self._latency = Latency(self.seed, latency_ms, jitter_ms)
        self._budget = RequestBudget(self._clock, budget)
        self._churn = Churn(data, self._mutations, self.seed)
        self._server = BackgroundServer(port)
        self._router = Router(
            self._keys, self._listings, self._hooks, self.faults, self._log, self._server.stopping,
            self._latency, self._budget,
        )

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Simulator:
        """Serve on 127.0.0.1 from a background thread; returns once the server answers."""
        self._server.start(self._router)
        return self

    def stop(self) -> None:
        """Stop the churn and serving, close every connection, join the threads. Idempotent."""
        self._churn.stop()
        self._server.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def service_desk_url(self) -> str:
        return f"{self.base_url}/service-desk"

    @property
    def incident_management_url(self) -> str:
        return f"{self.base_url}/incident-management"

    @property
    def api_keys(self) -> ApiKeys:
        """The keys the two APIs accept."""
        return self._keys

    def respond(self, method: str, target: str) -> Response:
        """Answer one HTTP request as the server does (``routing.Router``)."""
        return self._router.respond(method, target)

    # -- ground truth ----------------------------------------------------------------

    def live_tickets(self) -> list[dict[str, Any]]:
        """Tickets a plain listing shows now (soft-deleted ones excluded), ascending id."""
        return list(self.iter_live_tickets())

    def iter_live_tickets(self) -> Iterator[dict[str, Any]]:
        """``live_tickets`` streamed: constant memory even for 1,000,000 tickets."""
        return self._listings.iter_live("tickets")

    def all_tickets(self) -> list[dict[str, Any]]:
        """Every ticket including the soft-deleted ones (``deleted_at`` set)."""
        return list(self._listings.iter_all("tickets"))

    def live_incidents(self) -> list[dict[str, Any]]:
        return list(self._listings.iter_live("incidents"))

    def live_services(self) -> list[dict[str, Any]]:
        """Services that ``/v1/services`` lists now (removed ones excluded)."""
        return list(self._listings.iter_live("services"))

    def get(self, resource: str, record_id: Any) -> dict[str, Any]:
        """One record as the API serves it (soft-deleted tickets included); KeyError if absent."""
        return self._listings.get(resource, record_id)

    # -- mutations -------------------------------------------------------------------

    def create_ticket(self, **overrides: Any) -> dict[str, Any]:
        """A new ticket (status "new", created and updated now) with the next id."""
        return self._mutations.create("tickets", overrides)

    def update_ticket(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        """Change fields of a ticket; ``updated_at`` becomes now unless given."""
        return self._mutations.update("tickets", ticket_id, fields)

    def delete_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Soft delete: ``deleted_at`` and ``updated_at`` become now."""
        return self._mutations.delete_ticket(ticket_id)

    def create_incident(self, **overrides: Any) -> dict[str, Any]:
        """A new triggered incident; its ``service_id`` is a live service unless given."""
        return self._mutations.create_incident(overrides)

    def update_incident(self, incident_id: str, **fields: Any) -> dict[str, Any]:
        """Also stamps ``acknowledged_at``/``resolved_at`` when ``status`` moves to
        acknowledged/resolved (and clears them on a re-trigger), unless they are given."""
        return self._mutations.update_incident(incident_id, fields)

    def create_service(self, **overrides: Any) -> dict[str, Any]:
        return self._mutations.create("services", overrides)

    def update_service(self, service_id: str, **fields: Any) -> dict[str, Any]:
        return self._mutations.update("services", service_id, fields)

    def remove_service(self, service_id: str) -> None:
        """The service disappears from ``/v1/services``; incidents keep referencing it."""
        self._mutations.remove_service(service_id)

    def add_extra_field(self, resource: str, name: str, value: Any) -> None:
        """Every record of ``resource`` gains field ``name`` (a vendor adding a field).
        ``value`` may be a callable taking the record dict. Does not change ``updated_at``."""
        self._mutations.add_extra_field(resource, name, value)

    def set_field_transform(self, resource: str, field: str, fn: Callable[[Any], Any]) -> None:
        """Every served record's ``field`` becomes ``fn(value)`` (e.g. a type change).
        Replaces an earlier transform of that field. ``updated_since`` filters on the stored,
        untransformed ``updated_at``."""
        self._mutations.set_field_transform(resource, field, fn)

    # -- a distant, rate-limited, busy vendor ------------------------------------------

    def pace(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """Every answer waits ``latency_ms`` (+- a seeded uniform ``jitter_ms``, at most
        ``latency_ms``) before it is sent, on its own connection, so concurrent requests
        overlap; 0 switches it off (``latency.py``)."""
        self._latency.set(latency_ms, jitter_ms)

    def set_budget(self, requests: int | None, window_seconds: float = 60.0, headers: str = "ietf") -> None:
        """Each API key may make ``requests`` requests per fixed window of ``window_seconds``,
        then gets 429s; announced in ``headers`` style ("ietf", "x-ratelimit", "x-rate-limit" or
        "none"). ``None`` switches it off. Counters start afresh (``budget.py``)."""
        self._budget.configure(None if requests is None else Budget(requests, window_seconds, headers))

    def start_churn(self, per_minute: int) -> None:
        """Change ``per_minute`` records a minute, evenly spread, from a background thread
        (0 stops it), until ``stop_churn`` or ``stop`` (``churn.py``)."""
        self._churn.start(per_minute)

    def stop_churn(self) -> None:
        """Stop the churn; returns once its thread has ended. Idempotent."""
        self._churn.stop()

    # -- clock -----------------------------------------------------------------------

    @property
    def clock_offset(self) -> dt.timedelta:
        """The vendor's clock minus the real UTC clock (may be negative)."""
        return self._clock.offset

    @clock_offset.setter
    def clock_offset(self, offset: dt.timedelta) -> None:
        self._clock.offset = offset

    def now_ms(self) -> int:
        """The vendor's current time, in milliseconds since 1970."""
        return self._clock.now_ms()

    def now(self) -> str:
        """The vendor's current time as the API writes it, e.g. ``2026-11-20T08:15:02.517Z``."""
        return self._clock.now()

    # -- hooks and request log -------------------------------------------------------

    def on_request(self, callback: Callable[[RequestInfo], None]) -> HookHandle:
        """Call ``callback(info)`` in the server thread before each API request is answered
        (before faults and auth are applied). It may call the mutation methods."""
        return self._hooks.add(callback)

    def clear_hooks(self) -> None:
        self._hooks.clear()

    @property
    def requests(self) -> list[RequestInfo]:
        """Every request answered (oldest first), each with its ``status``."""
        return self._log.entries()

    def request_count(self, resource: str | None = None, status: int | None = None) -> int:
        return self._log.count(resource, status)

    def reset_request_log(self) -> None:
        self._log.reset()


def settings_for(
    sim: Simulator, service_desk_key: str | None = None, incident_management_key: str | None = None
) -> dict[str, str]:
    """The settings a sync reads (README, Configuration) that point both APIs at ``sim``: its
    base URLs, and the given keys or, by default, the keys ``sim`` accepts."""
    keys = sim.api_keys
    return {
        "SOURCES__SERVICE_DESK__BASE_URL": sim.service_desk_url,
        "SOURCES__SERVICE_DESK__API_KEY": keys.service_desk if service_desk_key is None else service_desk_key,
        "SOURCES__INCIDENT_MANAGEMENT__BASE_URL": sim.incident_management_url,
        "SOURCES__INCIDENT_MANAGEMENT__API_KEY": (
            keys.incident_management if incident_management_key is None else incident_management_key
        ),
    }


def serve_forever(
    port: int,
    size: VendorSize,
    service_desk_api_key: str,
    incident_management_api_key: str,
    *,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    budget: Budget | None = None,
    churn_per_minute: int = 0,
) -> None:
    """Run a simulator in the foreground until Ctrl-C (or SIGTERM), then stop cleanly.

    Prints the two base URLs and, in one line, the latency, budget and churn in force (never
    the keys). Keeps only the last 10,000 request-log entries, since a long-running server
    would otherwise grow without bound."""
    simulator = Simulator(
        size,
        service_desk_api_key=service_desk_api_key,
        incident_management_api_key=incident_management_api_key,
        port=port,
        request_log_limit=SERVE_FOREVER_LOG_LIMIT,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        budget=budget,
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    try:  # around everything: Ctrl-C may land anywhere, even before the wait starts
        with simulator:
            simulator.start_churn(churn_per_minute)
            _print_banner(simulator, _conditions(latency_ms, jitter_ms, budget, churn_per_minute))
            threading.Event().wait()
    except KeyboardInterrupt:
        pass


def _print_banner(simulator: Simulator, conditions: str) -> None:
    print(f"Service desk API:         {simulator.service_desk_url}", flush=True)
    print(f"Incident management API:  {simulator.incident_management_url}", flush=True)
    print(f"Vendor conditions:        {conditions}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)


def _conditions(latency_ms: float, jitter_ms: float, budget: Budget | None, churn_per_minute: int) -> str:
    """What ``serve_forever`` switched on, in words: "latency 200 ms +- 50 ms; budget ...; no churn"."""
    latency = f"latency {latency_ms:g} ms" if latency_ms else "no latency"
    if jitter_ms:  # never without latency_ms: the jitter is at most the latency
        latency += f" +- {jitter_ms:g} ms"
    if budget is None:
        rate_limit = "no request budget"
    else:
        announced = ", ".join(budget.header_names) or "announced in no header"
        rate_limit = f"budget {budget.requests} requests per {budget.window_seconds:g} s per API key ({announced})"
    churn = f"churn {churn_per_minute} changes a minute" if churn_per_minute else "no churn"
    return f"{latency}; {rate_limit}; {churn}"
