"""The jobs the README names: one sync per API, and a full refresh of everything."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from svcdesk_dagster.naming import op_name
from svcdesk_dagster.sources import APIS

service_desk_sync = define_asset_job(
    "service_desk_sync",
    selection=AssetSelection.assets("tickets"),
    description="Sync of `tickets` from the service desk API.",
)

incident_management_sync = define_asset_job(
    "incident_management_sync",
    selection=AssetSelection.assets("incidents", "services"),
    description="Sync of `incidents` and `services` from the incident management API.",
)

FULL_REFRESH_RUN_CONFIG = {
    "ops": {op_name(api): {"config": {"full_refresh": True}} for api in APIS}
}

full_refresh = define_asset_job(
    "full_refresh",
    selection=AssetSelection.assets("tickets", "incidents", "services"),
    description=(
        "Rebuilds all three tables from a complete read of both APIs and restarts the "
        "incremental windows from that read."
    ),
    config=FULL_REFRESH_RUN_CONFIG,
)

JOBS = (service_desk_sync, incident_management_sync, full_refresh)
