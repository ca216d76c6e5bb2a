"""The README's operations, run as written, act on the data the runs wrote; and two Dagster
instances on one host keep their pipeline folders apart.

Each test works in a folder of its own, as a deployment would: the DuckDB file at its default
place (`data/svcdesk.duckdb` under the working directory) and the instance in a `DAGSTER_HOME`,
with neither `DESTINATION__DUCKDB__CREDENTIALS` nor `DLT_DATA_DIR` set, because those defaults are
what dlt's own CLI cannot see.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcdesk_dagster_tests.conftest import (
    INCIDENT_MANAGEMENT_KEY,
    SERVICE_DESK_KEY,
    Project,
)
from svcdesk_dagster_tests.tables_vs_simulator import (
    assert_tables_equal_simulator,
    table_rows,
)
from svcdesk_simulator import Simulator, settings_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Deployment:
    """A working directory and a Dagster instance, as an operator sets one up."""

    workdir: Path
    home: Path
    env: dict[str, str]

    @property
    def duckdb_file(self) -> Path:
        return self.workdir / "data" / "svcdesk.duckdb"

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=300,
        )


def deployment(root: Path, simulator: Simulator, project: Project) -> Deployment:
    workdir, home = root / "work", root / "dagster_home"
    workdir.mkdir(parents=True)
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        name: value
        for name, value in project.env.items()
        if name not in ("DESTINATION__DUCKDB__CREDENTIALS", "DLT_DATA_DIR")
    }
    env.update(settings_for(simulator, SERVICE_DESK_KEY, INCIDENT_MANAGEMENT_KEY))
    env["DAGSTER_HOME"] = str(home)
    return Deployment(workdir, home, env)


def materialize(deployed: Deployment, selection: str = "*") -> None:
    done = deployed.run(
        "dagster", "asset", "materialize", "-m", "svcdesk_dagster", "--select", selection
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_rebuild_procedure_acts_on_the_runs_data(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    deployed = deployment(tmp_path, simulator, project)
    materialize(deployed)
    assert (deployed.home / "dlt" / "pipelines" / "svcdesk_service_desk").is_dir()

    info = deployed.run("svcdesk", "dlt", "pipeline", "svcdesk_service_desk", "info")
    assert info.returncode == 0, info.stderr[-3000:]
    assert "tickets" in info.stdout

    dropped = deployed.run(
        "svcdesk", "dlt", "-y", "pipeline", "svcdesk_service_desk", "drop", "tickets"
    )
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    assert not (deployed.workdir / "svcdesk_service_desk.duckdb").exists(), "no stray DuckDB file"
    with pytest.raises(Exception, match="tickets"):
        table_rows(deployed.duckdb_file, "service_desk.tickets")

    rebuilt = deployed.run("svcdesk", "rebuild", "tickets")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert_tables_equal_simulator(simulator, deployed.duckdb_file)

    trace = deployed.run("svcdesk", "dlt", "pipeline", "svcdesk_service_desk", "trace")
    assert trace.returncode == 0, trace.stderr[-3000:]
    assert "load" in trace.stdout.lower()


def test_dlts_own_cli_reads_the_runs_pipelines_from_the_project_root(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    """`./dev dlt pipeline svcdesk_service_desk info` (and `trace`), as the README shows them:
    `./dev` says where the instance keeps the pipelines, so dlt's CLI needs no wrapper."""
    deployed = deployment(tmp_path, simulator, project)
    materialize(deployed, "tickets")
    env = {name: value for name, value in deployed.env.items() if name != "PATH"}
    env["PATH"] = f"{BIN}:/usr/bin:/bin"

    def dev_dlt(*arguments: str) -> str:
        done = subprocess.run(
            [str(PROJECT_ROOT / "dev"), "dlt", "pipeline", "svcdesk_service_desk", *arguments],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    info = dev_dlt("info")
    assert f"Found pipeline svcdesk_service_desk in {deployed.home / 'dlt' / 'pipelines'}" in info
    assert "dataset_name: service_desk" in info
    trace = dev_dlt("trace")
    assert f"- tickets: {len(simulator.all_tickets())} row(s)" in trace
    assert not (PROJECT_ROOT / "svcdesk_service_desk.duckdb").exists(), "no stray DuckDB file"


def test_the_dlt_command_refuses_to_guess_without_an_instance(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    deployed = deployment(tmp_path, simulator, project)
    env = {name: value for name, value in deployed.env.items() if name != "DAGSTER_HOME"}

    done = subprocess.run(
        [str(BIN / "svcdesk"), "dlt", "pipeline", "svcdesk_service_desk", "info"],
        cwd=deployed.workdir, env=env, capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 2
    assert "DAGSTER_HOME" in done.stderr and "DLT_DATA_DIR" in done.stderr


def test_two_instances_on_one_host_keep_their_pipeline_folders_apart(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    first = deployment(tmp_path / "first", simulator, project)
    second = deployment(tmp_path / "second", simulator, project)
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "svcdesk_dagster", "--select", "*"]

    running = [
        subprocess.Popen(command, cwd=d.workdir, env=d.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for d in (first, second)
    ]
    outcomes = [process.communicate(timeout=300) for process in running]

    for process, (_, stderr) in zip(running, outcomes, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    for deployed in (first, second):
        assert_tables_equal_simulator(simulator, deployed.duckdb_file)
        assert (deployed.home / "dlt" / "pipelines" / "svcdesk_incident_management").is_dir()
