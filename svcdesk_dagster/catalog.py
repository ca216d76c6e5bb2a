"""What the Dagster catalog shows of each table: every column with its meaning.

The meaning of each field is written once, next to its declared column (`sources/service_desk.py`,
`sources/incident_management.py`). This module turns those declarations into the asset's
`dagster/column_schema`: the table's columns, then each child table's as `<child table>.<column>`,
and the columns dlt adds, described in one sentence each.
"""

from __future__ import annotations

from datetime import timedelta

from dagster import TableColumn, TableColumnConstraints, TableSchema

from svcdesk_dagster.sources import DeclaredTable, VendorApi, declared_tables

DLT_ROW_COLUMNS = {
    "_dlt_load_id": "Added by dlt: the load that last wrote this row (see `_dlt_loads`).",
    "_dlt_id": "Added by dlt: this row's own key, which child rows point to.",
}
DLT_CHILD_COLUMNS = {
    "_dlt_parent_id": "Added by dlt: the `_dlt_id` of the parent row this list item belongs to.",
    "_dlt_list_idx": "Added by dlt: the item's place in the parent's list, from 0.",
    "_dlt_root_id": "Added by dlt: the `_dlt_id` of the top-level row (the same as the parent here).",
    "_dlt_id": "Added by dlt: this row's own key.",
}
DLT_TYPES = {"text": "string", "bigint": "int", "double": "float", "bool": "bool",
             "timestamp": "timestamp", "json": "json"}


def column_schema(api: VendorApi, resource_name: str) -> TableSchema:
    """The asset's columns: its table's, its child tables', and dlt's."""
    columns: list[TableColumn] = []
    for table in declared_tables(api.resource(resource_name)):
        prefix = "" if table.parent is None else f"{table.name}."
        columns += [_declared(prefix + name, spec) for name, spec in table.columns.items()]
        added = DLT_ROW_COLUMNS if table.parent is None else DLT_CHILD_COLUMNS
        columns += [
            TableColumn(prefix + name, "string", description=text,
                        constraints=TableColumnConstraints(nullable=False))
            for name, text in added.items()
        ]
    return TableSchema(columns=columns)


def asset_description(api: VendorApi, resource_name: str, fresh_within: timedelta) -> str:
    """Where the asset's data comes from, how it is synced, and what fresh means for it."""
    path = api.endpoint_path(resource_name)
    if resource_name in api.incremental_filters:
        how = (
            f"Each sync reads the records changed since the previous sync started (`"
            f"{api.incremental_filters[resource_name]}`) and merges them on `id`; a full "
            "refresh replaces the table from a read of every record."
        )
    else:
        how = "Each sync reads the complete listing and replaces the table in one transaction."
    minutes = fresh_within.total_seconds() / 60
    return (
        f"{api.descriptions.get(resource_name, '')} From `GET {path}` of the {api.title} API. "
        f"{how} Fresh when the last successful sync is at most {minutes:g} minutes old "
        f"(`SVCDESK_FRESHNESS_{resource_name.upper()}_MINUTES`). Columns named `_dlt_*` are "
        "dlt's own: the load that wrote a row, row keys, and a list item's parent and place."
    ).strip()


def undescribed_columns(table: DeclaredTable) -> list[str]:
    """Declared columns of `table` with no description (the catalog would show them bare)."""
    return [name for name, spec in table.columns.items() if not str(spec.get("description", "")).strip()]


def _declared(name: str, spec: dict) -> TableColumn:  # type: ignore[type-arg]
    return TableColumn(
        name,
        DLT_TYPES.get(str(spec.get("data_type")), str(spec.get("data_type"))),
        description=str(spec.get("description") or ""),
        constraints=TableColumnConstraints(nullable=bool(spec.get("nullable", True))),
    )
