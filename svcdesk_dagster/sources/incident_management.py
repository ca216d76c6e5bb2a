"""The incident management API (seed: "incident management API", `/v1/incidents`, `/v1/services`).

Columns follow the vendor's field tables for incidents and services; `assignees` becomes the child table
`incidents__assignees`.
"""

from __future__ import annotations

from svcdesk_dagster.sources.api import PAGINATOR, VendorApi, column, columns

INCIDENT_COLUMNS = columns(
    id=column("text", False, "The incident's id, such as INC0000042: the primary key."),
    title=column("text", False, "The incident's title."),
    status=column("text", False, "triggered, acknowledged or resolved."),
    urgency=column("text", False, "high or low."),
    service_id=column("text", False, "The `id` of the service it was raised against."),
    created_at=column("timestamp", False, "When the incident was raised (UTC, vendor's clock)."),
    updated_at=column(
        "timestamp", False, "When the incident last changed (UTC, vendor's clock): what windows read."
    ),
    acknowledged_at=column("timestamp", True, "When someone acknowledged it, if anyone has."),
    resolved_at=column("timestamp", True, "When it was resolved, if it is."),
)

ASSIGNEE_COLUMNS = columns(
    id=column("text", False, "The assignee's user id."),
    name=column("text", False, "The assignee's name."),
)

SERVICE_COLUMNS = columns(
    id=column("text", False, "The service's id, such as SVC0007: the primary key."),
    name=column("text", False, "The service's name."),
    description=column("text", True, "What the service is, if the vendor says."),
    status=column("text", False, "active, disabled or maintenance."),
    escalation_policy_id=column("text", True, "The id of its escalation policy, if any."),
    created_at=column("timestamp", False, "When the service was created (UTC, vendor's clock)."),
    updated_at=column("timestamp", False, "When the service last changed (UTC, vendor's clock)."),
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
