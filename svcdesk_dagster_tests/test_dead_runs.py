"""A run that dies does not block anything, and loses nothing.

A `dagster asset materialize` is killed with SIGKILL, as the OOM killer or a reboot would, while
it reads, while dlt normalizes and while it loads. The next run finds the dead run's pool slot,
marks the run failed, frees the slot, says so, and leaves the tables exact; an incremental sync
after it proves the window is where the data says. A slot held by a worker that cannot be checked
from here (another machine) is waited for a bounded time, and the error names the holder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from svcdesk_dagster.pools import WORKER_HOST_TAG, WORKER_PID_TAG
from svcdesk_dagster_tests.conftest import SERVICE_DESK_KEY, Project
from svcdesk_dagster_tests.tables_vs_simulator import (
    child_lists,
    expected_children,
    expected_rows,
    table_rows,
)
from svcdesk_simulator import Simulator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
TICKETS = 20_000
"""Enough for dlt's normalize (about 1.5 s here) and load (0.4 s) to be caught in the act."""
POLL = 0.005


@dataclass(frozen=True)
class Deployment:
    home: Path
    env: dict[str, str]

    @property
    def pipeline(self) -> Path:
        return self.home / "dlt" / "pipelines" / "svcdesk_service_desk"

    def sync(self, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets"],
            cwd=PROJECT_ROOT, env={**self.env, **env}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )

    def runs(self) -> list[DagsterRun]:
        with DagsterInstance.from_config(str(self.home)) as instance:
            return list(instance.get_runs())


@pytest.fixture
def vendor(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    with Simulator(
        tickets=TICKETS, incidents=0, services=0, seed=9, service_desk_api_key=SERVICE_DESK_KEY
    ) as sim:
        yield sim


@pytest.fixture
def deployment(vendor: Simulator, project: Project, tmp_path: Path) -> Deployment:
    """A Dagster instance of its own (so pool slots outlive a process), its pipelines in it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {name: value for name, value in project.env.items() if name != "DLT_DATA_DIR"}
    env.update(
        DAGSTER_HOME=str(home),
        SOURCES__SERVICE_DESK__BASE_URL=vendor.service_desk_url,
        SOURCES__SERVICE_DESK__API_KEY=SERVICE_DESK_KEY,
    )
    return Deployment(home, env)


def assert_tickets_exact(vendor: Simulator, database: Path) -> None:
    tickets = vendor.live_tickets()
    assert table_rows(database, "service_desk.tickets") == expected_rows(tickets)
    assert child_lists(database, "service_desk.tickets", "tags") == expected_children(tickets, "tags")


def packages(folder: Path) -> list[Path]:
    return [package for package in folder.iterdir() if package.is_dir()] if folder.is_dir() else []


def normalizing(deployed: Deployment) -> bool:
    """dlt is writing the normalized package (`load/new/<load id>`)."""
    return bool(packages(deployed.pipeline / "load" / "new"))


def loading(deployed: Deployment) -> bool:
    """dlt has loaded some of the package's jobs into DuckDB, not yet all."""
    return any(
        any((package / "completed_jobs").iterdir())
        for package in packages(deployed.pipeline / "load" / "normalized")
    )


def kill_when(sync: subprocess.Popen[str], reached: Callable[[], bool]) -> None:
    while not reached():
        assert sync.poll() is None, "the sync ended before the stage was reached"
        time.sleep(POLL)
    os.kill(sync.pid, signal.SIGKILL)
    sync.wait()


def kill_while_reading(vendor: Simulator, deployed: Deployment) -> None:
    """Holds a page deep in the listing until the sync is killed."""
    asked, release = threading.Event(), threading.Event()

    def hold(request) -> None:
        if request.resource == "tickets" and (request.offset or 0) >= 5_000:
            asked.set()
            release.wait(timeout=120)

    vendor.on_request(hold)
    sync = deployed.sync()
    assert asked.wait(timeout=120), "the sync reached the page"
    os.kill(sync.pid, signal.SIGKILL)
    sync.wait()
    release.set()
    vendor.clear_hooks()


STAGES = {
    "reading": kill_while_reading,
    "normalizing": lambda vendor, deployed: kill_when(deployed.sync(), lambda: normalizing(deployed)),
    "loading": lambda vendor, deployed: kill_when(deployed.sync(), lambda: loading(deployed)),
}


@pytest.mark.parametrize("kill", STAGES.values(), ids=STAGES.keys())
def test_a_run_killed_at_any_stage_neither_blocks_nor_loses_anything(
    kill: Callable[[Simulator, Deployment], None],
    vendor: Simulator,
    project: Project,
    deployment: Deployment,
) -> None:
    kill(vendor, deployment)
    (killed,) = deployment.runs()
    assert killed.status == DagsterRunStatus.STARTED, "nothing marked the killed run as ended"

    # The next run, as the CLI runs it: it would wait for the dead run's slot forever.
    output, _ = deployment.sync(SVCDESK_POOL_WAIT_SECONDS="120").communicate(timeout=300)

    assert f"Freed the slot of pool `duckdb` held by run {killed.run_id}" in output
    statuses = {run.run_id: run.status for run in deployment.runs()}
    assert statuses.pop(killed.run_id) == DagsterRunStatus.FAILURE
    assert list(statuses.values()) == [DagsterRunStatus.SUCCESS]
    assert_tickets_exact(vendor, project.duckdb_file)

    # The window is where the data says: the next sync reads one page, the two new changes.
    vendor.update_ticket(17, priority="urgent")
    vendor.delete_ticket(18)
    before = vendor.request_count(resource="tickets")
    done = deployment.sync().communicate(timeout=300)[0]
    assert "RUN_SUCCESS" in done, done[-3000:]
    assert_tickets_exact(vendor, project.duckdb_file)
    assert vendor.request_count(resource="tickets") - before == 1


def test_a_slot_held_by_a_worker_elsewhere_is_waited_for_then_named(
    vendor: Simulator, project: Project, deployment: Deployment
) -> None:
    holder = DagsterRun(
        job_name="service_desk_sync",
        run_id=str(uuid.uuid4()),
        status=DagsterRunStatus.STARTED,
        tags={WORKER_HOST_TAG: "worker-7.cluster.example", WORKER_PID_TAG: "4242"},
    )
    with DagsterInstance.from_config(str(deployment.home)) as instance:
        instance.add_run(holder)
        instance.event_log_storage.set_concurrency_slots("duckdb", 1)
        claim = instance.event_log_storage.claim_concurrency_slot(
            "duckdb", holder.run_id, "service_desk_dlt"
        )
        assert claim.is_claimed

    output, _ = deployment.sync(SVCDESK_POOL_WAIT_SECONDS="1").communicate(timeout=300)

    assert f"Pool `duckdb` is held by run {holder.run_id}" in output
    assert f"still held: pool `duckdb` by run {holder.run_id}" in output
    assert "PID 4242 on worker-7.cluster.example" in output and "Force termination" in output
    assert vendor.request_count() == 0, "nothing was read while the pool was held"

    with DagsterInstance.from_config(str(deployment.home)) as instance:
        instance.report_run_canceled(instance.get_run_by_id(holder.run_id))
    done = deployment.sync().communicate(timeout=300)[0]
    assert f"Freed the slot of pool `duckdb` held by run {holder.run_id}" in done
    assert_tickets_exact(vendor, project.duckdb_file)
