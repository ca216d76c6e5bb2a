"""Reading at the vendor's pace: the budget spent, not discovered; pages read at once; progress.

Over real HTTP against the simulator made distant (latency) and rate-limited (a request budget per
key, announced in headers or not). Each test asserts the tables, the requests the simulator saw
and, where it is the point, the lines in the run log.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from svcdesk_dagster.definitions import defs
from svcdesk_dagster.sources.governor import RateGovernor
from svcdesk_dagster_tests.conftest import (
    INCIDENT_MANAGEMENT_KEY,
    SERVICE_DESK_KEY,
    Project,
)
from svcdesk_dagster_tests.tables_vs_simulator import (
    assert_tables_equal_simulator,
    child_lists,
    expected_children,
    expected_rows,
    live_records,
    table_rows,
)
from svcdesk_simulator import Simulator, settings_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
TICKETS = 3_000  # 30 pages of 100, with soft-deleted tickets among them


@pytest.fixture
def vendor(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A simulator with 30 pages of tickets, the project's settings pointing at it."""
    with Simulator(
        tickets=TICKETS, incidents=250, services=12, seed=11,
        service_desk_api_key=SERVICE_DESK_KEY, incident_management_api_key=INCIDENT_MANAGEMENT_KEY,
    ) as sim:
        for name, value in settings_for(sim, SERVICE_DESK_KEY, INCIDENT_MANAGEMENT_KEY).items():
            monkeypatch.setenv(name, value)
        yield sim


def materialize_with_logs(*assets: str, run_config: dict | None = None) -> tuple[bool, list[str]]:
    """Materializes `assets` in process; returns success and the run log's user messages."""
    job = defs.resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[AssetKey(name) for name in assets],
            run_config=run_config or {},
            raise_on_error=False,
        )
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result.success, messages


def assert_tickets_equal_simulator(database: Path, sim: Simulator) -> None:
    assert table_rows(database, "service_desk.tickets") == expected_rows(live_records(sim, "tickets"))
    tags = child_lists(database, "service_desk.tickets", "tags")
    assert tags == expected_children(sim.live_tickets(), "tags")


def ticket_pages(sim: Simulator) -> int:
    return sim.request_count("tickets", status=200)


def test_an_announced_budget_is_spent_not_overrun(project: Project, vendor: Simulator) -> None:
    # 30 ticket pages (plus incidents' and services'), 12 requests per 1.5 s window per key.
    vendor.set_budget(12, window_seconds=1.5, headers="ietf")
    vendor.pace(latency_ms=20)
    succeeded, _ = materialize_with_logs("tickets", "incidents", "services")
    assert succeeded
    assert_tables_equal_simulator(vendor, project.duckdb_file)
    assert vendor.request_count(status=429) == 0
    assert ticket_pages(vendor) == vendor.request_count("tickets")  # no page read twice


@pytest.mark.parametrize("headers", ["x-ratelimit", "x-rate-limit"])
def test_the_budget_headers_are_configuration(
    project: Project, vendor: Simulator, headers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    vendor.set_budget(12, window_seconds=1.5, headers=headers)
    monkeypatch.setenv("SOURCES__SERVICE_DESK__RATE_LIMIT_HEADERS", headers)
    succeeded, _ = materialize_with_logs("tickets")
    assert succeeded
    assert_tickets_equal_simulator(project.duckdb_file, vendor)
    assert vendor.request_count(status=429) == 0


def test_without_an_announced_budget_429s_are_retried_and_nothing_is_lost(
    project: Project, vendor: Simulator
) -> None:
    vendor.set_budget(12, window_seconds=1.0, headers="none")
    succeeded, _ = materialize_with_logs("tickets")
    assert succeeded
    assert_tickets_equal_simulator(project.duckdb_file, vendor)
    assert vendor.request_count("tickets", status=429) > 0  # learnt the hard way, and survived


def test_pages_of_a_changed_listing_are_read_at_once(
    project: Project, vendor: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first page is read alone (for `total`); the next four must be in flight together: each
    # waits at a barrier for the other three, which a reader of one page at a time never passes.
    monkeypatch.setenv("SOURCES__SERVICE_DESK__MAX_CONCURRENCY", "4")
    together = threading.Barrier(4, timeout=20)
    met: list[int] = []

    def meet(info) -> None:  # type: ignore[no-untyped-def]
        if info.resource == "tickets" and info.offset in (100, 200, 300, 400):
            together.wait()
            met.append(info.offset)

    vendor.on_request(meet)
    succeeded, _ = materialize_with_logs("tickets")
    assert succeeded
    assert sorted(met) == [100, 200, 300, 400]
    assert_tickets_equal_simulator(project.duckdb_file, vendor)
    assert ticket_pages(vendor) == 31  # 30 pages of the listing, and the empty one after it


def test_a_failed_page_is_retried_alone(project: Project, vendor: Simulator) -> None:
    vendor.faults.fail_next(2, status=503, resource="tickets")
    succeeded, _ = materialize_with_logs("tickets")
    assert succeeded
    assert_tickets_equal_simulator(project.duckdb_file, vendor)
    assert vendor.request_count("tickets") == ticket_pages(vendor) + 2


def test_a_full_refresh_reads_at_once_and_keeps_no_deleted_ticket(
    project: Project, vendor: Simulator
) -> None:
    assert materialize_with_logs("tickets")[0]
    for ticket in vendor.live_tickets()[:5]:
        vendor.delete_ticket(ticket["id"])
    full_refresh = {"ops": {"service_desk_dlt": {"config": {"full_refresh": True}}}}
    succeeded, _ = materialize_with_logs("tickets", run_config=full_refresh)
    assert succeeded
    assert_tickets_equal_simulator(project.duckdb_file, vendor)
    assert all(
        info.params.get("updated_since") for info in vendor.requests if info.resource == "tickets"
    )


def test_progress_lines_while_reading_and_a_summary(
    project: Project, vendor: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SVCDESK_PROGRESS_INTERVAL_SECONDS", "0.2")
    monkeypatch.setenv("SOURCES__SERVICE_DESK__MAX_CONCURRENCY", "2")
    vendor.set_budget(100, window_seconds=60, headers="ietf")
    vendor.pace(latency_ms=60)  # 30 pages, 2 at a time: about a second of reading
    succeeded, messages = materialize_with_logs("tickets")
    assert succeeded
    progress = [m for m in messages if m.startswith("tickets: ") and " pages read, " in m]
    assert progress, messages
    assert any(" of 30 pages read, " in line and " left" in line for line in progress)
    summary = [m for m in messages if m.startswith("tickets: read ")]
    deleted = len(vendor.all_tickets()) - len(vendor.live_tickets())
    assert summary == [
        f"tickets: read 31 pages, {TICKETS:,} rows ({deleted:,} deleted upstream) with 31 "
        f"requests, 0 answered 429, in " + summary[0].rsplit(" in ", 1)[1]
    ]


def test_progress_shows_in_the_cli_output(project: Project, vendor: Simulator, tmp_path: Path) -> None:
    vendor.pace(latency_ms=40)
    env = {
        **project.env,
        **settings_for(vendor, SERVICE_DESK_KEY, INCIDENT_MANAGEMENT_KEY),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SVCDESK_PROGRESS_INTERVAL_SECONDS": "0.2",
        "SOURCES__SERVICE_DESK__MAX_CONCURRENCY": "1",
    }
    (tmp_path / "home").mkdir()
    completed = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert " pages read, " in completed.stderr
    assert "tickets: read 31 pages" in completed.stderr


# -- the governor's arithmetic, on its own clock ---------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


IETF = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def test_a_configured_budget_allows_that_many_requests_in_any_minute() -> None:
    clock = FakeClock()
    governor = RateGovernor(IETF, requests_per_minute=3, clock=clock, sleep=clock.sleep)
    for _ in range(7):
        governor.acquire()
        governor.release({})
    assert clock.now == pytest.approx(120.0)  # 3 now, 3 a minute later, the 7th two minutes in


def test_the_lower_budget_wins() -> None:
    clock = FakeClock()
    governor = RateGovernor(IETF, requests_per_minute=100, clock=clock, sleep=clock.sleep)
    governor.acquire()
    governor.release({"RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "10"})
    governor.acquire()
    governor.release({"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "9"})
    governor.acquire()  # the window is spent: waits for it to start afresh
    assert clock.now == pytest.approx(9.05)
    assert governor.budget_left == 1


def test_requests_in_flight_count_against_what_is_left() -> None:
    clock = FakeClock()
    governor = RateGovernor(IETF, clock=clock, sleep=clock.sleep)
    governor.acquire()
    governor.release({"RateLimit-Limit": "5", "RateLimit-Remaining": "3", "RateLimit-Reset": "30"})
    for _ in range(3):
        governor.acquire()  # three in flight: what the vendor said was left
    assert clock.now == 0.0
    assert governor.budget_left == 0
    governor.acquire()  # a fourth must wait for the next window
    assert clock.now == pytest.approx(30.05)
