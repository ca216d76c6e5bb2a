"""The schedules: one per job (`<api>_schedule`, `full_refresh_schedule`), off until an operator
turns them on.

When a job runs is a deployment's choice, not the code's, so each cron expression
(`SVCDESK_<API>_CRON`, `SVCDESK_FULL_REFRESH_CRON`) and the time zone they are read in
(`SVCDESK_SCHEDULE_TIMEZONE`) come from the environment, with the defaults below. They are read
when the code location loads: they hold no secret, and a wrong one must stop the load with an
error that names the variable, rather than surface later as a schedule that never fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dagster import (
    DagsterInvalidDefinitionError,
    DefaultScheduleStatus,
    ScheduleDefinition,
)

from svcdesk_dagster.jobs import FULL_REFRESH_JOB, AssetJob, build_jobs, listed
from svcdesk_dagster.naming import sync_job_name
from svcdesk_dagster.settings import cron, schedule_timezone
from svcdesk_dagster.sources import APIS, VendorApi


@dataclass(frozen=True)
class SchedulePlan:
    """One schedule, with the setting that overrides its cron."""

    name: str
    job: AssetJob
    cron_env: str
    default_cron: str
    description: str


SYNC_CADENCES: dict[str, tuple[str, str]] = {
    # API: (default cron, in words). Incidents matter within minutes; tickets within the hour.
    "service_desk": ("0 * * * *", "hourly"),
    "incident_management": ("*/15 * * * *", "every 15 minutes"),
}
HOURLY = ("0 * * * *", "hourly")
"""The cadence of an API not in `SYNC_CADENCES`."""


def sync_plan(api: VendorApi, job: AssetJob) -> SchedulePlan:
    """`<api>_schedule`: the incremental sync of `api`, its cron from `SVCDESK_<API>_CRON`."""
    default_cron, in_words = SYNC_CADENCES.get(api.name, HOURLY)
    cron_env = f"SVCDESK_{api.name.upper()}_CRON"
    return SchedulePlan(
        name=f"{api.name}_schedule",
        job=job,
        cron_env=cron_env,
        default_cron=default_cron,
        description=(
            f"Incremental sync of {listed(api.resource_names)}, {in_words} unless {cron_env} says."
        ),
    )


def full_refresh_plan(job: AssetJob) -> SchedulePlan:
    return SchedulePlan(
        name="full_refresh_schedule",
        job=job,
        cron_env="SVCDESK_FULL_REFRESH_CRON",
        default_cron="0 3 * * 0",
        description=(
            "Rebuilds every table from a complete read, weekly (Sundays 03:00) unless "
            "SVCDESK_FULL_REFRESH_CRON says: a safety net that repairs whatever drift the "
            "incremental syncs could leave (a vendor's clock far off, a table edited by hand)."
        ),
    )


def build_schedule(plan: SchedulePlan, timezone: str) -> ScheduleDefinition:
    """One schedule, STOPPED by default: nothing calls the vendors until an operator says so.

    Dagster checks the cron expression (five fields, or `@hourly`-style aliases); its error names
    the schedule, ours names the variable to fix.
    """
    expression = cron(plan.cron_env, plan.default_cron)
    try:
        return ScheduleDefinition(
            name=plan.name,
            job=plan.job,
            cron_schedule=expression,
            execution_timezone=timezone,
            default_status=DefaultScheduleStatus.STOPPED,
            description=plan.description,
        )
    except DagsterInvalidDefinitionError:
        raise ValueError(
            f"Setting {plan.cron_env} must be a cron expression of five fields such as "
            f"{plan.default_cron!r} (or @hourly, @daily, @weekly), got {expression!r}."
        ) from None


def build_schedules(
    apis: Sequence[VendorApi] = APIS,
    jobs: Sequence[AssetJob] | None = None,
) -> tuple[ScheduleDefinition, ...]:
    """One schedule per API and the full refresh's, for the `jobs` built for `apis`, from the
    environment in force now (called once, at load)."""
    timezone = schedule_timezone()
    by_name = {job.name: job for job in (jobs if jobs is not None else build_jobs(apis))}
    plans = (
        *(sync_plan(api, by_name[sync_job_name(api)]) for api in apis),
        full_refresh_plan(by_name[FULL_REFRESH_JOB]),
    )
    return tuple(build_schedule(plan, timezone) for plan in plans)

