"""The bundled API simulator against the vendors' documented behaviour, over real HTTP on 127.0.0.1.

Each test starts its own small simulator (a few milliseconds), so tests never see each
other's mutations or faults. Nothing is patched: requests go through ``requests`` and the
loopback network exactly as the project's client will send them.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from svcdesk_simulator import Budget, RequestInfo, Simulator

SD_KEY, IM_KEY = "sd-test-key", "im-test-key"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EPOCH_START = "1970-01-01T00:00:00Z"
BUDGET_HEADERS = {  # the contract's header styles: names of (limit, remaining, reset)
    "ietf": ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
    "x-ratelimit": ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"),
    "x-rate-limit": ("X-Rate-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"),
}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(tickets=250, incidents=120, services=12, seed=7) as simulator:
        yield simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # never route loopback traffic through a proxy from the environment
        yield session


def url(sim: Simulator, resource: str) -> str:
    base = sim.service_desk_url if resource == "tickets" else sim.incident_management_url
    return f"{base}/v1/{resource}"


def key_for(resource: str) -> str:
    return SD_KEY if resource == "tickets" else IM_KEY


def get(http: requests.Session, sim: Simulator, resource: str, **params: Any) -> requests.Response:
    return http.get(url(sim, resource), params={"api_key": key_for(resource), **params}, timeout=10)


def page_through(http: requests.Session, sim: Simulator, resource: str, limit: int = 100, **params: Any) -> list[dict]:
    records: list[dict] = []
    while True:
        body = get(http, sim, resource, offset=len(records), limit=limit, **params).json()
        if not body["data"]:
            return records
        records.extend(body["data"])


def parse(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp)


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def assert_error_response(response: requests.Response, status: int) -> requests.Response:
    """``assert_error``, returning the response (to look at its headers)."""
    assert_error(response, status)
    return response


# -- auth and routing ------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["tickets", "incidents", "services"])
def test_auth_missing_wrong_and_cross_api_keys_are_401(sim: Simulator, http: requests.Session, resource: str) -> None:
    other_key = IM_KEY if resource == "tickets" else SD_KEY
    assert_error(http.get(url(sim, resource)), 401, "unauthorized")
    assert_error(http.get(url(sim, resource), params={"api_key": "nope"}), 401, "unauthorized")
    assert_error(http.get(url(sim, resource), params={"api_key": other_key}), 401, "unauthorized")
    assert get(http, sim, resource).status_code == 200


def test_unknown_paths_and_methods(sim: Simulator, http: requests.Session) -> None:
    assert_error(http.get(f"{sim.service_desk_url}/v1/incidents", params={"api_key": SD_KEY}), 404, "not_found")
    assert_error(http.get(f"{sim.base_url}/nowhere"), 404, "not_found")
    assert_error(http.post(url(sim, "tickets"), params={"api_key": SD_KEY}), 405)
    assert sim.service_desk_url == f"http://127.0.0.1:{sim.port}/service-desk"
    assert sim.incident_management_url == f"http://127.0.0.1:{sim.port}/incident-management"


# -- paging --------------------------------------------------------------------------------


def test_paging_totals_and_ascending_order(sim: Simulator, http: requests.Session) -> None:
    live = sim.live_tickets()
    first = get(http, sim, "tickets").json()
    assert set(first) == {"data", "total", "offset", "limit"}
    assert (first["total"], first["offset"], first["limit"], len(first["data"])) == (len(live), 0, 100, 100)

    paged = page_through(http, sim, "tickets", limit=37)
    assert [t["id"] for t in paged] == [t["id"] for t in live]
    assert [t["id"] for t in paged] == sorted(t["id"] for t in paged)

    last = get(http, sim, "tickets", offset=len(live) - 3, limit=10).json()
    assert len(last["data"]) == 3 and last["total"] == len(live)
    past = get(http, sim, "tickets", offset=len(live), limit=10).json()
    assert past["data"] == [] and past["total"] == len(live)
    assert get(http, sim, "tickets", offset=10_000).json()["data"] == []


@pytest.mark.parametrize("value", ["0", "101", "-1", "abc", "1.5", ""])
def test_limit_validation(sim: Simulator, http: requests.Session, value: str) -> None:
    error = assert_error(get(http, sim, "incidents", limit=value), 400, "bad_request")
    assert "limit" in error["message"]


def test_offset_validation_and_limit_bounds(sim: Simulator, http: requests.Session) -> None:
    assert "offset" in assert_error(get(http, sim, "tickets", offset=-1), 400)["message"]
    assert "offset" in assert_error(get(http, sim, "services", offset="x"), 400)["message"]
    assert len(get(http, sim, "tickets", limit=1).json()["data"]) == 1
    assert len(get(http, sim, "tickets", limit=100).json()["data"]) == 100


# -- data ----------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_responses(http: requests.Session) -> None:
    bodies = []
    for seed in (3, 3, 4):
        with Simulator(tickets=300, incidents=50, services=5, seed=seed) as simulator:
            bodies.append([
                get(http, simulator, resource, offset=offset).content
                for resource in ("tickets", "incidents", "services") for offset in (0, 200)
            ])
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_records_follow_the_contract_types_and_distributions() -> None:
    simulator = Simulator(tickets=3_000, incidents=800, services=30, seed=11)
    tickets, incidents, services = simulator.all_tickets(), simulator.live_incidents(), simulator.live_services()
    service_ids = {s["id"] for s in services}

    for t in tickets:
        assert list(t) == ["id", "subject", "description", "status", "priority", "customer_id", "assignee_id",
                           "tags", "custom_fields", "created_at", "updated_at", "deleted_at"]
        assert isinstance(t["id"], int) and isinstance(t["subject"], str) and isinstance(t["customer_id"], int)
        assert t["status"] in {"new", "open", "pending", "on_hold", "solved", "closed"}
        assert t["priority"] in {None, "low", "normal", "high", "urgent"}
        assert t["assignee_id"] is None or isinstance(t["assignee_id"], int)
        assert t["description"] is None or isinstance(t["description"], str)
        assert all(isinstance(tag, str) for tag in t["tags"])
        cf = t["custom_fields"]
        assert set(cf) == {"channel", "product", "sla_minutes"} and isinstance(cf["channel"], str)
        assert cf["product"] is None or isinstance(cf["product"], str)
        assert cf["sla_minutes"] is None or isinstance(cf["sla_minutes"], int)
        assert TIMESTAMP.match(t["created_at"]) and TIMESTAMP.match(t["updated_at"])
        assert t["created_at"] <= t["updated_at"]
        assert t["deleted_at"] is None or t["deleted_at"] == t["updated_at"]
    assert [t["id"] for t in tickets] == list(range(1, 3_001))

    def share(predicate: Any, records: list[dict]) -> float:
        return sum(map(predicate, records)) / len(records)

    for field in ("description", "priority", "assignee_id"):
        assert 0.1 < share(lambda t, f=field: t[f] is None, tickets) < 0.3
    assert 0.1 < share(lambda t: not t["tags"], tickets) < 0.4
    assert 0.005 < share(lambda t: t["deleted_at"] is not None, tickets) < 0.05
    descriptions = [t["description"] for t in tickets if t["description"]]
    assert max(map(len, descriptions)) > 2_000
    text = "".join(descriptions)
    for sample in ("é", "ユ", "📱", "👩‍💻", '"', "\\", "\n", "\u2028"):
        assert sample in text
    span = parse(tickets[-1]["created_at"]) - parse(tickets[0]["created_at"])
    assert dt.timedelta(days=600) < span < dt.timedelta(days=800)

    for i in incidents:
        assert re.fullmatch(r"INC\d{7}", i["id"]) and i["service_id"] in service_ids
        assert i["status"] in {"triggered", "acknowledged", "resolved"} and i["urgency"] in {"high", "low"}
        assert all(set(a) == {"id", "name"} for a in i["assignees"])
        assert i["created_at"] <= i["updated_at"]
        assert (i["resolved_at"] is not None) == (i["status"] == "resolved")
        if i["status"] == "triggered":
            assert i["acknowledged_at"] is None
        if i["status"] == "acknowledged":
            assert i["acknowledged_at"] is not None
        for stamp in (i["acknowledged_at"], i["resolved_at"]):
            assert stamp is None or (TIMESTAMP.match(stamp) and i["created_at"] <= stamp <= i["updated_at"])
    assert 0.1 < share(lambda i: not i["assignees"], incidents) < 0.4
    assert {i["status"] for i in incidents} == {"triggered", "acknowledged", "resolved"}

    assert [s["id"] for s in services] == [f"SVC{n:04d}" for n in range(1, 31)]
    for s in services:
        assert s["status"] in {"active", "disabled", "maintenance"} and isinstance(s["name"], str)
        assert s["escalation_policy_id"] is None or isinstance(s["escalation_policy_id"], str)


def test_ground_truth_equals_what_paging_returns(sim: Simulator, http: requests.Session) -> None:
    sim.delete_ticket(3)
    sim.remove_service("SVC0002")
    assert page_through(http, sim, "tickets") == sim.live_tickets() == list(sim.iter_live_tickets())
    assert page_through(http, sim, "tickets", updated_since=EPOCH_START) == sim.all_tickets()
    assert page_through(http, sim, "incidents", limit=33) == sim.live_incidents()
    assert page_through(http, sim, "services", limit=5) == sim.live_services()
    assert sim.get("tickets", 3)["deleted_at"] is not None


# -- incremental reads and deletes ---------------------------------------------------------


def test_updated_since_is_inclusive_and_includes_soft_deleted_tickets(sim: Simulator, http: requests.Session) -> None:
    everything = sim.all_tickets()
    threshold = sorted(t["updated_at"] for t in everything)[len(everything) // 2]
    expected = [t for t in everything if t["updated_at"] >= threshold]
    assert page_through(http, sim, "tickets", updated_since=threshold) == expected
    assert get(http, sim, "tickets", updated_since=threshold).json()["total"] == len(expected)
    one_ms_later = (parse(threshold) + dt.timedelta(milliseconds=1)).isoformat()
    assert page_through(http, sim, "tickets", updated_since=one_ms_later) == [
        t for t in expected if t["updated_at"] != threshold
    ]

    deleted = sim.delete_ticket(42)
    assert deleted["deleted_at"] == deleted["updated_at"] == sim.get("tickets", 42)["updated_at"]
    since = page_through(http, sim, "tickets", updated_since=deleted["updated_at"])
    assert [t["id"] for t in since] == [42] and since[0]["deleted_at"] == deleted["deleted_at"]
    plain_ids = [t["id"] for t in page_through(http, sim, "tickets")]
    assert 42 not in plain_ids and len(plain_ids) == len(sim.live_tickets())
    base_deleted = [t for t in everything if t["deleted_at"]]
    assert base_deleted and not {t["id"] for t in base_deleted} & set(plain_ids)


def test_listings_match_brute_force_after_random_mutations(http: requests.Session) -> None:
    """Rank/select over the index (deep offsets, odd page sizes) against a plain filter."""
    rng = random.Random(3)
    with Simulator(tickets=600, incidents=1, services=1, seed=9) as simulator:
        stamps = sorted(t["updated_at"] for t in simulator.all_tickets())
        for _ in range(80):
            ticket_id = rng.randint(1, 600)
            action = rng.choice(["delete", "undelete", "backdate", "create"])
            if action == "delete":
                simulator.delete_ticket(ticket_id)
            elif action == "undelete":
                simulator.update_ticket(ticket_id, deleted_at=None)
            elif action == "backdate":
                simulator.update_ticket(ticket_id, updated_at=rng.choice(stamps))
            else:
                simulator.create_ticket(updated_at=rng.choice(stamps))
        everything = simulator.all_tickets()
        for threshold in (None, stamps[0], stamps[150], stamps[451], simulator.now()):
            if threshold is None:
                expected = [t for t in everything if t["deleted_at"] is None]
                params: dict[str, Any] = {}
            else:
                expected = [t for t in everything if t["updated_at"] >= threshold]
                params = {"updated_since": threshold}
            for limit in (7, 100):
                assert page_through(http, simulator, "tickets", limit=limit, **params) == expected
            assert get(http, simulator, "tickets", **params).json()["total"] == len(expected)


def test_updated_since_on_incidents_and_malformed_values(sim: Simulator, http: requests.Session) -> None:
    changed = sim.update_incident("INC0000010", status="acknowledged")
    body = get(http, sim, "incidents", updated_since=changed["updated_at"]).json()
    assert [i["id"] for i in body["data"]] == ["INC0000010"] and body["total"] == 1
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-11-20T08:15:02", ""):
        assert "updated_since" in assert_error(get(http, sim, "tickets", updated_since=bad), 400)["message"]


def test_services_ignore_updated_since(sim: Simulator, http: requests.Session) -> None:
    everything = get(http, sim, "services").json()
    for value in ("2999-01-01T00:00:00Z", "not a timestamp"):
        assert get(http, sim, "services", updated_since=value).json() == everything
    assert everything["total"] == 12


def test_removed_service_disappears(sim: Simulator, http: requests.Session) -> None:
    sim.remove_service("SVC0004")
    ids = [s["id"] for s in page_through(http, sim, "services")]
    assert "SVC0004" not in ids and len(ids) == 11 == get(http, sim, "services").json()["total"]
    assert "SVC0004" not in {s["id"] for s in sim.live_services()}
    with pytest.raises(KeyError):
        sim.update_service("SVC0004", name="back")


def test_mutations_create_update_and_validate(sim: Simulator, http: requests.Session) -> None:
    created = sim.create_ticket(subject="Brand new", tags=["x"])
    assert created["id"] == 251 and created["status"] == "new" and created["created_at"] == created["updated_at"]
    assert page_through(http, sim, "tickets")[-1] == created
    assert sim.create_ticket()["id"] == 252

    incident = sim.create_incident(title="Fire")
    assert incident["id"] == "INC0000121" and incident["status"] == "triggered"
    assert incident["service_id"] in {s["id"] for s in sim.live_services()}
    acknowledged = sim.update_incident(incident["id"], status="acknowledged")
    assert acknowledged["acknowledged_at"] == acknowledged["updated_at"] and acknowledged["resolved_at"] is None
    resolved = sim.update_incident(incident["id"], status="resolved")
    assert resolved["resolved_at"] == resolved["updated_at"] and resolved["acknowledged_at"] is not None

    service = sim.create_service(name="New service")
    assert service["id"] == "SVC0013" and sim.update_service("SVC0013", status="disabled")["status"] == "disabled"
    assert sim.update_ticket(5, priority=None)["priority"] is None
    with pytest.raises(ValueError):
        sim.update_ticket(5, no_such_field=1)
    with pytest.raises(KeyError):
        sim.update_ticket(10_000, subject="x")


def test_extra_field_and_field_transform(sim: Simulator, http: requests.Session) -> None:
    sim.add_extra_field("tickets", "satisfaction", lambda record: record["id"] % 5)
    sim.add_extra_field("incidents", "region", "eu-west-1")
    sim.set_field_transform("tickets", "customer_id", str)
    tickets = page_through(http, sim, "tickets")
    assert all(t["satisfaction"] == t["id"] % 5 and isinstance(t["customer_id"], str) for t in tickets)
    assert tickets == sim.live_tickets()
    assert all(i["region"] == "eu-west-1" for i in get(http, sim, "incidents").json()["data"])
    assert "region" not in get(http, sim, "services").json()["data"][0]
    with pytest.raises(ValueError):
        sim.add_extra_field("tickets", "status", "x")


def test_clock_offset_moves_updated_at(sim: Simulator) -> None:
    sim.clock_offset = dt.timedelta(hours=-3)
    updated = sim.update_ticket(1, subject="moved")
    expected = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    assert abs(parse(updated["updated_at"]) - expected) < dt.timedelta(seconds=5)
    assert TIMESTAMP.match(sim.now()) and abs(parse(sim.now()) - expected) < dt.timedelta(seconds=5)
    sim.clock_offset = dt.timedelta(seconds=30)
    assert parse(sim.now()) > dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=25)


# -- hooks -----------------------------------------------------------------------------


def test_hook_mutating_records_while_a_client_pages(sim: Simulator, http: requests.Session) -> None:
    before = sim.live_tickets()
    seen: list[RequestInfo] = []

    def on_second_page(request: RequestInfo) -> None:
        seen.append(request)
        if request.resource == "tickets" and request.offset == 100:
            sim.update_ticket(before[0]["id"], subject="changed after it was read")
            sim.delete_ticket(before[10]["id"])  # already read: every later ticket moves up one place

    handle = sim.on_request(on_second_page)
    pages = [get(http, sim, "tickets", offset=offset).json() for offset in (0, 100, 200)]
    handle.remove()

    assert pages[0]["total"] == len(before) and pages[1]["total"] == len(before) - 1
    read_ids = [t["id"] for page in pages for t in page["data"]]
    assert before[100]["id"] not in read_ids  # the plain-listing skip the contract warns about
    assert pages[0]["data"][0]["subject"] != "changed after it was read"
    assert sim.live_tickets()[0]["subject"] == "changed after it was read"
    assert [(r.api, r.resource, r.offset, r.limit, r.index) for r in seen] == [
        ("service_desk", "tickets", 0, 100, 0), ("service_desk", "tickets", 100, 100, 1),
        ("service_desk", "tickets", 200, 100, 2),
    ]
    assert "api_key" not in seen[0].params and seen[0].status == 200


def test_hook_change_during_incremental_read_keeps_place(sim: Simulator, http: requests.Session) -> None:
    def touch(request: RequestInfo) -> None:
        if request.offset == 100:
            sim.update_ticket(150, subject="changed while paging")

    sim.on_request(touch)
    records = page_through(http, sim, "tickets", updated_since=EPOCH_START)
    sim.clear_hooks()
    assert [t["id"] for t in records] == list(range(1, 251))
    assert next(t for t in records if t["id"] == 150)["subject"] == "changed while paging"


def test_failing_hook_answers_500_and_serving_goes_on(sim: Simulator, http: requests.Session,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    handle = sim.on_request(lambda request: 1 / 0)
    assert_error(get(http, sim, "tickets"), 500, "internal_error")
    assert "ZeroDivisionError" in capsys.readouterr().err
    handle.remove()
    assert get(http, sim, "tickets").status_code == 200
    assert [r.status for r in sim.requests] == [500, 200]


def test_empty_simulator_and_creating_from_nothing(http: requests.Session) -> None:
    with pytest.raises(ValueError):
        Simulator(incidents=5, services=0)
    with Simulator(tickets=0, incidents=0, services=0) as empty:
        assert get(http, empty, "tickets", updated_since=EPOCH_START).json() == {
            "data": [], "total": 0, "offset": 0, "limit": 100}
        with pytest.raises(ValueError):
            empty.create_incident()
        assert empty.create_ticket()["id"] == 1 and empty.create_service()["id"] == "SVC0001"
        assert empty.create_incident()["service_id"] == "SVC0001"
        assert [t["id"] for t in page_through(http, empty, "tickets")] == [1]


# -- faults ---------------------------------------------------------------------------------


def test_fail_next_per_resource_and_status(sim: Simulator, http: requests.Session) -> None:
    sim.faults.fail_next(2, status=503, resource="tickets")
    assert_error(get(http, sim, "tickets"), 503)
    assert get(http, sim, "incidents").status_code == 200
    assert_error(get(http, sim, "tickets"), 503)
    assert get(http, sim, "tickets").status_code == 200
    assert sim.request_count(resource="tickets", status=503) == 2
    assert sim.request_count(status=200) == 2 and len(sim.requests) == 4
    sim.faults.fail_next(1, status=429)
    throttled = get(http, sim, "services")
    assert_error(throttled, 429, "rate_limited")
    assert throttled.headers["Retry-After"] == "0"


def test_html_502_from_a_proxy(sim: Simulator, http: requests.Session) -> None:
    sim.faults.html_502_next(1, resource="incidents")
    response = get(http, sim, "incidents")
    assert response.status_code == 502 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        json.loads(response.text)
    assert get(http, sim, "incidents").status_code == 200


@pytest.mark.parametrize("arm", ["drop_next", "truncate_next"])
def test_broken_connections_raise_in_the_client(sim: Simulator, http: requests.Session, arm: str) -> None:
    getattr(sim.faults, arm)(1, resource="tickets")
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        get(http, sim, "tickets").json()
    assert get(http, sim, "tickets").status_code == 200  # the session reconnects
    assert [r.status for r in sim.requests] == [0, 200]
    assert sim.requests[0].fault == arm.removesuffix("_next")


def test_slow_answers_time_out_and_outage(sim: Simulator, http: requests.Session) -> None:
    sim.faults.slow(0.5, resource="services")
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(url(sim, "services"), params={"api_key": IM_KEY}, timeout=0.05)
    assert get(http, sim, "tickets").status_code == 200
    sim.faults.outage(status=504, resource="incidents")
    assert [get(http, sim, "incidents").status_code for _ in range(3)] == [504] * 3
    sim.faults.clear()
    started = time.monotonic()
    assert get(http, sim, "incidents").status_code == 200 == get(http, sim, "services").status_code
    assert time.monotonic() - started < 0.4


def test_rate_limit_answers_429_with_retry_after(sim: Simulator, http: requests.Session) -> None:
    sim.faults.rate_limit(3, retry_after=0)
    statuses = [get(http, sim, "tickets", limit=1) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert statuses[3].headers["Retry-After"] == "0"
    assert_error(statuses[3], 429, "rate_limited")
    sim.faults.rate_limit(1, retry_after=2)
    get(http, sim, "tickets", limit=1)
    assert get(http, sim, "tickets", limit=1).headers["Retry-After"] == "2"


def test_random_faults_are_deterministic(http: requests.Session) -> None:
    def outcomes(seed: int) -> list[str]:
        with Simulator(tickets=50, incidents=5, services=2) as simulator:
            simulator.faults.random(0.5, seed=seed)
            results = []
            for _ in range(30):
                try:
                    results.append(str(get(http, simulator, "tickets", limit=5).status_code))
                except requests.exceptions.RequestException:
                    results.append("broken")
            return results

    first = outcomes(1)
    assert first == outcomes(1)
    assert {"200", "503", "502", "broken"} <= set(first)
    assert first != outcomes(2)


# -- a distant, rate-limited, busy vendor ---------------------------------------------------


def at_window_start(sim: Simulator, window_seconds: int) -> None:
    """Move the vendor's clock to just after a budget window starts, so that a test's
    requests all fall in one window, whenever it runs."""
    window_ms = window_seconds * 1000
    sim.clock_offset += dt.timedelta(milliseconds=window_ms - sim.now_ms() % window_ms + 1)


def budget_headers_in(response: requests.Response) -> list[str]:
    return [name for name in response.headers if "ratelimit" in name.lower() or "rate-limit" in name.lower()]


def timed_get(session: requests.Session, sim: Simulator, resource: str = "tickets") -> tuple[int, float]:
    started = time.monotonic()
    status = get(session, sim, resource, limit=1).status_code
    return status, time.monotonic() - started


def test_latency_delays_every_answer_and_concurrent_requests_overlap(sim: Simulator) -> None:
    sim.pace(200)
    sessions = [requests.Session() for _ in range(8)]  # one connection each
    for session in sessions:
        session.trust_env = False
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(len(sessions)) as pool:
            answers = list(pool.map(lambda session: timed_get(session, sim), sessions))
        elapsed = time.monotonic() - started
    finally:
        for session in sessions:
            session.close()
    assert all(status == 200 and took >= 0.19 for status, took in answers), answers
    assert 0.19 <= elapsed < 8 * 0.2 * 0.75, elapsed  # in turn, they would take 1.6 s


def test_latency_applies_to_errors_switches_off_and_validates(sim: Simulator, http: requests.Session) -> None:
    sim.pace(300, jitter_ms=100)
    started = time.monotonic()
    assert_error(http.get(url(sim, "tickets"), params={"api_key": "nope"}), 401)
    assert time.monotonic() - started >= 0.19
    sim.pace(0)
    assert timed_get(http, sim)[1] < 0.19
    for latency_ms, jitter_ms in ((-1, 0), (100, 101), (float("inf"), 0)):
        with pytest.raises(ValueError):
            sim.pace(latency_ms, jitter_ms)


@pytest.mark.parametrize("style", sorted(BUDGET_HEADERS))
def test_budget_headers_count_down_then_429(sim: Simulator, http: requests.Session, style: str) -> None:
    at_window_start(sim, 60)
    sim.set_budget(3, 60, headers=style)
    answers = [get(http, sim, "tickets", limit=1) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    limit, remaining, reset = BUDGET_HEADERS[style]
    assert [answer.headers[remaining] for answer in answers] == ["2", "1", "0", "0"]
    assert all(answer.headers[limit] == "3" and 1 <= int(answer.headers[reset]) <= 60 for answer in answers)
    assert all(sorted(budget_headers_in(answer)) == sorted(BUDGET_HEADERS[style]) for answer in answers)
    refused = answers[-1]
    assert "budget" in assert_error(refused, 429, "rate_limited")["message"]
    assert refused.headers["Retry-After"] == refused.headers[reset]


def test_budget_announced_in_no_header_is_still_enforced(sim: Simulator, http: requests.Session) -> None:
    at_window_start(sim, 60)
    sim.set_budget(2, 60, headers="none")
    answers = [get(http, sim, "services") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert [budget_headers_in(answer) for answer in answers] == [[], [], []]
    assert_error(answers[-1], 429, "rate_limited")
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60


def test_each_api_key_has_its_own_budget(sim: Simulator, http: requests.Session) -> None:
    at_window_start(sim, 60)
    sim.set_budget(2, 60)
    assert [get(http, sim, "tickets").status_code for _ in range(3)] == [200, 200, 429]
    answers = [get(http, sim, resource) for resource in ("incidents", "services", "incidents")]  # one key
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert [answer.headers["RateLimit-Remaining"] for answer in answers] == ["1", "0", "0"]


def test_a_401_spends_no_budget_and_announces_none(sim: Simulator, http: requests.Session) -> None:
    at_window_start(sim, 60)
    sim.set_budget(2, 60)
    wrong_key = {"api_key": "nope"}
    assert budget_headers_in(assert_error_response(http.get(url(sim, "tickets"), params=wrong_key), 401)) == []
    assert [get(http, sim, "tickets").headers["RateLimit-Remaining"] for _ in range(2)] == ["1", "0"]
    assert budget_headers_in(assert_error_response(http.get(url(sim, "tickets"), params=wrong_key), 401)) == []


def test_faults_come_before_the_budget_and_a_bad_query_spends_it(sim: Simulator, http: requests.Session) -> None:
    at_window_start(sim, 60)
    sim.set_budget(3, 60)
    sim.faults.fail_next(1, status=503)
    assert budget_headers_in(assert_error_response(get(http, sim, "tickets"), 503)) == []
    assert assert_error_response(get(http, sim, "tickets", limit=101), 400).headers["RateLimit-Remaining"] == "2"
    assert get(http, sim, "tickets").headers["RateLimit-Remaining"] == "1"


def test_budget_windows_follow_the_vendors_clock(sim: Simulator, http: requests.Session) -> None:
    at_window_start(sim, 60)
    sim.set_budget(1, 60)
    assert [get(http, sim, "tickets").status_code for _ in range(3)] == [200, 429, 429]
    sim.clock_offset += dt.timedelta(seconds=60)
    fresh = get(http, sim, "tickets")
    assert fresh.status_code == 200 and fresh.headers["RateLimit-Remaining"] == "0"
    sim.set_budget(None)
    assert all(
        answer.status_code == 200 and budget_headers_in(answer) == []
        for answer in (get(http, sim, "tickets") for _ in range(3))
    )


def test_a_short_window_starts_afresh_in_real_time(http: requests.Session) -> None:
    with Simulator(tickets=20, incidents=2, services=1, budget=Budget(1, 1, "x-rate-limit")) as simulator:
        deadline = time.monotonic() + 10
        statuses = []
        while statuses[-2:] != [429, 200]:  # spent, then a fresh window
            assert time.monotonic() < deadline, statuses
            statuses.append(get(http, simulator, "tickets").status_code)
            time.sleep(0.02)
        assert statuses[0] == 200 and simulator.request_count(status=200) >= 2


def test_constructor_keywords_and_budget_validation(http: requests.Session) -> None:
    budget = Budget(5, 30, headers="x-ratelimit")
    with Simulator(tickets=20, incidents=2, services=1, latency_ms=100, budget=budget) as simulator:
        started = time.monotonic()
        answer = get(http, simulator, "tickets")
        assert time.monotonic() - started >= 0.09
        assert answer.headers["X-RateLimit-Limit"] == "5" and answer.headers["X-RateLimit-Remaining"] == "4"
    for requests_, window_seconds, headers in ((0, 60, "ietf"), (1.5, 60, "ietf"), (10, 0, "ietf"), (10, 60, "x")):
        with pytest.raises(ValueError):
            Budget(requests_, window_seconds, headers)  # type: ignore[arg-type]


def changes_since(sim: Simulator, since: str, tickets: int, incidents: int) -> set[str]:
    """Which kinds of change the records updated since ``since`` show."""
    kinds = set()
    for ticket in sim.all_tickets():
        if ticket["updated_at"] >= since:
            created = ticket["id"] > tickets
            kinds.add("ticket created" if created else "ticket deleted" if ticket["deleted_at"] else "ticket updated")
    for incident in sim.live_incidents():
        if incident["updated_at"] >= since:
            kinds.add("incident created" if int(incident["id"][3:]) > incidents else "incident updated")
    return kinds


def churn_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "svcdesk-simulator-churn"]


def test_churn_changes_the_ground_truth_until_stopped(sim: Simulator, http: requests.Session) -> None:
    since = sim.now()
    sim.start_churn(6_000)  # 100 a second
    deadline = time.monotonic() + 10
    kinds: set[str] = set()
    while len(kinds) < 5:
        assert time.monotonic() < deadline, kinds
        time.sleep(0.02)
        kinds = changes_since(sim, since, tickets=250, incidents=120)
    sim.stop_churn()
    assert churn_threads() == []
    assert page_through(http, sim, "tickets", updated_since=EPOCH_START) == sim.all_tickets()
    assert page_through(http, sim, "tickets") == sim.live_tickets()
    assert page_through(http, sim, "incidents") == sim.live_incidents()


def test_churn_stops_with_the_simulator_and_validates_its_rate() -> None:
    simulator = Simulator(tickets=20, incidents=2, services=1).start()
    simulator.start_churn(60)
    simulator.start_churn(120)  # replaces the first
    assert len(churn_threads()) == 1
    simulator.stop()
    assert churn_threads() == []
    for per_minute in (-1, 1.5):
        with pytest.raises(ValueError):
            simulator.start_churn(per_minute)  # type: ignore[arg-type]


# -- lifecycle, log, CLI entry point ---------------------------------------------------


def test_request_log_and_reset(sim: Simulator, http: requests.Session) -> None:
    get(http, sim, "tickets", offset=5, limit=7, updated_since=EPOCH_START)
    http.get(f"{sim.base_url}/nowhere")
    first, second = sim.requests
    assert (first.params, first.offset, first.limit, first.status) == (
        {"offset": "5", "limit": "7", "updated_since": EPOCH_START}, 5, 7, 200)
    assert (second.resource, second.status, second.index) == (None, 404, 1)
    sim.reset_request_log()
    assert sim.requests == [] and sim.request_count() == 0


def test_stop_is_quick_idempotent_and_frees_the_port(http: requests.Session) -> None:
    simulator = Simulator(tickets=10, incidents=1, services=1).start()
    assert simulator.start() is simulator
    assert get(http, simulator, "tickets").status_code == 200  # leaves a keep-alive connection open
    started = time.monotonic()
    simulator.stop()
    simulator.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", simulator.port), timeout=1).close()


def run_in_foreground(command: list[str], check: Callable[[list[str]], None]) -> str:
    """Start a simulator's foreground process, run ``check`` on its four-line banner, stop it
    with Ctrl-C, and return all it printed; it must exit with 0."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)  # a hung child must fail the test, not hang it
    watchdog.start()
    try:
        banner = [process.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
        check(banner)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        return "".join(banner) + process.stdout.read()  # type: ignore[union-attr]
    finally:
        watchdog.cancel()
        process.kill()
        process.stdout.close()  # type: ignore[union-attr]


def service_desk_url_in(banner: list[str]) -> str:
    service_desk = re.search(r"http://127\.0\.0\.1:\d+/service-desk", banner[0])
    assert service_desk and "/incident-management" in banner[1], banner
    return service_desk.group(0)


def test_serve_forever_prints_urls_and_stops_on_ctrl_c() -> None:
    code = (
        "from svcdesk_simulator import VendorSize, serve_forever; "
        "serve_forever(0, VendorSize(tickets=20, incidents=5, services=2, seed=1), 'secret-sd-key', 'secret-im-key')"
    )

    def check(banner: list[str]) -> None:
        response = requests.get(
            f"{service_desk_url_in(banner)}/v1/tickets", params={"api_key": "secret-sd-key"}, timeout=10
        )
        assert response.json()["total"] > 0 and budget_headers_in(response) == []
        assert banner[2].split(":", 1)[1].strip() == "no latency; no request budget; no churn"

    assert "secret" not in run_in_foreground([sys.executable, "-c", code], check)


def test_cli_simulate_answers_like_a_distant_rate_limited_vendor() -> None:
    command = [
        sys.executable, "-m", "svcdesk_dagster.cli", "simulate", "--port", "0",
        "--service-desk-api-key", "secret-sd-key", "--incident-management-api-key", "secret-im-key",
        "--tickets", "20", "--incidents", "5", "--services", "2",
        "--latency-ms", "100", "--jitter-ms", "20", "--budget", "50/86400", "--rate-limit-headers", "x-ratelimit",
        "--churn", "60",
    ]

    def check(banner: list[str]) -> None:
        assert banner[2].split(":", 1)[1].strip() == (
            "latency 100 ms +- 20 ms; budget 50 requests per 86400 s per API key "
            "(X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset); churn 60 changes a minute"
        ), banner
        started = time.monotonic()
        response = requests.get(
            f"{service_desk_url_in(banner)}/v1/tickets", params={"api_key": "secret-sd-key"}, timeout=10
        )
        assert time.monotonic() - started >= 0.075
        assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == ("50", "49")

    assert "secret" not in run_in_foreground(command, check)


@pytest.mark.parametrize("budget, expected", [("1200/60", Budget(1200, 60)), ("5/0.5", Budget(5, 0.5))])
def test_cli_budget_option(budget: str, expected: Budget) -> None:
    from svcdesk_dagster.cli import build_parser

    assert build_parser().parse_args(["simulate", "--port", "0", "--budget", budget]).budget == expected


@pytest.mark.parametrize(
    "arguments",
    [
        *(["--budget", bad] for bad in ("1200", "0/60", "-1/60", "1.5/60", "12/0", "12/-1", "a/b", "12/60/1",
                                         "12/nan", "/60")),
        ["--rate-limit-headers", "none"],  # without --budget
        ["--budget", "10/60", "--rate-limit-headers", "x-ratelimits"],
        ["--latency-ms", "5", "--jitter-ms", "6"],
        ["--latency-ms", "-5"],
        ["--churn", "-1"],
    ],
)
def test_cli_rejects_bad_vendor_conditions(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from svcdesk_dagster.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--port", "0", *arguments])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "error:" in error and any(option in error for option in arguments if option.startswith("--")), error


# -- scale ----------------------------------------------------------------------------------


def test_one_million_tickets_deep_pages_and_updated_since_are_fast(http: requests.Session) -> None:
    started = time.monotonic()
    simulator = Simulator(tickets=1_000_000, incidents=0, services=0, seed=5).start()
    try:
        assert time.monotonic() - started < 2.0
        for ticket_id in (10, 500_000, 999_990):
            simulator.delete_ticket(ticket_id)

        started = time.monotonic()
        deep = get(http, simulator, "tickets", offset=975_000).json()
        total = deep["total"]
        assert 970_000 < total < 990_000 and len(deep["data"]) == 100
        ids = [t["id"] for t in deep["data"]]
        assert ids == sorted(ids) and ids[0] > 975_000
        tail = get(http, simulator, "tickets", offset=total - 5).json()
        assert [t["id"] for t in tail["data"]][-1] == 1_000_000 and len(tail["data"]) == 5
        assert 999_990 not in [t["id"] for t in tail["data"]]

        middle = simulator.get("tickets", 500_001)["updated_at"]
        since = get(http, simulator, "tickets", updated_since=middle, offset=1_000).json()
        assert all(t["updated_at"] >= middle for t in since["data"]) and len(since["data"]) == 100
        assert 499_000 < since["total"] < 520_000
        recent = get(http, simulator, "tickets", updated_since=simulator.now()[:10] + "T00:00:00Z").json()
        assert [t["id"] for t in recent["data"]] == [10, 500_000, 999_990] and recent["total"] == 3
        assert time.monotonic() - started < 2.0
    finally:
        simulator.stop()
