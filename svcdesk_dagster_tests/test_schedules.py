"""The three schedules: the right job, off by default, cron and time zone from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_context

from svcdesk_dagster.definitions import defs
from svcdesk_dagster.schedules import build_schedules

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))

SCHEDULED_JOBS = {
    "service_desk_schedule": ("service_desk_sync", "0 * * * *"),
    "incident_management_schedule": ("incident_management_sync", "*/15 * * * *"),
    "full_refresh_schedule": ("full_refresh", "0 3 * * 0"),
}
SCHEDULE_SETTINGS = (
    "SVCDESK_SERVICE_DESK_CRON",
    "SVCDESK_INCIDENT_MANAGEMENT_CRON",
    "SVCDESK_FULL_REFRESH_CRON",
    "SVCDESK_SCHEDULE_TIMEZONE",
)


@pytest.fixture(autouse=True)
def no_schedule_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SCHEDULE_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def by_name(schedules: tuple[ScheduleDefinition, ...]) -> dict[str, ScheduleDefinition]:
    return {schedule.name: schedule for schedule in schedules}


@pytest.mark.parametrize("name", sorted(SCHEDULED_JOBS))
def test_each_schedule_requests_one_run_of_its_job_and_starts_stopped(name: str) -> None:
    job_name, cron = SCHEDULED_JOBS[name]
    schedule = defs.get_schedule_def(name)
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 22, 3, 0, tzinfo=timezone.utc)
    )

    result = schedule.evaluate_tick(context)

    assert schedule.job_name == job_name
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert len(result.run_requests or []) == 1
    # The job carries its own config (full_refresh=True for full_refresh): the tick adds none.
    assert result.run_requests[0].run_config == {}


def test_every_interface_schedule_is_in_the_code_location() -> None:
    names = {schedule.name for schedule in defs.schedules or []}

    assert names == set(SCHEDULED_JOBS)


def test_cron_and_time_zone_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVCDESK_SERVICE_DESK_CRON", "*/5 * * * *")
    monkeypatch.setenv("SVCDESK_FULL_REFRESH_CRON", "@daily")
    monkeypatch.setenv("SVCDESK_SCHEDULE_TIMEZONE", "Europe/Berlin")

    schedules = by_name(build_schedules())

    assert schedules["service_desk_schedule"].cron_schedule == "*/5 * * * *"
    assert schedules["incident_management_schedule"].cron_schedule == "*/15 * * * *"
    assert schedules["full_refresh_schedule"].cron_schedule == "@daily"
    assert {s.execution_timezone for s in schedules.values()} == {"Europe/Berlin"}


def test_a_blank_setting_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVCDESK_INCIDENT_MANAGEMENT_CRON", "  ")

    schedules = by_name(build_schedules())

    assert schedules["incident_management_schedule"].cron_schedule == "*/15 * * * *"


@pytest.mark.parametrize("cron", ["every hour", "61 * * * *", "0 * * *"])
def test_an_invalid_cron_names_its_setting(monkeypatch: pytest.MonkeyPatch, cron: str) -> None:
    monkeypatch.setenv("SVCDESK_INCIDENT_MANAGEMENT_CRON", cron)

    with pytest.raises(ValueError) as raised:
        build_schedules()

    assert "SVCDESK_INCIDENT_MANAGEMENT_CRON" in str(raised.value)
    assert repr(cron) in str(raised.value)


def test_an_unknown_time_zone_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVCDESK_SCHEDULE_TIMEZONE", "Mars/Olympus_Mons")

    with pytest.raises(ValueError, match="SVCDESK_SCHEDULE_TIMEZONE.*Mars/Olympus_Mons"):
        build_schedules()


def test_the_code_location_refuses_to_load_with_an_invalid_cron() -> None:
    """What an operator sees: the load error (UI, `definitions validate`) names the variable."""
    env = {**os.environ, "SVCDESK_FULL_REFRESH_CRON": "weekly on sunday"}
    completed = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "svcdesk_dagster"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode != 0
    assert "Setting SVCDESK_FULL_REFRESH_CRON must be a cron expression" in completed.stderr + completed.stdout
