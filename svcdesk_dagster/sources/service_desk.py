"""The service desk API (seed: "service desk API", resource `/v1/tickets`).

Columns follow the vendor's field table for tickets, in dlt's snake_case with nested objects flattened
(`custom_fields__channel`); `tags` becomes the child table `tickets__tags`.
"""

from __future__ import annotations

from svcdesk_dagster.sources.api import PAGINATOR, VendorApi, column, columns

TICKET_COLUMNS = columns(
    id=column("bigint", False, "The ticket's id: the primary key, never reused."),
    subject=column("text", False, "The ticket's subject line."),
    description=column("text", True, "The ticket's body; can be kilobytes of any Unicode."),
    status=column("text", False, "new, open, pending, on_hold, solved or closed."),
    priority=column("text", True, "low, normal, high or urgent; empty when unset."),
    customer_id=column("bigint", False, "The id of the customer who raised the ticket."),
    assignee_id=column("bigint", True, "The id of the agent the ticket is assigned to, if any."),
    custom_fields__channel=column("text", False, "Custom field `channel`: how it came in."),
    custom_fields__product=column("text", True, "Custom field `product`, if set."),
    custom_fields__sla_minutes=column(
        "bigint", True, "Custom field `sla_minutes`: the SLA in minutes, if set."
    ),
    created_at=column("timestamp", False, "When the ticket was created (UTC, vendor's clock)."),
    updated_at=column(
        "timestamp", False, "When the ticket last changed (UTC, vendor's clock): what windows read."
    ),
    # A soft-deleted ticket arrives with `deleted_at` set; dlt's merge then removes it (and its
    # tags) instead of storing it, so the table shows only what the vendor shows.
    deleted_at=column(
        "timestamp", True,
        "When the vendor soft-deleted the ticket. Always empty here: a sync removes a deleted "
        "ticket and its tags.",
        hard_delete=True,
    ),
)

TAG_COLUMNS = columns(value=column("text", False, "One tag of the ticket, in the vendor's order."))

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
