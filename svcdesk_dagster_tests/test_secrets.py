"""No API key anywhere: the whole project runs with a recognisable key through successes, upstream
faults, a wrong key and an unreachable vendor, with every logger at DEBUG, and then every byte it
wrote or printed is searched for that key."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from svcdesk_dagster.definitions import defs
from svcdesk_dagster_tests.conftest import Project, unused_port
from svcdesk_simulator import Simulator, settings_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
CANARY = "CANARYKEY-7f3a9c1e5b"
CANARY_TOO = "CANARYKEY-im-0d4e8b2a"

DEBUG_EVERYTHING = """
python_logs:
  python_log_level: DEBUG
  managed_python_loggers: [urllib3, dlt, requests]
telemetry:
  enabled: false
"""


@pytest.fixture
def canary_simulator(project: Project, monkeypatch: pytest.MonkeyPatch):
    with Simulator(
        tickets=250,
        incidents=150,
        services=8,
        seed=11,
        service_desk_api_key=CANARY,
        incident_management_api_key=CANARY_TOO,
    ) as sim:
        for name, value in settings_for(sim, CANARY, CANARY_TOO).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")
        yield sim



def files_containing(root: Path, needles: tuple[bytes, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and any(needle in path.read_bytes() for needle in needles):
            found.append(str(path))
    return found


def test_no_key_in_anything_written_or_printed(
    canary_simulator: Simulator,
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sim = canary_simulator
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(DEBUG_EVERYTHING)
    debug_log = tmp_path / "debug.log"
    handler = logging.FileHandler(debug_log)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            job = defs.resolve_job_def("full_refresh")
            # 1. A clean run, and one through every kind of fault.
            job.execute_in_process(instance=instance)
            sim.faults.fail_next(2, status=503)
            sim.faults.drop_next(2, resource="incidents")
            sim.faults.truncate_next(2, resource="tickets")
            sim.faults.html_502_next(1, resource="services")
            job.execute_in_process(instance=instance)
            # 2. The vendor unreachable: connection errors quote the URL, query string and all.
            monkeypatch.setenv("SOURCES__SERVICE_DESK__BASE_URL", f"http://127.0.0.1:{unused_port()}/sd")
            monkeypatch.setenv("SOURCES__HTTP__MAX_RETRIES", "1")
            job.execute_in_process(instance=instance, raise_on_error=False)
            monkeypatch.setenv("SOURCES__SERVICE_DESK__BASE_URL", sim.service_desk_url)
            # 3. A lasting outage, retried by Dagster, failing with the vendor's error body.
            sim.faults.outage(status=503, resource="incidents")
            job.execute_in_process(instance=instance, raise_on_error=False)
            sim.faults.clear()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()

    # 4. The CLI, which also captures compute logs under DAGSTER_HOME.
    env = {
        **project.env,
        **settings_for(sim, CANARY, CANARY_TOO),
        "DAGSTER_HOME": str(dagster_home),
        "RUNTIME__LOG_LEVEL": "DEBUG",
    }
    sim.faults.drop_next(2)
    cli = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "svcdesk_dagster", "--select", "*"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]

    needles = (CANARY.encode(), CANARY_TOO.encode())
    printed = capfd.readouterr()
    assert sim.request_count() > 20, "the runs really talked to the vendor"
    assert "api_key=***" in debug_log.read_text() or "api_key=***" in printed.err + printed.out
    assert not any(needle.decode() in printed.out + printed.err for needle in needles)
    assert not any(needle.decode() in cli.stdout + cli.stderr for needle in needles)
    assert files_containing(dagster_home, needles) == []
    assert files_containing(Path(project.env["DLT_DATA_DIR"]), needles) == []
    assert files_containing(project.duckdb_file.parent, needles) == []
    assert files_containing(debug_log.parent, needles) == []
