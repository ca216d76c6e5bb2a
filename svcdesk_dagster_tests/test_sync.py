"""Sync semantics: incremental and full refresh keep every table equal to the vendor's live records.

Each test changes the simulator (between syncs, or while a sync pages through it) and then compares
every table, field by field and child tables included, with the simulator's ground truth.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

from svcdesk_dagster_tests.conftest import INCIDENT_MANAGEMENT_KEY, Project
from svcdesk_dagster_tests.dagster_runs import run_job
from svcdesk_dagster_tests.tables_vs_simulator import (
    assert_tables_equal_simulator,
    table_rows,
)
from svcdesk_simulator import Simulator

SYNC_JOBS = ("service_desk_sync", "incident_management_sync")


def sync_everything() -> None:
    for job in SYNC_JOBS:
        run_job(job)


def change_everything(sim: Simulator) -> None:
    """Updates, inserts, soft deletes and removals across all three resources."""
    sim.update_ticket(3, status="solved", priority="urgent", tags=["vip", "renewal"])
    sim.update_ticket(150, subject="Printer on fire ✓", custom_fields={"channel": "chat", "product": None, "sla_minutes": 15})
    sim.update_ticket(151, tags=[])
    sim.delete_ticket(7)
    sim.delete_ticket(200)
    sim.create_ticket(subject="Brand new", tags=["new"])
    sim.update_incident(sim.live_incidents()[0]["id"], status="resolved")
    sim.update_incident(sim.live_incidents()[120]["id"], assignees=[{"id": "U9", "name": "Zoë"}])
    sim.create_incident(title="Database down")
    services = sim.live_services()
    sim.remove_service(services[1]["id"])
    sim.update_service(services[2]["id"], status="maintenance")
    sim.create_service(name="New service")


def test_incremental_syncs_carry_every_kind_of_change(simulator: Simulator, project: Project) -> None:
    run_job("full_refresh")
    change_everything(simulator)

    sync_everything()

    assert_tables_equal_simulator(simulator, project.duckdb_file)
    tickets = table_rows(project.duckdb_file, "service_desk.tickets")
    assert 7 not in tickets and 200 not in tickets, "soft-deleted tickets are removed"


def test_first_incremental_sync_loads_everything_without_deleted_tickets(
    simulator: Simulator, project: Project
) -> None:
    simulator.delete_ticket(11)

    sync_everything()

    assert_tables_equal_simulator(simulator, project.duckdb_file)


@pytest.mark.parametrize(
    ("vendor_clock_offset", "margin_seconds"),
    [
        (timedelta(0), "0"),  # start-of-read alone must be enough on a perfect clock
        (timedelta(minutes=1), None),  # vendor ahead; the default margin
        (timedelta(minutes=-1), None),  # vendor behind; the default margin
    ],
    ids=["same-clock-no-margin", "vendor-ahead", "vendor-behind"],
)
def test_a_record_changed_after_being_read_is_current_after_the_next_sync(
    simulator: Simulator,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    vendor_clock_offset: timedelta,
    margin_seconds: str | None,
) -> None:
    if margin_seconds is not None:
        monkeypatch.setenv("SOURCES__SERVICE_DESK__CLOCK_SKEW_MARGIN", margin_seconds)
    simulator.clock_offset = vendor_clock_offset
    run_job("full_refresh")
    # Three pages of changed tickets, so the next sync pages through its window.
    for ticket_id in range(1, 251):
        simulator.update_ticket(ticket_id, status="open")

    def change_behind_and_ahead_of_the_reader(request) -> None:
        if request.resource == "tickets" and request.offset and not changed:
            changed.append(True)
            simulator.update_ticket(5, subject="changed after it was read")  # page 1, already read
            simulator.update_ticket(240, subject="changed before it is read")  # page 3, read later

    changed: list[bool] = []
    simulator.on_request(change_behind_and_ahead_of_the_reader)
    run_job("service_desk_sync")
    simulator.clear_hooks()
    assert changed, "the hook ran during the sync"
    stale = table_rows(project.duckdb_file, "service_desk.tickets")[5]["subject"]
    assert stale != "changed after it was read", "the test did provoke a read-before-change"

    run_job("service_desk_sync")

    tickets = table_rows(project.duckdb_file, "service_desk.tickets")
    assert tickets[5]["subject"] == "changed after it was read"
    assert tickets[240]["subject"] == "changed before it is read"
    assert_tables_equal_simulator(simulator, project.duckdb_file)


@pytest.mark.parametrize("deleted", [[10], [10, 11, 12], [2, 150]], ids=["one", "three", "far-apart"])
def test_tickets_deleted_while_a_full_refresh_pages_lose_no_other_ticket(
    simulator: Simulator, project: Project, deleted: list[int]
) -> None:
    live_before = {ticket["id"] for ticket in simulator.live_tickets()}

    def delete_behind_the_reader(request) -> None:
        if request.resource == "tickets" and request.offset and request.offset >= 150 and not done:
            done.append(True)
            for ticket_id in deleted:
                simulator.delete_ticket(ticket_id)

    done: list[bool] = []
    simulator.on_request(delete_behind_the_reader)
    run_job("full_refresh")
    simulator.clear_hooks()
    assert done

    loaded = set(table_rows(project.duckdb_file, "service_desk.tickets"))
    assert live_before - set(deleted) <= loaded, "no ticket that stayed live is missing"
    assert loaded <= live_before

    run_job("service_desk_sync")  # and the next sync removes the ones deleted mid-read
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_a_service_removed_while_its_listing_pages_loses_no_other_service(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(
        tickets=0,
        incidents=0,
        services=230,
        seed=3,
        incident_management_api_key=INCIDENT_MANAGEMENT_KEY,
    ) as sim:
        monkeypatch.setenv("SOURCES__INCIDENT_MANAGEMENT__BASE_URL", sim.incident_management_url)
        live_before = [service["id"] for service in sim.live_services()]

        def remove_behind_the_reader(request) -> None:
            if request.resource == "services" and request.offset and not done:
                done.append(True)
                sim.remove_service(live_before[5])

        done: list[bool] = []
        sim.on_request(remove_behind_the_reader)
        run_job("incident_management_sync")

        assert done
        loaded = set(table_rows(project.duckdb_file, "incident_management.services"))
        assert set(live_before) - {live_before[5]} <= loaded <= set(live_before)


def test_a_sync_with_no_upstream_change_reads_one_page_per_incremental_resource(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    sync_everything()
    simulator.reset_request_log()

    sync_everything()

    assert simulator.request_count(resource="tickets") == 1
    assert simulator.request_count(resource="incidents") == 1
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_incremental_state_survives_losing_the_pipeline_directory(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    shutil.rmtree(project.env["DLT_DATA_DIR"], ignore_errors=True)
    simulator.update_ticket(42, status="closed")
    simulator.reset_request_log()

    run_job("service_desk_sync")

    assert simulator.request_count(resource="tickets") == 1, "read only the window, not everything"
    assert "updated_since" in simulator.requests[0].params
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_full_refresh_restarts_the_windows_from_its_own_read(
    simulator: Simulator, project: Project
) -> None:
    sync_everything()
    started = datetime.now(timezone.utc)
    run_job("full_refresh")
    simulator.reset_request_log()

    sync_everything()

    for resource in ("tickets", "incidents"):
        request = next(r for r in simulator.requests if r.resource == resource)
        since = datetime.fromisoformat(request.params["updated_since"].replace("Z", "+00:00"))
        assert started - timedelta(minutes=5, seconds=1) <= since <= started, resource


def test_full_refresh_replaces_rows_the_vendor_no_longer_has(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    simulator.delete_ticket(20)
    simulator.remove_service(simulator.live_services()[0]["id"])

    run_job("full_refresh")

    assert_tables_equal_simulator(simulator, project.duckdb_file)
