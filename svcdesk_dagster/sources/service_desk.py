"""The service desk API (seed: "service desk API", resource `/v1/tickets`).

Columns follow the vendor's field table for tickets, in dlt's snake_case with nested objects flattened
(`custom_fields__channel`); `tags` becomes the child table `tickets__tags`.
"""

from __future__ import annotations

from svcdesk_dagster.sources.api import PAGINATOR, VendorApi, column, columns

TICKET_COLUMNS = columns(
    id=column("bigint", False),
    subject=column("text", False),
    description=column("text", True),
    status=column("text", False),
    priority=column("text", True),
    customer_id=column("bigint", False),
    assignee_id=column("bigint", True),
    custom_fields__channel=column("text", False),
    custom_fields__product=column("text", True),
    custom_fields__sla_minutes=column("bigint", True),
    created_at=column("timestamp", False),
    updated_at=column("timestamp", False),
    # A soft-deleted ticket arrives with `deleted_at` set; dlt's merge then removes it (and its
    # tags) instead of storing it, so the table shows only what the vendor shows.
    deleted_at=column("timestamp", True, hard_delete=True),
)

TAG_COLUMNS = columns(value=column("text", False))

SERVICE_DESK = VendorApi(
    name="service_desk",
    title="service desk",
    resources=(
        {
            "name": "tickets",
            "endpoint": {
                "path": "/v1/tickets",
                "data_selector": "data",
                "paginator": PAGINATOR,
            },
            "columns": TICKET_COLUMNS,
            "nested_hints": {"tags": {"columns": TAG_COLUMNS}},
        },
    ),
    incremental_filters={"tickets": "updated_since"},
    descriptions={
        "tickets": (
            "Service-desk tickets, one row per live ticket, merged on `id`; soft-deleted tickets "
            "are removed. Tags are in the child table `tickets__tags`; `custom_fields` is "
            "flattened into `custom_fields__*` columns."
        ),
    },
)
