"""A DuckDB file that another process holds open, as an analyst's notebook does.

A second process opens the file and keeps it open; the sync says first what happened (the file,
the holder's PID and name), waits a bounded time for it, and either goes on once the holder lets
go, with the tables exact, or fails saying so.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcdesk_dagster_tests.conftest import Project
from svcdesk_dagster_tests.dagster_runs import materialize, run_job
from svcdesk_dagster_tests.tables_vs_simulator import (
    assert_tables_equal_simulator,
    table_rows,
)
from svcdesk_simulator import Simulator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


@pytest.fixture
def holder(project: Project) -> Iterator[subprocess.Popen[str]]:
    """A process holding the test's DuckDB file open until told (a line on its stdin) to let go."""
    run_job("full_refresh")
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(project.duckdb_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "holding"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def step_failures(result) -> list:
    return [event for event in result.all_events if event.is_step_failure]


def test_a_held_file_fails_the_sync_saying_who_holds_it(
    simulator: Simulator,
    project: Project,
    holder: subprocess.Popen[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SVCDESK_DUCKDB_WAIT_SECONDS", "0.5")
    simulator.update_ticket(3, priority="urgent")

    result = materialize("tickets", raise_on_error=False)

    assert not result.success
    failures = step_failures(result)
    message = failures[-1].step_failure_data.user_failure_data.description
    assert message.startswith(
        f"The DuckDB file {project.duckdb_file} is held open by another process"
    )
    assert f"PID {holder.pid} (python" in message
    assert "SVCDESK_DUCKDB_WAIT_SECONDS" in message
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3, "worth Dagster's retries: the holder may let go"

    holder.stdin.write("\n")  # type: ignore[union-attr]
    holder.stdin.flush()  # type: ignore[union-attr]
    holder.wait(timeout=30)
    run_job("service_desk_sync")
    assert_tables_equal_simulator(simulator, project.duckdb_file)


def test_the_sync_waits_for_the_file_and_goes_on_when_it_is_let_go(
    simulator: Simulator, project: Project, holder: subprocess.Popen[str]
) -> None:
    simulator.update_ticket(3, priority="urgent")
    sync = subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets"],
        cwd=PROJECT_ROOT, env={**project.env, "SVCDESK_DUCKDB_WAIT_SECONDS": "120"},
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    said = []
    assert sync.stderr is not None
    for line in sync.stderr:
        said.append(line)
        if "is held open by another process" in line:
            break
    assert f"PID {holder.pid}" in said[-1], "the wait names the holder"

    holder.stdin.write("\n")  # type: ignore[union-attr]
    holder.stdin.flush()  # type: ignore[union-attr]
    rest = sync.stderr.read()
    assert sync.wait(timeout=300) == 0, rest[-3000:]
    assert_tables_equal_simulator(simulator, project.duckdb_file)
    assert table_rows(project.duckdb_file, "service_desk.tickets")[3]["priority"] == "urgent"
