"""The code location: every asset, check, job, schedule, sensor and resource, assembled here.

Loads with no configuration and no network (README, Configuration): everything that needs a
setting or a secret is resolved when a run starts. `build_definitions` takes the APIs to sync, so
that a new API is one module under `sources/` and one entry in `sources.APIS`
(`docs/architecture.md`).
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import Definitions, in_process_executor

from svcdesk_dagster.assets import build_sync_assets
from svcdesk_dagster.checks import build_checks
from svcdesk_dagster.jobs import build_jobs
from svcdesk_dagster.resources import dagster_resources
from svcdesk_dagster.schedules import build_schedules
from svcdesk_dagster.sensors import build_sensors
from svcdesk_dagster.sources import APIS, VendorApi


def build_definitions(apis: Sequence[VendorApi] = APIS) -> Definitions:
    jobs = build_jobs(apis)
    return Definitions(
        assets=[build_sync_assets(api) for api in apis],
        asset_checks=[build_checks(api) for api in apis],
        jobs=list(jobs),
        schedules=list(build_schedules(apis, jobs)),
        sensors=list(build_sensors(apis, jobs)),
        resources=dagster_resources(),
        # One process per run: the multiprocess default re-imports the code location for every
        # step (about 4 s each), and the steps of one run would contend for the embedded DuckDB.
        executor=in_process_executor,
    )


defs = build_definitions()
