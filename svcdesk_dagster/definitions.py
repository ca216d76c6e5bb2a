"""The code location: every asset, job and resource, assembled in one place.

Loads with no configuration and no network (README, Configuration): everything that needs a setting or a
secret is resolved when a run starts.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from svcdesk_dagster.assets import SYNC_ASSETS
from svcdesk_dagster.checks import ASSET_CHECKS
from svcdesk_dagster.jobs import JOBS
from svcdesk_dagster.resources import dagster_resources
from svcdesk_dagster.schedules import SCHEDULES
from svcdesk_dagster.sensors import SENSORS

defs = Definitions(
    assets=list(SYNC_ASSETS),
    asset_checks=list(ASSET_CHECKS),
    jobs=list(JOBS),
    schedules=list(SCHEDULES),
    sensors=list(SENSORS),
    resources=dagster_resources(),
    # One process per run: the multiprocess default re-imports the code location for every step
    # (about 4 s each), and the steps of one run would contend for the embedded DuckDB file.
    executor=in_process_executor,
)
