"""The project at scale, on a real PostgreSQL server started on loopback (`postgres.py`).

PostgreSQL twice over: as the destination, chosen by configuration alone (`SVCDESK_DESTINATION`,
`DESTINATION__POSTGRES__CREDENTIALS`), where every sync guarantee and both asset checks must hold
as on DuckDB; and as Dagster's storage (`deploy/dagster-postgres.yaml`), where parallel runs are
recorded and the concurrency pools keep two runs of one API from loading at once. Every run works
from a fresh working and pipeline directory, as a Kubernetes pod would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
)
from dagster._core.events.log import EventLogEntry

from svcdesk_dagster.checks import MERGE_KEY_UNIQUE, SCHEMA_CONTRACT
from svcdesk_dagster.naming import checks_op_name, op_name, sync_pool
from svcdesk_dagster.sources import APIS, SERVICE_DESK
from svcdesk_dagster_tests import postgres
from svcdesk_dagster_tests.conftest import Project
from svcdesk_dagster_tests.dagster_runs import run_job
from svcdesk_dagster_tests.postgres import (  # noqa: F401 (fixtures)
    PostgresDatabase,
    PostgresServer,
    postgres_database,
    postgres_server,
)
from svcdesk_dagster_tests.tables_vs_simulator import (
    TABLES,
    assert_tables_equal_simulator,
    live_records,
    table_rows,
)
from svcdesk_dagster_tests.test_checks import (
    ALL_CHECKS,
    differences,
    evaluations,
    meta,
    run_checks_alone,
)
from svcdesk_dagster_tests.test_sync import change_everything, sync_everything
from svcdesk_simulator import Simulator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
VARIANT = PROJECT_ROOT / "deploy" / "dagster-postgres.yaml"
RUN_SECONDS = 300


@pytest.fixture
def warehouse(
    project: Project, postgres_database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> PostgresDatabase:
    """The project pointed at PostgreSQL by configuration alone: the settings the README names."""
    monkeypatch.setenv("SVCDESK_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_database.url)
    return postgres_database


def assert_nothing_went_to_duckdb(project: Project) -> None:
    assert not project.duckdb_file.exists(), "the DuckDB default was not touched"


# -- PostgreSQL as the destination --------------------------------------------------------------


def test_full_refresh_loads_postgres_exactly_and_both_checks_pass(
    simulator: Simulator, project: Project, warehouse: PostgresDatabase
) -> None:
    result = run_job("full_refresh")

    assert_tables_equal_simulator(simulator, warehouse)
    checks = evaluations(result)
    assert set(checks) == ALL_CHECKS
    assert all(evaluation.passed for evaluation in checks.values()), checks
    for event in result.get_asset_materialization_events():
        asset = event.asset_key.to_user_string()
        assert event.materialization.metadata["dagster/row_count"].value == len(
            live_records(simulator, asset)
        )
    assert_nothing_went_to_duckdb(project)


def test_incremental_syncs_carry_every_kind_of_change_into_postgres(
    simulator: Simulator, warehouse: PostgresDatabase
) -> None:
    run_job("full_refresh")
    change_everything(simulator)  # updates, inserts, soft deletes, a service removed
    simulator.reset_request_log()

    sync_everything()

    assert_tables_equal_simulator(simulator, warehouse)
    tickets = table_rows(warehouse, TABLES["tickets"])
    assert 7 not in tickets and 200 not in tickets, "soft-deleted tickets are removed"
    assert simulator.request_count(resource="tickets") == 1, "read only the window"


def test_full_refresh_on_postgres_replaces_what_the_vendor_no_longer_has(
    simulator: Simulator, warehouse: PostgresDatabase
) -> None:
    """Replace goes through a staging dataset on PostgreSQL too; it also heals a hand-made gap."""
    run_job("full_refresh")
    simulator.delete_ticket(20)
    simulator.remove_service(simulator.live_services()[0]["id"])
    warehouse.execute(f"DELETE FROM {TABLES['tickets']} WHERE id = 42")

    run_job("full_refresh")

    assert_tables_equal_simulator(simulator, warehouse)


def copy_a_row_by_hand(warehouse: PostgresDatabase, table: str, key: int) -> None:
    """A second row with the same key, as a hand-made fix would leave it. dlt declares `_dlt_id`
    unique on PostgreSQL, so the copy gets its own."""
    warehouse.execute(
        f"CREATE TEMP TABLE copied AS SELECT * FROM {table} WHERE id = {key}; "
        "UPDATE copied SET _dlt_id = _dlt_id || '-copy'; "
        f"INSERT INTO {table} SELECT * FROM copied"
    )


def test_checks_on_postgres_report_a_repeated_key_and_a_new_vendor_field(
    simulator: Simulator, warehouse: PostgresDatabase
) -> None:
    simulator.add_extra_field("tickets", "satisfaction", 5)
    warned = evaluations(run_job("service_desk_sync"))[("tickets", SCHEMA_CONTRACT)]
    copy_a_row_by_hand(warehouse, TABLES["tickets"], 42)

    result = run_checks_alone("tickets", raise_on_error=False)

    assert not warned.passed and warned.severity == AssetCheckSeverity.WARN
    assert differences(warned)[("tickets", "satisfaction")]["problem"] == "new column"
    keys = evaluations(result)[("tickets", MERGE_KEY_UNIQUE)]
    assert not keys.passed and keys.severity == AssetCheckSeverity.ERROR
    assert meta(keys, "offending_keys") == [{"id": 42, "rows": 2}]
    assert not result.success, "a blocking check failing with ERROR fails the run"


def test_schema_contract_on_postgres_reads_a_type_change_as_an_error(
    simulator: Simulator, warehouse: PostgresDatabase
) -> None:
    """PostgreSQL's own types map back to dlt's: a variant column is found, nothing else differs."""
    run_job("service_desk_sync")

    def as_text(assignee_id: int | None) -> str | None:
        return None if assignee_id is None else f"U-{assignee_id}"

    simulator.set_field_transform("tickets", "assignee_id", as_text)

    result = run_job("full_refresh", raise_on_error=False)

    contract = evaluations(result)[("tickets", SCHEMA_CONTRACT)]
    assert not contract.passed and contract.severity == AssetCheckSeverity.ERROR
    assert set(differences(contract)) == {("tickets", "assignee_id__v_text")}


# -- stateless workers --------------------------------------------------------------------------


def move_to_a_fresh_pod(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new, empty working directory and dlt pipeline directory, as a new pod starts with; the
    previous pod's directories are gone, as they are when a pod ends."""
    for old in tmp_path.glob("pod-*"):
        shutil.rmtree(old)
    workdir = tmp_path / f"pod-{name}"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DLT_DATA_DIR", str(workdir / "dlt"))
    return workdir


def test_consecutive_syncs_each_in_a_fresh_pod_stay_exact_and_read_only_their_window(
    simulator: Simulator,
    warehouse: PostgresDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = move_to_a_fresh_pod(tmp_path, "first", monkeypatch)
    sync_everything()
    assert (first / "dlt").is_dir(), "the run worked in the pod's own pipeline directory"
    assert_tables_equal_simulator(simulator, warehouse)

    change_everything(simulator)
    simulator.reset_request_log()
    move_to_a_fresh_pod(tmp_path, "second", monkeypatch)
    sync_everything()
    assert_tables_equal_simulator(simulator, warehouse)
    windowed = [r for r in simulator.requests if r.resource in ("tickets", "incidents")]
    assert len(windowed) == 2 and all("updated_since" in r.params for r in windowed)

    simulator.reset_request_log()
    move_to_a_fresh_pod(tmp_path, "third", monkeypatch)
    sync_everything()
    assert_tables_equal_simulator(simulator, warehouse)
    assert simulator.request_count(resource="tickets") == 1
    assert simulator.request_count(resource="incidents") == 1


# -- Dagster on PostgreSQL ----------------------------------------------------------------------


@dataclass(frozen=True)
class DagsterHome:
    """A DAGSTER_HOME holding `deploy/dagster-postgres.yaml`, and the environment it reads."""

    path: Path
    database: PostgresDatabase
    env: dict[str, str]


@pytest.fixture
def dagster_home(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DagsterHome:
    """Dagster's storage in its own PostgreSQL database, credentials from the environment only."""
    database = postgres_server.create_database(f"dagster_{tmp_path.name}"[:60])
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(VARIANT, home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres.HOST,
        "DAGSTER_PG_PORT": str(postgres_server.port),
        "DAGSTER_PG_USERNAME": postgres.SUPERUSER,
        "DAGSTER_PG_PASSWORD": postgres_server.password,
        "DAGSTER_PG_DB": database.name,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DagsterHome(home, database, env)


@pytest.fixture
def instance(dagster_home: DagsterHome) -> Iterator[DagsterInstance]:
    with DagsterInstance.from_config(str(dagster_home.path)) as opened:
        yield opened


def test_the_postgres_variant_is_the_project_instance_plus_storage() -> None:
    """Pools, run retries and the queue must not drift between the two files."""
    project = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    variant = yaml.safe_load(VARIANT.read_text())

    storage = variant.pop("storage")

    assert variant == project
    settings = storage["postgres"]["postgres_db"]
    assert {name: value for name, value in settings.items() if isinstance(value, dict)} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }, "credentials come from the environment, never from the file"


def set_pool_limits(instance: DagsterInstance) -> None:
    """What README "Running at scale" has an operator run once on a new instance,
    `dagster instance concurrency set <pool> 1` (the same call, without a CLI start per pool).

    Left to the default limit instead, the first two runs that meet a new pool both insert its
    row, and on PostgreSQL the loser's run fails (dagster issue 33552)."""
    for pool in sorted({sync_pool(api) for api in APIS}):
        instance.event_log_storage.set_concurrency_slots(pool, 1)


def launch_in_fresh_pod(asset: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    """`dagster asset materialize` for one asset, in its own empty working and dlt directory."""
    workdir = tmp_path / f"pod-{asset}"
    workdir.mkdir()
    with (tmp_path / f"{asset}.log").open("wb") as log:
        return subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "svcdesk_dagster", "--select", asset],
            cwd=workdir,
            env={**env, "DLT_DATA_DIR": str(workdir / "dlt")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def engine_events(instance: DagsterInstance, run_id: str) -> list[EventLogEntry]:
    return list(instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT))


def blocked_pools(instance: DagsterInstance) -> list[str]:
    """The pools some step of some run was held back by: Dagster's own engine event for it."""
    return [
        str(entry.dagster_event.engine_event_data.metadata["pool"].value)
        for run in instance.get_runs()
        for entry in engine_events(instance, run.run_id)
        if "pool" in entry.dagster_event.engine_event_data.metadata
    ]


def hold_the_first_load_until_the_other_run_waits(
    simulator: Simulator, instance: DagsterInstance, resources: set[str], pool: str
) -> list[bool]:
    """Keeps the first request for `resources` unanswered until another run's step is blocked by
    `pool`, so the two runs of one API certainly contend instead of merely by timing. Returns the
    outcome list: [True] once the block was seen."""
    outcome: list[bool] = []
    lock = threading.Lock()

    def hold(request) -> None:
        with lock:
            if outcome or request.resource not in resources:
                return
            deadline = time.monotonic() + 60
            while pool not in blocked_pools(instance) and time.monotonic() < deadline:
                time.sleep(0.1)  # polling Dagster's event log, not guessing
            outcome.append(pool in blocked_pools(instance))

    simulator.on_request(hold)
    return outcome


def step_intervals(instance: DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) as the event log in PostgreSQL recorded it."""
    events = instance.all_logs(
        run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
    )

    def times(kind: DagsterEventType) -> dict[str, float]:
        return {e.step_key: e.timestamp for e in events if e.dagster_event_type == kind}

    starts, ends = times(DagsterEventType.STEP_START), times(DagsterEventType.STEP_SUCCESS)
    return {step: (starts[step], ends[step]) for step in starts}


def step_pool(step_key: str) -> str:
    """The pool a step of this code location runs in: its API's sync pool (checks included)."""
    api = next(a for a in APIS if step_key in (op_name(a), checks_op_name(a)))
    return sync_pool(api)


def assert_no_two_steps_of_a_pool_overlap(instance: DagsterInstance, run_ids: list[str]) -> None:
    by_pool: dict[str, list[tuple[float, float, str]]] = {}
    for run_id in run_ids:
        for step, (start, end) in step_intervals(instance, run_id).items():
            by_pool.setdefault(step_pool(step), []).append((start, end, f"{run_id[:8]}:{step}"))
    for pool, intervals in by_pool.items():
        intervals.sort()
        for earlier, later in zip(intervals, intervals[1:]):
            assert earlier[1] <= later[0], f"pool {pool}: {earlier[2]} overlaps {later[2]}"


def test_parallel_runs_are_recorded_in_postgres_and_the_pools_hold(
    simulator: Simulator,
    project: Project,
    warehouse: PostgresDatabase,
    dagster_home: DagsterHome,
    instance: DagsterInstance,
    tmp_path: Path,
) -> None:
    env = dict(os.environ)  # the project's settings, the warehouse and the Dagster storage
    set_pool_limits(instance)
    incident_pool = sync_pool(APIS[1])
    held = hold_the_first_load_until_the_other_run_waits(
        simulator, instance, {"incidents", "services"}, incident_pool
    )

    processes = [launch_in_fresh_pod(asset, env, tmp_path) for asset in TABLES]
    codes = [process.wait(timeout=RUN_SECONDS) for process in processes]

    logs = {
        asset: (tmp_path / f"{asset}.log").read_text(errors="replace")[-3000:] for asset in TABLES
    }
    assert codes == [0, 0, 0], logs
    runs = instance.get_runs()
    assert len(runs) == 3 and {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
    assert dagster_home.database.query("SELECT count(*) FROM runs")[1] == [(3,)], "in PostgreSQL"
    assert type(instance.run_storage).__module__.startswith("dagster_postgres")
    assert type(instance.event_log_storage).__module__.startswith("dagster_postgres")
    assert type(instance.schedule_storage).__module__.startswith("dagster_postgres")
    assert held == [True], "the second run of the incident API waited for the pool"
    assert sync_pool(SERVICE_DESK) not in blocked_pools(instance), "the other API was not held back"
    assert_no_two_steps_of_a_pool_overlap(instance, [run.run_id for run in runs])
    for asset in TABLES:
        assert instance.get_latest_materialization_event(AssetKey(asset)) is not None, asset
    assert_tables_equal_simulator(simulator, warehouse)
    assert_nothing_went_to_duckdb(project)


# -- without a server ---------------------------------------------------------------------------


def test_missing_binaries_skip_on_a_workstation_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "find_binaries", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="scripts/ensure-postgres"):
        postgres.require_binaries()

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs it"):
        postgres.require_binaries()
