"""The project's sensors, one module each: `new_incidents_sensor` (a cheap watch on the incident
API, `new_incidents_sensor.py`) and `sync_failure_sensor` (an alert on every failed run,
`failure_alerts.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import SensorDefinition

from svcdesk_dagster.failure_alerts import sync_failure_sensor
from svcdesk_dagster.jobs import AssetJob
from svcdesk_dagster.naming import sync_job_name
from svcdesk_dagster.new_incidents_sensor import build_new_incidents_sensor
from svcdesk_dagster.sources import INCIDENT_MANAGEMENT, VendorApi


def build_sensors(
    apis: Sequence[VendorApi], jobs: Sequence[AssetJob]
) -> tuple[SensorDefinition, ...]:
    """The failure alerts always; the watch on incidents when the incident API is synced."""
    if INCIDENT_MANAGEMENT not in apis:
        return (sync_failure_sensor,)
    incidents_job = next(job for job in jobs if job.name == sync_job_name(INCIDENT_MANAGEMENT))
    return (build_new_incidents_sensor(incidents_job), sync_failure_sensor)
