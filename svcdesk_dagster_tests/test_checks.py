"""The asset checks `schema_contract` and `merge_key_unique`, run through the real `defs`.

Each test loads the simulator into its own DuckDB file, changes the vendor or the table the way
real life would (a new field, a type change, a row copied by hand), and asserts on the check
evaluations the run recorded: pass or fail, severity, and the metadata a data engineer reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    ExecuteInProcessResult,
)

from svcdesk_dagster.checks import (
    CHECKS,
    MERGE_KEY_UNIQUE,
    NOT_CREATED,
    SCHEMA_CONTRACT,
)
from svcdesk_dagster.definitions import defs
from svcdesk_dagster.resources import build_pipeline
from svcdesk_dagster.sources import SERVICE_DESK, declared_tables
from svcdesk_dagster.sources.service_desk import TAG_COLUMNS, TICKET_COLUMNS
from svcdesk_dagster_tests.conftest import Project
from svcdesk_dagster_tests.dagster_runs import materialize, materialized_keys, run_job
from svcdesk_dagster_tests.tables_vs_simulator import count
from svcdesk_simulator import Simulator

ASSETS = ("tickets", "incidents", "services")
ALL_CHECKS = {(asset, check) for asset in ASSETS for check in CHECKS}


def run_checks_alone(*assets: str, raise_on_error: bool = True) -> ExecuteInProcessResult:
    """Both checks of `assets` with no materialization, as the UI's "Execute checks" runs them."""
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(),
        asset_check_selection={
            AssetCheckKey(AssetKey(asset), check) for asset in assets for check in CHECKS
        },
    )
    with DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=raise_on_error)


def evaluations(result: ExecuteInProcessResult) -> dict[tuple[str, str], AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()
    }


def meta(evaluation: AssetCheckEvaluation, name: str) -> Any:
    return evaluation.metadata[name].value


def differences(evaluation: AssetCheckEvaluation) -> dict[tuple[str, str], dict[str, str]]:
    """The schema_contract differences keyed by (table, column)."""
    return {(d["table"], d["column"]): d for d in meta(evaluation, "differences")}


def sql(database: Path, statement: str) -> None:
    """Changes the table behind dlt's back, the way a hand-made fix or a buggy tool would."""
    with duckdb.connect(str(database)) as con:
        con.execute(statement)


def test_declared_schema_comes_from_the_resource_dicts() -> None:
    (tickets, tags) = declared_tables(SERVICE_DESK.resources[0])

    assert (tickets.name, tickets.primary_key, tickets.parent) == ("tickets", "id", None)
    assert tickets.columns == TICKET_COLUMNS
    assert (tags.name, tags.parent, tags.columns) == ("tickets__tags", "tickets", TAG_COLUMNS)


def test_clean_load_passes_every_check_in_the_materializing_run(
    simulator: Simulator, project: Project
) -> None:
    result = run_job("full_refresh")

    checks = evaluations(result)
    assert set(checks) == ALL_CHECKS
    assert all(evaluation.passed for evaluation in checks.values())
    tickets_keys = checks[("tickets", MERGE_KEY_UNIQUE)]
    assert meta(tickets_keys, "row_count") == len(simulator.live_tickets())
    assert (meta(tickets_keys, "null_key_count"), meta(tickets_keys, "duplicate_key_count")) == (0, 0)
    tags = meta(tickets_keys, "child_tables")["tickets__tags"]
    assert tags["row_count"] == count(project.duckdb_file, "service_desk.tickets__tags") > 0
    assert (tags["orphan_count"], tags["null_root_id_count"]) == (0, 0)
    assert meta(checks[("incidents", SCHEMA_CONTRACT)], "differences") == []


def test_no_change_sync_succeeds_and_checks_still_pass(simulator: Simulator, project: Project) -> None:
    run_job("full_refresh")

    results = [run_job("service_desk_sync"), run_job("incident_management_sync")]

    checks = {key: e for result in results for key, e in evaluations(result).items()}
    assert set(checks) == ALL_CHECKS
    assert all(evaluation.passed for evaluation in checks.values())
    assert meta(checks[("services", MERGE_KEY_UNIQUE)], "row_count") == len(simulator.live_services())


def test_duplicated_key_fails_merge_key_unique_and_blocks(simulator: Simulator, project: Project) -> None:
    run_job("full_refresh")
    sql(
        project.duckdb_file,
        "INSERT INTO service_desk.tickets SELECT * FROM service_desk.tickets WHERE id = 42",
    )

    result = materialize("tickets", raise_on_error=False)

    keys = evaluations(result)[("tickets", MERGE_KEY_UNIQUE)]
    assert not keys.passed and keys.severity == AssetCheckSeverity.ERROR
    assert meta(keys, "duplicate_key_count") == 1
    assert meta(keys, "offending_keys") == [{"id": 42, "rows": 2}]
    assert meta(keys, "row_count") == len(simulator.live_tickets()) + 1
    assert not result.success, "a blocking check that fails with ERROR fails the run"
    assert evaluations(result)[("tickets", SCHEMA_CONTRACT)].passed


def test_null_key_fails_merge_key_unique(simulator: Simulator, project: Project) -> None:
    run_job("service_desk_sync")
    sql(project.duckdb_file, "ALTER TABLE service_desk.tickets ALTER COLUMN id DROP NOT NULL")
    sql(project.duckdb_file, "UPDATE service_desk.tickets SET id = NULL WHERE id = 42")

    result = run_checks_alone("tickets", raise_on_error=False)

    keys = evaluations(result)[("tickets", MERGE_KEY_UNIQUE)]
    assert not keys.passed
    assert (meta(keys, "null_key_count"), meta(keys, "duplicate_key_count")) == (1, 0)
    assert meta(keys, "offending_keys") == [{"id": None, "rows": 1}]


def test_child_rows_without_parent_fail_merge_key_unique(simulator: Simulator, project: Project) -> None:
    run_job("incident_management_sync")
    with duckdb.connect(str(project.duckdb_file)) as con:
        (parent_id,) = con.execute(
            "SELECT _dlt_parent_id FROM incident_management.incidents__assignees LIMIT 1"
        ).fetchone()
        con.execute("DELETE FROM incident_management.incidents WHERE _dlt_id = ?", [parent_id])

    result = run_checks_alone("incidents", raise_on_error=False)

    keys = evaluations(result)[("incidents", MERGE_KEY_UNIQUE)]
    link = meta(keys, "child_tables")["incidents__assignees"]
    assert not keys.passed
    assert link["orphan_count"] >= 1 and link["offending_parent_ids"] == [parent_id]
    assert meta(keys, "duplicate_key_count") == 0


def test_new_vendor_fields_load_and_warn(simulator: Simulator, project: Project) -> None:
    simulator.add_extra_field("tickets", "satisfaction", 5)
    simulator.add_extra_field("tickets", "attachments", [{"name": "screenshot.png"}])

    result = run_job("service_desk_sync")

    assert result.success, "a warning never fails the run"
    with duckdb.connect(str(project.duckdb_file), read_only=True) as con:
        values = con.execute("SELECT DISTINCT satisfaction FROM service_desk.tickets").fetchall()
    assert values == [(5,)]
    assert count(project.duckdb_file, "service_desk.tickets__attachments") == len(simulator.live_tickets())
    contract = evaluations(result)[("tickets", SCHEMA_CONTRACT)]
    assert not contract.passed and contract.severity == AssetCheckSeverity.WARN
    found = differences(contract)
    assert set(found) == {("tickets", "satisfaction"), ("tickets__attachments", "*")}
    assert found[("tickets", "satisfaction")]["problem"] == "new column"
    assert found[("tickets__attachments", "*")]["problem"] == "new table"
    assert "satisfaction" in (contract.description or "")
    assert (meta(contract, "warning_count"), meta(contract, "error_count")) == (2, 0)


def test_type_changes_of_optional_fields_load_and_error(simulator: Simulator, project: Project) -> None:
    """A value that no longer fits lands in a variant column, an object where a scalar was
    declared in flattened columns: nothing is lost, and both are errors naming the field."""
    run_job("service_desk_sync")
    simulator.set_field_transform("tickets", "assignee_id", lambda v: None if v is None else f"U-{v}")
    simulator.set_field_transform("tickets", "priority", lambda v: None if v is None else {"level": v})

    result = run_job("full_refresh", raise_on_error=False)

    with duckdb.connect(str(project.duckdb_file), read_only=True) as con:
        variants, objects = con.execute(
            "SELECT count(assignee_id__v_text), count(priority__level) FROM service_desk.tickets"
        ).fetchone()
    assert variants > 0 and objects > 0
    contract = evaluations(result)[("tickets", SCHEMA_CONTRACT)]
    assert not contract.passed and contract.severity == AssetCheckSeverity.ERROR
    found = differences(contract)
    assert set(found) == {("tickets", "assignee_id__v_text"), ("tickets", "priority__level")}
    variant = found[("tickets", "assignee_id__v_text")]
    assert (variant["expected"], variant["found"], variant["severity"]) == ("bigint", "text", "ERROR")
    assert "`assignee_id`" in variant["problem"]
    assert "`priority`" in found[("tickets", "priority__level")]["problem"]
    assert meta(contract, "error_count") == 2
    assert not result.success, "schema_contract blocks on ERROR"
    assert evaluations(result)[("incidents", SCHEMA_CONTRACT)].passed


def test_type_change_of_required_field_stops_the_load(simulator: Simulator, project: Project) -> None:
    """A required column cannot take a variant (the original would be null): dlt refuses the load,
    so the table keeps its last good state and the check step does not run on it."""
    run_job("service_desk_sync")
    before = count(project.duckdb_file, "service_desk.tickets")
    simulator.set_field_transform("tickets", "customer_id", lambda v: f"C-{v}")

    result = run_job("full_refresh", raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert failure.step_key == "service_desk_dlt"
    assert "customer_id" in failure.step_failure_data.error.to_string()
    assert {asset for asset, _ in evaluations(result)} == {"incidents", "services"}
    assert count(project.duckdb_file, "service_desk.tickets") == before
    assert run_checks_alone("tickets").success


def test_missing_column_and_nullability_drift_are_errors(simulator: Simulator, project: Project) -> None:
    run_job("service_desk_sync")
    sql(project.duckdb_file, "ALTER TABLE service_desk.tickets DROP COLUMN priority")
    sql(project.duckdb_file, "ALTER TABLE service_desk.tickets ALTER COLUMN subject DROP NOT NULL")

    result = run_checks_alone("tickets", raise_on_error=False)

    contract = evaluations(result)[("tickets", SCHEMA_CONTRACT)]
    assert not contract.passed and contract.severity == AssetCheckSeverity.ERROR
    found = differences(contract)
    assert set(found) == {("tickets", "priority"), ("tickets", "subject")}
    assert found[("tickets", "priority")]["problem"] == "declared column missing"
    assert (found[("tickets", "subject")]["expected"], found[("tickets", "subject")]["found"]) == (
        "not null",
        "nullable",
    )


def test_checks_run_alone_without_materializing(simulator: Simulator, project: Project) -> None:
    run_job("full_refresh")

    result = run_checks_alone(*ASSETS)

    assert materialized_keys(result) == set()
    checks = evaluations(result)
    assert set(checks) == ALL_CHECKS
    assert all(evaluation.passed for evaluation in checks.values())
    assert meta(checks[("incidents", MERGE_KEY_UNIQUE)], "row_count") == len(simulator.live_incidents())


def test_checks_before_any_load_pass_with_table_not_created(project: Project) -> None:
    result = run_checks_alone(*ASSETS)

    checks = evaluations(result)
    assert set(checks) == ALL_CHECKS
    assert all(e.passed and meta(e, "status") == NOT_CREATED for e in checks.values())


def test_unreachable_destination_fails_clearly(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unusable = tmp_path / "a-directory-not-a-database"
    unusable.mkdir()
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(unusable))

    result = run_checks_alone("tickets", raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "could not open the destination `duckdb`" in failure.step_failure_data.error.to_string()
    assert evaluations(result) == {}


def test_checks_work_unchanged_on_another_sql_destination(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SQLite through dlt's `sqlalchemy` destination: no DuckDB-only SQL or client in the checks."""
    monkeypatch.setenv("SVCDESK_DESTINATION", "sqlalchemy")
    monkeypatch.setenv("DESTINATION__SQLALCHEMY__CREDENTIALS", f"sqlite:///{tmp_path / 'svcdesk.db'}")
    assert all(e.passed for e in evaluations(run_job("full_refresh")).values())
    with build_pipeline(SERVICE_DESK).sql_client() as client:
        tickets = client.make_qualified_table_name("tickets")
        client.execute_sql(f"INSERT INTO {tickets} SELECT * FROM {tickets} WHERE id = 42")

    result = run_checks_alone(*ASSETS, raise_on_error=False)

    checks = evaluations(result)
    assert set(checks) == ALL_CHECKS
    assert meta(checks[("tickets", MERGE_KEY_UNIQUE)], "offending_keys") == [{"id": 42, "rows": 2}]
    assert {key for key, e in checks.items() if not e.passed} == {("tickets", MERGE_KEY_UNIQUE)}
