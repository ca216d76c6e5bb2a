"""The main path end to end: the simulator's records land in DuckDB through Dagster, exactly."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from svcdesk_dagster_tests.conftest import (
    PROJECT_SETTINGS,
    SERVICE_DESK_KEY,
    Project,
    unconfigured_environment,
)
from svcdesk_dagster_tests.dagster_runs import materialize, materialized_keys, run_job
from svcdesk_dagster_tests.tables_vs_simulator import (
    TABLES,
    assert_tables_equal_simulator,
    count,
    expected_rows,
    live_records,
    table_rows,
)
from svcdesk_simulator import Simulator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))

def test_full_refresh_loads_every_field_of_every_record(simulator: Simulator, project: Project) -> None:
    result = run_job("full_refresh")

    assert materialized_keys(result) == set(TABLES)
    assert_tables_equal_simulator(simulator, project.duckdb_file)
    # The data is not trivially empty: the comparison above covered real pages of each resource.
    assert count(project.duckdb_file, "service_desk.tickets") > 300
    assert count(project.duckdb_file, "service_desk.tickets__tags") > 0
    assert count(project.duckdb_file, "incident_management.incidents__assignees") > 0


def test_a_second_run_leaves_exactly_one_row_per_id(simulator: Simulator, project: Project) -> None:
    run_job("full_refresh")
    run_job("full_refresh")

    for asset, table in TABLES.items():
        assert count(project.duckdb_file, table) == len(live_records(simulator, asset)), table
    # Merge replaced the child rows of each ticket instead of appending a second copy.
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_materialization_reports_the_real_table_and_its_rows(
    simulator: Simulator, project: Project
) -> None:
    result = run_job("full_refresh")

    for event in result.get_asset_materialization_events():
        asset = event.asset_key.to_user_string()
        metadata = event.materialization.metadata
        live = len(live_records(simulator, asset))
        assert metadata["dagster/table_name"].value == TABLES[asset]
        assert metadata["dagster/row_count"].value == live
        assert metadata["sync_mode"].value == "full_refresh"
        assert metadata["rows_fetched"].value == live
        assert metadata["pages_fetched"].value == simulator.request_count(resource=asset, status=200)
        assert metadata["pages_fetched"].value >= live / 100
        assert metadata["responses_retried"].value == 0
        column_names = {column.name for column in metadata["dagster/column_schema"].value.columns}
        assert {"id", "created_at", "updated_at"} <= column_names


def test_a_sync_that_brings_no_rows_still_reports_the_table(
    simulator: Simulator, project: Project
) -> None:
    run_job("full_refresh")
    run_job("service_desk_sync")

    result = run_job("service_desk_sync")

    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["sync_mode"].value == "incremental"
    assert metadata["rows_fetched"].value == 0
    assert metadata["dagster/row_count"].value == len(simulator.live_tickets())


def test_one_asset_materializes_alone(simulator: Simulator, project: Project) -> None:
    result = materialize("services")

    assert materialized_keys(result) == {"services"}
    assert table_rows(project.duckdb_file, TABLES["services"]) == expected_rows(simulator.live_services())
    assert simulator.request_count(resource="incidents") == 0


def test_dagster_asset_materialize_cli_loads_one_asset(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    dagster_cli("asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets",
                env=cli_env(project, tmp_path))

    assert table_rows(project.duckdb_file, TABLES["tickets"]) == expected_rows(simulator.live_tickets())
    assert simulator.request_count(resource="incidents") == 0
    assert simulator.request_count(resource="services") == 0


def test_repeated_cli_materializations_follow_the_vendor(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    """The README's command, run again and again while the vendor changes underneath."""
    changes = (lambda: None, lambda: simulator.delete_ticket(5), simulator.create_incident)
    for change in changes:
        change()
        simulator.update_ticket(simulator.live_tickets()[-1]["id"], status="pending")
        dagster_cli("asset", "materialize", "-m", "svcdesk_dagster", "--select", "*",
                    env=cli_env(project, tmp_path))
        assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_dagster_job_execute_runs_full_refresh(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    dagster_cli("job", "execute", "-m", "svcdesk_dagster", "-j", "full_refresh",
                env=cli_env(project, tmp_path))

    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_settings_can_live_in_dlt_toml_files(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    """dlt's own convention: `.dlt/config.toml` and `.dlt/secrets.toml` in the working directory."""
    workdir = tmp_path / "workdir"
    (workdir / ".dlt").mkdir(parents=True)
    (workdir / ".dlt" / "config.toml").write_text(
        f'[sources.service_desk]\nbase_url = "{simulator.service_desk_url}"\n'
        f'[destination.duckdb]\ncredentials = "{project.duckdb_file}"\n'
    )
    (workdir / ".dlt" / "secrets.toml").write_text(
        f'[sources.service_desk]\napi_key = "{SERVICE_DESK_KEY}"\n'
    )
    env = {name: value for name, value in cli_env(project, tmp_path).items()
           if name not in PROJECT_SETTINGS}

    dagster_cli("asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets",
                env=env, cwd=workdir)

    assert table_rows(project.duckdb_file, TABLES["tickets"]) == expected_rows(simulator.live_tickets())


def cli_env(project: Project, tmp_path: Path) -> dict[str, str]:
    """The project's environment plus a DAGSTER_HOME of the test's own."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return {**project.env, "DAGSTER_HOME": str(home)}


def dagster_cli(*args: str, env: dict[str, str], cwd: Path = PROJECT_ROOT) -> None:
    """Runs the `dagster` command as a user would, and requires it to succeed."""
    completed = subprocess.run(
        [DAGSTER, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_definitions_load_with_no_environment(tmp_path: Path) -> None:
    # In an empty folder: no .dlt/ there either.
    dagster_cli("definitions", "validate", "-m", "svcdesk_dagster", env=unconfigured_environment(),
                cwd=tmp_path)


def test_the_code_location_offers_the_interface_names() -> None:
    from dagster import Definitions

    from svcdesk_dagster.definitions import defs

    Definitions.validate_loadable(defs)  # what `dagster definitions validate` checks, in process

    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert {name: spec.group_name for name, spec in specs.items()} == {
        "tickets": "service_desk",
        "incidents": "incident_management",
        "services": "incident_management",
    }
    assert all(not spec.deps for spec in specs.values()), "no phantom upstream assets"
    assert {name: spec.freshness_policy.fail_window.to_timedelta() for name, spec in specs.items()} == {
        "tickets": timedelta(hours=2),
        "incidents": timedelta(minutes=30),
        "services": timedelta(days=1),
    }
    assert all({"dlt", "duckdb"} <= set(spec.kinds) for spec in specs.values())
    for job in ("service_desk_sync", "incident_management_sync", "full_refresh"):
        assert defs.resolve_job_def(job) is not None


def test_every_asset_has_a_dagster_retry_policy() -> None:
    """The second retry layer, above the HTTP session's, for outages longer than those."""
    from dagster import AssetKey

    from svcdesk_dagster.definitions import defs

    for asset in ("tickets", "incidents", "services"):
        policy = defs.resolve_assets_def(AssetKey(asset)).op.retry_policy
        assert policy is not None and policy.max_retries == 3, asset
        assert policy.backoff is not None and policy.jitter is not None, asset


@pytest.mark.parametrize(
    "missing", ["SOURCES__SERVICE_DESK__API_KEY", "SOURCES__SERVICE_DESK__BASE_URL"]
)
def test_a_missing_setting_fails_at_once_and_names_it(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)

    result = materialize("tickets", raise_on_error=False)

    assert not result.success
    failures = [event for event in result.all_events if event.is_step_failure]
    assert len(failures) == 1, "a configuration error is not retried"
    message = failures[0].step_failure_data.user_failure_data.description
    assert missing in message
    assert simulator.request_count() == 0


def test_duckdb_limits_can_be_raised_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from svcdesk_dagster.resources import duckdb_credentials

    assert duckdb_credentials(tmp_path / "a.duckdb").global_config == {
        "memory_limit": "256MB",
        "threads": 2,
    }
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "2GB"}')
    assert duckdb_credentials(tmp_path / "a.duckdb").global_config == {
        "memory_limit": "2GB",
        "threads": 2,
    }
