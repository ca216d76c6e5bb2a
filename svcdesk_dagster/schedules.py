"""The code location's three schedules: one per job, off until an operator turns them on.

When a job runs is a deployment's choice, not the code's, so each cron expression and the time
zone they are read in come from the environment (with the defaults below). They are read when the
code location loads: they hold no secret, and a wrong one must stop the load with an error that
names the variable, rather than surface later as a schedule that never fires.

| environment variable | default | what |
| --- | --- | --- |
| `SVCDESK_SERVICE_DESK_CRON` | `0 * * * *` (hourly) | `service_desk_schedule` |
| `SVCDESK_INCIDENT_MANAGEMENT_CRON` | `*/15 * * * *` | `incident_management_schedule` |
| `SVCDESK_FULL_REFRESH_CRON` | `0 3 * * 0` (Sundays 03:00) | `full_refresh_schedule` |
| `SVCDESK_SCHEDULE_TIMEZONE` | `UTC` | the IANA time zone all three are read in |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster import DagsterInvalidDefinitionError, DefaultScheduleStatus, ScheduleDefinition

from svcdesk_dagster.jobs import full_refresh, incident_management_sync, service_desk_sync

TIMEZONE_ENV = "SVCDESK_SCHEDULE_TIMEZONE"
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class SchedulePlan:
    """One schedule, with the setting that overrides its cron."""

    name: str
    job: Any  # an asset job (`define_asset_job`), resolved by Definitions
    cron_env: str
    default_cron: str
    description: str


PLANS: tuple[SchedulePlan, ...] = (
    SchedulePlan(
        name="service_desk_schedule",
        job=service_desk_sync,
        cron_env="SVCDESK_SERVICE_DESK_CRON",
        default_cron="0 * * * *",
        description="Incremental sync of `tickets`, hourly unless SVCDESK_SERVICE_DESK_CRON says.",
    ),
    SchedulePlan(
        name="incident_management_schedule",
        job=incident_management_sync,
        cron_env="SVCDESK_INCIDENT_MANAGEMENT_CRON",
        default_cron="*/15 * * * *",
        description=(
            "Incremental sync of `incidents` and `services`, every 15 minutes unless "
            "SVCDESK_INCIDENT_MANAGEMENT_CRON says."
        ),
    ),
    SchedulePlan(
        name="full_refresh_schedule",
        job=full_refresh,
        cron_env="SVCDESK_FULL_REFRESH_CRON",
        default_cron="0 3 * * 0",
        description=(
            "Rebuilds all three tables from a complete read, weekly (Sundays 03:00) unless "
            "SVCDESK_FULL_REFRESH_CRON says: a safety net that repairs whatever drift the "
            "incremental syncs could leave (a vendor's clock far off, a table edited by hand)."
        ),
    ),
)


def env_setting(name: str, default: str) -> str:
    """An optional environment variable; blank counts as unset, so `VAR=` restores the default."""
    return os.environ.get(name, "").strip() or default


def schedule_timezone() -> str:
    """`SVCDESK_SCHEDULE_TIMEZONE`, checked now: Dagster would only fail on it at tick time."""
    name = env_setting(TIMEZONE_ENV, DEFAULT_TIMEZONE)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Setting {TIMEZONE_ENV} must be an IANA time zone such as UTC or Europe/Berlin, "
            f"got {name!r}."
        ) from None
    return name


def build_schedule(plan: SchedulePlan, timezone: str) -> ScheduleDefinition:
    """One schedule, STOPPED by default: nothing calls the vendors until an operator says so.

    Dagster checks the cron expression (five fields, or `@hourly`-style aliases); its error names
    the schedule, ours names the variable to fix.
    """
    cron = env_setting(plan.cron_env, plan.default_cron)
    try:
        return ScheduleDefinition(
            name=plan.name,
            job=plan.job,
            cron_schedule=cron,
            execution_timezone=timezone,
            default_status=DefaultScheduleStatus.STOPPED,
            description=plan.description,
        )
    except DagsterInvalidDefinitionError:
        raise ValueError(
            f"Setting {plan.cron_env} must be a cron expression of five fields such as "
            f"{plan.default_cron!r} (or @hourly, @daily, @weekly), got {cron!r}."
        ) from None


def build_schedules() -> tuple[ScheduleDefinition, ...]:
    """The three schedules from the environment in force now (called once, at load)."""
    timezone = schedule_timezone()
    return tuple(build_schedule(plan, timezone) for plan in PLANS)


SCHEDULES: tuple[ScheduleDefinition, ...] = build_schedules()
