"""Routing and auth: how one HTTP request becomes the vendor's answer.

Which path is which resource (``ROUTES``), the API-key check of each API, and the error answers
a vendor gives: 404 for an unknown path, 405 for a method other than GET, 401 for a missing or
wrong key, 429 when the key's request budget is spent (``budget.py``), 400 for an invalid query
(``listings.py``), and 500 when a test's hook, extra field or transform fails. Between arrival
and answer, hooks run (``hooks.py``) and injected faults (``faults.py``) are carried out, in
that order, before the key check and the budget; every answer then waits out the latency
(``latency.py``), on its own connection thread and holding no lock, and the request and its
status go to the request log.
"""

from __future__ import annotations

import hmac
import threading
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs

from svcdesk_simulator.budget import Headers, RequestBudget
from svcdesk_simulator.faults import Decision, Faults
from svcdesk_simulator.hooks import Hooks
from svcdesk_simulator.latency import Latency
from svcdesk_simulator.listings import BadRequest, Listings
from svcdesk_simulator.request_log import RequestInfo, RequestLog
from svcdesk_simulator.server import Response
from svcdesk_simulator.store import encode_json

HEALTH_PATH = "/_simulator/health"  # readiness probe (background.py); not an API path, not logged
ROUTES = {  # path: (api, resource); an api is also the name of its key in ApiKeys
    "/service-desk/v1/tickets": ("service_desk", "tickets"),
    "/incident-management/v1/incidents": ("incident_management", "incidents"),
    "/incident-management/v1/services": ("incident_management", "services"),
}
_ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "service_unavailable",
    504: "gateway_timeout",
}
_PROXY_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class ApiKeys:
    """The key each API accepts (never shown in a repr)."""

    service_desk: str = field(repr=False)
    incident_management: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.service_desk or not self.incident_management:
            raise ValueError("API keys must be non-empty")

    def accepts(self, api: str, key: str | None) -> bool:
        """Whether ``key`` is ``api``'s key, compared in constant time."""
        return key is not None and hmac.compare_digest(key.encode(), getattr(self, api).encode())


class Router:
    """The ``server.Application`` of the simulator: answers each request, on its connection's
    thread. ``stopping`` is set when the server stops, and cuts a "slow" fault's wait and the
    latency short."""

    def __init__(self, keys: ApiKeys, listings: Listings, hooks: Hooks, faults: Faults, log: RequestLog,
                 stopping: threading.Event, latency: Latency, budget: RequestBudget) -> None:
        self._keys = keys
        self._listings = listings
        self._hooks = hooks
        self._faults = faults
        self._log = log
        self._stopping = stopping
        self._latency = latency
        self._budget = budget

    def respond(self, method: str, target: str) -> Response:
        """Answer one HTTP request after the latency, and log it (unless it is the readiness
        probe, which answers at once)."""
        path, _, query = target.partition("?")
        if path == HEALTH_PATH:
            return Response(200, b'{"status":"ok"}')
        params = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
        route = ROUTES.get(path)
        info = self._log.arrive(route, path, {name: value for name, value in params.items() if name != "api_key"})
        try:
            response = self._route(method, path, route, params, info)
        except Exception:  # a failing hook, extra field or transform: show it, keep serving
            traceback.print_exc()
            response = _error(500, "the simulator failed answering this request; see its stderr")
        delay = self._latency.next_delay()
        if delay:
            self._stopping.wait(delay)
        self._log.record(info, response.status if response.mode == "full" else 0)
        return response

    def _route(self, method: str, path: str, route: tuple[str, str] | None, params: dict[str, str],
               info: RequestInfo) -> Response:
        if route is None:
            return _error(404, f"no such endpoint: {path}")
        if method != "GET":
            return _error(405, f"{method} is not supported; use GET", (("Allow", "GET"),))
        self._hooks.run(info)
        return self._with_faults(route, params, info)

    def _with_faults(self, route: tuple[str, str], params: dict[str, str], info: RequestInfo) -> Response:
        decision = self._faults.decide(route[1])
        if decision.delay:
            self._stopping.wait(decision.delay)
        info.fault = decision.kind
        if decision.kind in ("error", "rate_limited", "html_502"):
            return _fault_response(decision)
        response = self._vendor_response(route, params)
        if decision.kind in ("drop", "truncate"):
            return Response(response.status, response.body, response.content_type, response.headers, decision.kind)
        return response

    def _vendor_response(self, route: tuple[str, str], params: dict[str, str]) -> Response:
        api, resource = route
        if not self._keys.accepts(api, params.get("api_key")):
            return _error(401, "missing or invalid api_key")
        allowance = self._budget.spend(api)
        if not allowance.admitted:
            retry_after = (("Retry-After", str(allowance.reset_seconds)),)
            message = f"over the request budget of this api_key; retry in {allowance.reset_seconds} s"
            return _error(429, message, retry_after + allowance.headers)
        try:
            return Response(200, self._listings.page_body(resource, params), headers=allowance.headers)
        except BadRequest as bad:
            return _error(400, str(bad), allowance.headers)


def _error(status: int, message: str, headers: Headers = ()) -> Response:
    """The vendor's JSON error answer: ``{"error": {"code": ..., "message": ...}}``."""
    code = _ERROR_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return Response(status, encode_json({"error": {"code": code, "message": message}}), headers=headers)


def _fault_response(decision: Decision) -> Response:
    if decision.kind == "html_502":
        return Response(502, _PROXY_502, content_type="text/html")
    if decision.kind == "rate_limited":
        return _error(429, "rate limit exceeded", (("Retry-After", str(decision.retry_after)),))
    return _error(decision.status, "injected failure: try again later")
