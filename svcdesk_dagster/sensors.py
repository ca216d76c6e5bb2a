"""The project's two sensors, one module each: `new_incidents_sensor` (a cheap watch on the
incident API, `new_incidents_sensor.py`) and `sync_failure_sensor` (an alert on every failed run,
`failure_alerts.py`)."""

from __future__ import annotations

from dagster import SensorDefinition

from svcdesk_dagster.failure_alerts import sync_failure_sensor
from svcdesk_dagster.new_incidents_sensor import new_incidents_sensor

SENSORS: tuple[SensorDefinition, ...] = (new_incidents_sensor, sync_failure_sensor)
