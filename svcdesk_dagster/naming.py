"""How the project names what it makes: tables, steps, pools and dlt pipelines, one rule each.

Every name derives from the API's `name` (its dlt source, config section, dataset and Dagster
group at once, see `sources/api.py`), so the assets, jobs, checks, resources, sensors and the
benchmark that all need these names can never drift apart.
"""

from __future__ import annotations

from svcdesk_dagster.settings import destination_name
from svcdesk_dagster.sources import VendorApi


def table_name(api: VendorApi, resource_name: str) -> str:
    """`<dataset>.<table>`, as the destination and the catalog (`dagster/table_name`) show it."""
    return f"{api.name}.{resource_name}"


def sync_job_name(api: VendorApi) -> str:
    """The job that syncs one API incrementally (`service_desk_sync`)."""
    return f"{api.name}_sync"


def op_name(api: VendorApi) -> str:
    """The step that loads one API's assets (job names already take `<api>_sync`)."""
    return f"{api.name}_dlt"


def checks_op_name(api: VendorApi) -> str:
    """The step that runs the checks of one API's assets."""
    return f"{api.name}_checks"


def pipeline_name(api: VendorApi) -> str:
    """The dlt pipeline that loads one API (`dlt pipeline <name> info` takes it)."""
    return f"svcdesk_{api.name}"


def sync_pool(api: VendorApi) -> str:
    """The concurrency pool a sync runs in (limit 1 in dagster.yaml).

    dagster-dlt drops a pipeline's local state and restores it from the destination at the start
    of every run, so two runs of one pipeline at once corrupt each other: one pool per API. An
    embedded DuckDB file takes one writing process at a time, so there both APIs share one pool.
    """
    return "duckdb" if destination_name() == "duckdb" else api.name
