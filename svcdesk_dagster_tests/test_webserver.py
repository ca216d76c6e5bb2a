"""The web UI an operator opens: `dagster-webserver -w workspace.yaml` with this project's instance.

Started as an operator would, from the project root with no API settings at all and a DAGSTER_HOME
holding a copy of the project's `dagster.yaml` (so the instance file is checked too), and asked
through its GraphQL API what the UI shows.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from svcdesk_dagster_tests.conftest import PROJECT_SETTINGS, unused_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
STARTUP_SECONDS = 60.0

LOCATION_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

REPOSITORY_QUERY = """
{
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        location { name }
        jobs { name }
        schedules { name cronSchedule scheduleState { status } }
        sensors { name sensorState { status } }
        assetNodes {
          assetKey { path }
          groupName
          assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def graphql(port: int, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def operator_env(dagster_home: Path) -> dict[str, str]:
    """The environment with none of the project's settings: the UI must load without them, and
    the schedules show their defaults."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in PROJECT_SETTINGS
        and not name.startswith(("SOURCES__", "DESTINATION__", "SVCDESK_"))
    }
    return {**env, "DAGSTER_HOME": str(dagster_home)}


def wait_until_loaded(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Polls GraphQL until the code location reports LOADED (or fails, or the server dies)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster-webserver exited: {log.read_text()[-3000:]}")
        try:
            entries = graphql(port, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
        except OSError:
            time.sleep(0.2)  # not listening yet: the process is still starting
            continue
        if entries and entries[0]["loadStatus"] == "LOADED":
            error = entries[0]["locationOrLoadError"]
            assert error["__typename"] == "RepositoryLocation", error
            return
        time.sleep(0.2)
    raise AssertionError(f"the code location did not load in {STARTUP_SECONDS:.0f} s: {log.read_text()[-3000:]}")


@pytest.fixture
def webserver(tmp_path: Path) -> Iterator[int]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port; yields the port."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    port = unused_port()
    log = tmp_path / "webserver.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [WEBSERVER, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=operator_env(dagster_home),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server goes down with it
        )
    try:
        wait_until_loaded(process, port, log)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def test_the_web_ui_shows_assets_checks_jobs_schedules_and_sensors(webserver: int) -> None:
    repositories = graphql(webserver, REPOSITORY_QUERY)["repositoriesOrError"]
    assert repositories["__typename"] == "RepositoryConnection", repositories
    (repository,) = repositories["nodes"]
    assert repository["location"]["name"] == "svcdesk_dagster"

    assets = {tuple(node["assetKey"]["path"]): node for node in repository["assetNodes"]}
    assert {key: node["groupName"] for key, node in assets.items()} == {
        ("tickets",): "service_desk",
        ("incidents",): "incident_management",
        ("services",): "incident_management",
    }
    if importlib.util.find_spec("svcdesk_dagster.checks") is not None:
        for key, node in assets.items():
            checks = node["assetChecksOrError"]
            assert checks["__typename"] == "AssetChecks", (key, checks)
            names = {check["name"] for check in checks["checks"]}
            assert {"schema_contract", "merge_key_unique"} <= names, (key, names)

    jobs = {job["name"] for job in repository["jobs"]}
    assert {"service_desk_sync", "incident_management_sync", "full_refresh"} <= jobs

    schedules = {s["name"]: (s["cronSchedule"], s["scheduleState"]["status"]) for s in repository["schedules"]}
    assert schedules == {
        "service_desk_schedule": ("0 * * * *", "STOPPED"),
        "incident_management_schedule": ("*/15 * * * *", "STOPPED"),
        "full_refresh_schedule": ("0 3 * * 0", "STOPPED"),
    }

    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors == {"new_incidents_sensor": "STOPPED", "sync_failure_sensor": "RUNNING"}
