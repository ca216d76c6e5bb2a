"""The incident management API (seed: "incident management API", `/v1/incidents`, `/v1/services`).

Columns follow the vendor's field tables for incidents and services; `assignees` becomes the child table
`incidents__assignees`.
"""

from __future__ import annotations

from svcdesk_dagster.sources.api import PAGINATOR, VendorApi, column, columns

INCIDENT_COLUMNS = columns(
    id=column("text", False),
    title=column("text", False),
    status=column("text", False),
    urgency=column("text", False),
    service_id=column("text", False),
    created_at=column("timestamp", False),
    updated_at=column("timestamp", False),
    acknowledged_at=column("timestamp", True),
    resolved_at=column("timestamp", True),
)

ASSIGNEE_COLUMNS = columns(
    id=column("text", False),
    name=column("text", False),
)

SERVICE_COLUMNS = columns(
    id=column("text", False),
    name=column("text", False),
    description=column("text", True),
    status=column("text", False),
    escalation_policy_id=column("text", True),
    created_at=column("timestamp", False),
    updated_at=column("timestamp", False),
)

INCIDENT_MANAGEMENT = VendorApi(
    name="incident_management",
    title="incident management",
    resources=(
        {
            "name": "incidents",
            "endpoint": {
                "path": "/v1/incidents",
                "data_selector": "data",
                "paginator": PAGINATOR,
            },
            "columns": INCIDENT_COLUMNS,
            "nested_hints": {"assignees": {"columns": ASSIGNEE_COLUMNS}},
        },
        {
            "name": "services",
            "endpoint": {
                "path": "/v1/services",
                "data_selector": "data",
                "paginator": PAGINATOR,
            },
            "columns": SERVICE_COLUMNS,
            # The API always lists every live service (it ignores `updated_since`), so each sync
            # replaces the table: a service removed upstream leaves it, atomically (the load goes
            # through a staging dataset).
            "write_disposition": "replace",
        },
    ),
    incremental_filters={"incidents": "updated_since"},
    descriptions={
        "incidents": (
            "On-call incidents, one row per incident, merged on `id` (incidents are resolved, "
            "never deleted). Assignees are in the child table `incidents__assignees`."
        ),
        "services": "The services incidents are raised against, one row per live service.",
    },
)
