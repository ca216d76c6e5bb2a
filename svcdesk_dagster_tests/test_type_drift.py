"""A vendor that changes a field's type: never silently retyped.

dlt on its own stores a number sent for a text column as text, a numeric string in an integer
column as a number and an epoch number in a timestamp column as a date, and nobody can tell
afterwards. Here every kind of drift is seen: in a nullable field the row loads, the value keeps
its own type in a variant column, and `schema_contract` fails with ERROR naming the table, the
column, both types and a few record ids; in a non-nullable field the run fails naming the
resource, field and record, and loads nothing. A full refresh after the vendor is fixed makes the
tables exact again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
from dagster import AssetCheckSeverity, ExecuteInProcessResult

from svcdesk_dagster_tests.conftest import Project
from svcdesk_dagster_tests.dagster_runs import run_job
from svcdesk_dagster_tests.tables_vs_simulator import (
    assert_tables_equal_simulator,
    count,
    expected_rows,
    query,
    table_rows,
)
from svcdesk_dagster_tests.test_checks import differences, evaluations
from svcdesk_simulator import Simulator

SCHEMA_CONTRACT = "schema_contract"


def when_set(new_value: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A transform of the values that are set (null stays null, as a vendor's would)."""
    return lambda value: None if value is None else new_value(value)


def first_ids_with(records: list[dict[str, Any]], *path: str) -> list[Any]:
    """The ids of the first five records (by id) whose field at `path` is set."""
    def value(record: dict[str, Any]) -> Any:
        for step in path:
            record = record.get(step) if isinstance(record, dict) else None
        return record

    return sorted(r["id"] for r in records if value(r) is not None)[:5]


def contract_of(result: ExecuteInProcessResult, asset: str):
    return evaluations(result)[(asset, SCHEMA_CONTRACT)]


def step_failure_text(result: ExecuteInProcessResult) -> str:
    failure = next(event for event in result.all_events if event.is_step_failure)
    return failure.step_failure_data.user_failure_data.description


def bookkeeping(project: Project) -> tuple[int, int]:
    """Loads and stored states of the service desk dataset: the window lives in the latter."""
    return (
        count(project.duckdb_file, "service_desk._dlt_loads"),
        count(project.duckdb_file, "service_desk._dlt_pipeline_state"),
    )


def test_drift_in_nullable_fields_loads_and_fails_the_contract_with_record_ids(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    # A number and a boolean for text, text for an integer, a numeric string for an integer,
    # text for a timestamp, and a list where a scalar is declared.
    simulator.set_field_transform("tickets", "priority", when_set(lambda v: 3))
    simulator.set_field_transform(
        "tickets", "custom_fields", lambda v: {**v, "product": True if v["product"] else None}
    )
    simulator.set_field_transform("tickets", "assignee_id", when_set(lambda v: f"U-{v}"))
    simulator.set_field_transform("tickets", "description", when_set(lambda v: [v]))
    simulator.set_field_transform("incidents", "acknowledged_at", when_set(lambda v: "soon"))
    tickets, incidents = simulator.live_tickets(), simulator.live_incidents()

    result = run_job("full_refresh", raise_on_error=False)

    assert count(project.duckdb_file, "service_desk.tickets") == len(tickets), "every row loaded"
    assert count(project.duckdb_file, "incident_management.incidents") == len(incidents)
    values = query(
        project.duckdb_file,
        "SELECT count(priority), count(priority__v_bigint), min(priority__v_bigint), "
        "count(custom_fields__product__v_bool), count(assignee_id__v_text) "
        "FROM service_desk.tickets",
    )[1][0]
    assert values == (
        0,
        sum(1 for t in tickets if t["priority"] is not None),
        3,
        sum(1 for t in tickets if t["custom_fields"]["product"] is not None),
        sum(1 for t in tickets if t["assignee_id"] is not None),
    ), "each drifted value kept, with its own type, in a variant column"

    contract = contract_of(result, "tickets")
    assert not contract.passed and contract.severity == AssetCheckSeverity.ERROR
    found = differences(contract)
    expected = {
        ("tickets", "priority__v_bigint"): ("text", "bigint", first_ids_with(tickets, "priority")),
        ("tickets", "custom_fields__product__v_bool"): (
            "text", "bool", first_ids_with(tickets, "custom_fields", "product"),
        ),
        ("tickets", "assignee_id__v_text"): (
            "bigint", "text", first_ids_with(tickets, "assignee_id"),
        ),
        ("tickets__description", "*"): ("text", "json", first_ids_with(tickets, "description")),
    }
    assert set(found) == set(expected)
    for where, (declared, arrived, ids) in expected.items():
        difference = found[where]
        assert (difference["expected"], difference["found"]) == (declared, arrived), where
        assert difference["record_ids"] == ids, where
        assert difference["severity"] == "ERROR"
    assert "records " in (contract.description or "")

    stamps = differences(contract_of(result, "incidents"))
    assert set(stamps) == {("incidents", "acknowledged_at__v_text")}
    assert stamps[("incidents", "acknowledged_at__v_text")]["record_ids"] == first_ids_with(
        incidents, "acknowledged_at"
    )
    assert not result.success, "an ERROR of schema_contract blocks"


def test_after_the_vendor_is_fixed_a_full_refresh_makes_the_table_exact(
    simulator: Simulator, project: Project
) -> None:
    simulator.set_field_transform("tickets", "priority", when_set(lambda v: 3))
    run_job("full_refresh", raise_on_error=False)
    simulator.set_field_transform("tickets", "priority", lambda v: v)

    result = run_job("full_refresh", raise_on_error=False)

    # Every row and value is the vendor's again; what stays is the emptied variant column (dlt
    # cannot drop a column in place: the README's rebuild removes it).
    rows = table_rows(project.duckdb_file, "service_desk.tickets")
    assert {row.pop("priority__v_bigint") for row in rows.values()} == {None}
    assert rows == expected_rows(simulator.live_tickets())
    contract = contract_of(result, "tickets")
    assert contract.severity == AssetCheckSeverity.WARN, "only the emptied column is left"
    (left,) = differences(contract).values()
    assert left["column"] == "priority__v_bigint" and "past change" in left["problem"]
    assert result.success


def test_drift_in_a_required_field_stops_the_read_and_the_next_run_after_the_fix_loads_all(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    before, books = table_rows(project.duckdb_file, "service_desk.tickets"), bookkeeping(project)
    changed = [simulator.update_ticket(ticket_id, status="pending") for ticket_id in (7, 8, 9)]
    simulator.set_field_transform("tickets", "subject", lambda v: None)

    nulls = run_job("service_desk_sync", raise_on_error=False)
    simulator.set_field_transform("tickets", "subject", lambda v: v)
    simulator.set_field_transform("tickets", "status", lambda v: 3)
    numbers = run_job("service_desk_sync", raise_on_error=False)
    simulator.set_field_transform("tickets", "status", lambda v: v)
    simulator.set_field_transform("tickets", "tags", lambda v: None)
    no_list = run_job("service_desk_sync", raise_on_error=False)

    assert "`tickets` record 7: `subject` is declared text, not null, and arrived as null" in (
        step_failure_text(nulls)
    )
    assert "`tickets` record 7: `status` is declared text, not null, and arrived as bigint" in (
        step_failure_text(numbers)
    )
    assert "`tickets` record 7: `tags` is declared a list" in step_failure_text(no_list)
    for result in (nulls, numbers, no_list):
        assert not result.success
        retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert retries == [], "a vendor's type change is not retried"
        assert "broke its contract" in step_failure_text(result)
    assert table_rows(project.duckdb_file, "service_desk.tickets") == before, "nothing loaded"
    assert bookkeeping(project) == books, "the window stayed where it was"

    simulator.set_field_transform("tickets", "tags", lambda v: v)
    run_job("service_desk_sync")

    assert_tables_equal_simulator(simulator, project.duckdb_file)
    loaded = table_rows(project.duckdb_file, "service_desk.tickets")
    assert loaded[changed[0]["id"]]["status"] == "pending", "the change made before the failures"


def test_drift_inside_a_child_list_is_seen(simulator: Simulator, project: Project) -> None:
    simulator.set_field_transform(
        "incidents", "assignees", lambda v: [{**a, "name": 42} for a in v]
    )
    incidents = simulator.live_incidents()

    result = run_job("incident_management_sync", raise_on_error=False)

    assert not result.success
    first = min(i["id"] for i in incidents if i["assignees"])
    assert f"`incidents` record {first!r}: `assignees[].name` is declared text" in (
        step_failure_text(result)
    )
    with duckdb.connect(str(project.duckdb_file), read_only=True) as con:
        listed = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    tables = {name for (name,) in listed}
    assert "incidents" not in tables, "nothing loaded"
