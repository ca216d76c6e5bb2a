"""The web UI an operator opens: `dagster-webserver -w workspace.yaml` with this project's instance.

Started as an operator would, from the project root with no API settings at all and a DAGSTER_HOME
holding a copy of the project's `dagster.yaml` (so the instance file is checked too), and asked
through its GraphQL API what the UI shows.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcdesk_dagster.screenshots import PROJECT_ROOT, graphql, serve_web_ui
from svcdesk_dagster_tests.conftest import unconfigured_environment

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


@pytest.fixture
def webserver(tmp_path: Path) -> Iterator[str]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port; yields its base URL."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    # No API settings at all: the UI must load without them, and the schedules show their defaults.
    with serve_web_ui(dagster_home, unconfigured_environment()) as base_url:
        yield base_url


def test_the_web_ui_shows_assets_checks_jobs_schedules_and_sensors(webserver: str) -> None:
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
