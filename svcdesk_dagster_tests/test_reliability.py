"""Reliability: every upstream fault the vendors document is survived with the data exact, and every
failure that cannot be survived says what to do, loses nothing, and is not retried in vain."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from svcdesk_dagster.sources.errors import explain
from svcdesk_dagster_tests.conftest import SERVICE_DESK_KEY, Project
from svcdesk_dagster_tests.dagster_runs import materialize, run_job
from svcdesk_dagster_tests.tables_vs_simulator import (
    assert_tables_equal_simulator,
    expected_rows,
    table_rows,
)
from svcdesk_simulator import Simulator

FAULTS: dict[str, Callable[[Simulator], None]] = {
    "bursts-of-three-503s": lambda sim: sim.faults.fail_next(3, status=503, resource="tickets"),
    "html-502s-from-a-proxy": lambda sim: sim.faults.html_502_next(3, resource="incidents"),
    "dropped-connections": lambda sim: sim.faults.drop_next(3, resource="tickets"),
    "bodies-cut-short": lambda sim: sim.faults.truncate_next(3, resource="services"),
    "429-retry-after-0": lambda sim: sim.faults.rate_limit(3, retry_after=0),
}


def step_failures(result) -> list:
    return [event for event in result.all_events if event.is_step_failure]


def failure_message(result) -> str:
    return step_failures(result)[-1].step_failure_data.user_failure_data.description


@pytest.mark.parametrize("inject", FAULTS.values(), ids=FAULTS.keys())
def test_the_sync_survives_the_fault_with_the_data_exact(
    simulator: Simulator, project: Project, inject: Callable[[Simulator], None]
) -> None:
    inject(simulator)

    run_job("full_refresh")

    assert simulator.request_count() > len({r.status for r in simulator.requests}) - 1
    faults_met = [r for r in simulator.requests if r.status != 200]
    assert faults_met, "the fault was really served"
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_a_25_per_second_rate_limit_is_waited_out(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    with Simulator(tickets=4_000, incidents=0, services=0, seed=5, service_desk_api_key=SERVICE_DESK_KEY) as sim:
        monkeypatch.setenv("SOURCES__SERVICE_DESK__BASE_URL", sim.service_desk_url)
        sim.faults.rate_limit(25, retry_after=1)

        materialize("tickets")

        assert sim.request_count(status=429) > 0
        loaded = table_rows(project.duckdb_file, "service_desk.tickets")
        assert sorted(loaded) == [ticket["id"] for ticket in sim.live_tickets()]


def test_a_lasting_outage_fails_the_run_naming_the_endpoint_then_the_next_run_is_exact(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    for ticket_id in range(1, 300):
        simulator.update_ticket(ticket_id, priority="high")
    before = table_rows(project.duckdb_file, "service_desk.tickets")

    def outage_after_the_first_page(request) -> None:
        if request.resource == "tickets" and request.offset:
            simulator.faults.outage(status=503, resource="tickets")

    simulator.on_request(outage_after_the_first_page)
    result = run_job("service_desk_sync", raise_on_error=False)
    simulator.clear_hooks()

    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3, "Dagster retried the step three times"
    # The first page read alone, the next ones at once from offset 100 (listing.py).
    assert "offset 100" in retries[0].event_specific_data.error.to_string(), "how far it had come"
    message = failure_message(result)
    assert "503" in message and "/v1/tickets" in message
    assert table_rows(project.duckdb_file, "service_desk.tickets") == before, "nothing half-loaded"

    simulator.faults.clear()
    run_job("service_desk_sync")
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_a_wrong_key_fails_fast_and_says_which_setting(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__SERVICE_DESK__API_KEY", "not-the-key-4242")

    result = materialize("tickets", raise_on_error=False)

    assert not result.success
    assert len(step_failures(result)) == 1, "an authentication failure is not retried"
    assert simulator.request_count() <= 2
    message = failure_message(result)
    assert f"Authentication failed for the service desk API at {simulator.service_desk_url} (401" in message
    assert "SOURCES__SERVICE_DESK__API_KEY" in message
    assert "not-the-key-4242" not in message


def test_a_rejected_request_shows_the_vendors_message(simulator: Simulator) -> None:
    response = requests.get(
        f"{simulator.service_desk_url}/v1/tickets",
        params={"api_key": SERVICE_DESK_KEY, "limit": 500, "offset": 200},
        timeout=10,
    )
    assert response.status_code == 400
    error = requests.HTTPError("400", response=response)

    explanation = explain(error, "service_desk", "service desk")

    assert not explanation.transient
    vendor_message = response.json()["error"]["message"]
    assert vendor_message in explanation.message
    assert "GET /service-desk/v1/tickets, offset 200" in explanation.message
    assert SERVICE_DESK_KEY not in explanation.message


def test_a_record_without_an_id_stops_the_read_and_loses_nothing(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    before = table_rows(project.duckdb_file, "service_desk.tickets")
    simulator.set_field_transform("tickets", "id", lambda value: None if value == 150 else value)

    result = run_job("full_refresh", raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert f"The service desk API at {simulator.service_desk_url} broke its contract" in message
    assert "has no `id`" in message
    assert table_rows(project.duckdb_file, "service_desk.tickets") == before
    assert len(step_failures(result)) == 1, "a broken record is not retried"


def test_a_vendor_that_stops_answering_times_out_and_says_where(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__HTTP__REQUEST_TIMEOUT", "0.3")
    simulator.faults.slow(2.0, resource="services")

    result = materialize("services", raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert "could not be reached at GET /incident-management/v1/services, offset 0" in message
    assert "timed out" in message.lower()
    assert simulator.request_count(resource="services") >= 4, "each timeout was retried"


def test_a_slow_answer_within_the_timeout_is_waited_for(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__HTTP__REQUEST_TIMEOUT", "5")
    simulator.faults.slow(0.3, resource="services")

    materialize("services")

    loaded = table_rows(project.duckdb_file, "incident_management.services")
    assert loaded == expected_rows(simulator.live_services())
