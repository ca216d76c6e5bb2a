"""Fixtures: a simulator on loopback and an environment that points the project at it.

Every test gets its own DuckDB file, dlt data directory and Dagster instance, so tests are
independent and nothing lands in the developer's `data/` or `~/.dlt`.
"""

from __future__ import annotations

import os

# Before the code location is imported: Dagster's step retries keep their count, not their
# 10-second delays, so a test of a lasting outage takes a second instead of over a minute.
os.environ["SVCDESK_STEP_RETRY_DELAY_SECONDS"] = "0.05"

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest  # noqa: E402

from svcdesk_dagster.screenshots import unused_loopback_port  # noqa: E402
from svcdesk_simulator import Simulator, settings_for  # noqa: E402

SERVICE_DESK_KEY = "sd-test-key-0123456789"
INCIDENT_MANAGEMENT_KEY = "im-test-key-9876543210"

PROJECT_SETTINGS = (
    "SOURCES__SERVICE_DESK__BASE_URL",
    "SOURCES__SERVICE_DESK__API_KEY",
    "SOURCES__INCIDENT_MANAGEMENT__BASE_URL",
    "SOURCES__INCIDENT_MANAGEMENT__API_KEY",
    "SVCDESK_DESTINATION",
    "DESTINATION__DUCKDB__CREDENTIALS",
    "SVCDESK_ALERT_WEBHOOK_URL",
)


@dataclass(frozen=True)
class Project:
    """Where one test's project writes, and the environment that says so."""

    duckdb_file: Path
    env: dict[str, str]


def unconfigured_environment() -> dict[str, str]:
    """This process's environment without any of the project's settings, nor any dlt source or
    destination setting: an operator's shell before they configured anything."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in PROJECT_SETTINGS
        and not name.startswith(("SOURCES__", "DESTINATION__", "SVCDESK_"))
    }


unused_port = unused_loopback_port
"""A loopback port nothing listens on now, for a server a test starts or an address that refuses
connections: the same probe the screenshots' webserver takes its port from."""


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A small simulator: a few pages of each resource, so paging is exercised."""
    with Simulator(
        tickets=345,
        incidents=230,
        services=12,
        seed=7,
        service_desk_api_key=SERVICE_DESK_KEY,
        incident_management_api_key=INCIDENT_MANAGEMENT_KEY,
    ) as sim:
        yield sim


@pytest.fixture
def project(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """The API settings pointing at `simulator`, set in this process's environment."""
    for name in PROJECT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    duckdb_file = tmp_path / "svcdesk.duckdb"
    env = {
        **settings_for(simulator, SERVICE_DESK_KEY, INCIDENT_MANAGEMENT_KEY),
        "DESTINATION__DUCKDB__CREDENTIALS": str(duckdb_file),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        # Keep the retry counts, but do not make the tests wait out real backoff delays.
        "SOURCES__HTTP__BACKOFF_FACTOR": "0.01",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Project(duckdb_file=duckdb_file, env={**os.environ, **env})
