"""The jobs: one incremental sync per API (`<api>_sync`), and a full refresh of everything."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import AssetSelection, define_asset_job

from svcdesk_dagster.naming import op_name, sync_job_name
from svcdesk_dagster.sources import APIS, VendorApi

FULL_REFRESH_JOB = "full_refresh"

AssetJob = Any
"""What `define_asset_job` returns (Dagster does not export its type)."""


def sync_job(api: VendorApi) -> AssetJob:
    """The incremental sync of every asset of `api`."""
    return define_asset_job(
        sync_job_name(api),
        selection=AssetSelection.assets(*api.resource_names),
        description=f"Sync of {listed(api.resource_names)} from the {api.title} API.",
    )


def full_refresh_run_config(apis: Sequence[VendorApi]) -> dict[str, object]:
    """The run config that makes every sync step of `apis` read everything."""
    return {"ops": {op_name(api): {"config": {"full_refresh": True}} for api in apis}}


def full_refresh_job(apis: Sequence[VendorApi]) -> AssetJob:
    return define_asset_job(
        FULL_REFRESH_JOB,
        selection=AssetSelection.assets(*(name for api in apis for name in api.resource_names)),
        description=(
            "Rebuilds every table from a complete read of every API and restarts the incremental "
            "windows from that read."
        ),
        config=full_refresh_run_config(apis),
    )


def build_jobs(apis: Sequence[VendorApi]) -> tuple[AssetJob, ...]:
    return (*(sync_job(api) for api in apis), full_refresh_job(apis))


def listed(names: Sequence[str]) -> str:
    """`tickets`; `incidents` and `services`; `a`, `b` and `c`."""
    quoted = [f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


FULL_REFRESH_RUN_CONFIG = full_refresh_run_config(APIS)
"""What `full_refresh` runs with: `svcdesk demo` runs it too."""
