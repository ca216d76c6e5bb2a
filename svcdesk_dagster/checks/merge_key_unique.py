"""`merge_key_unique`: can dlt's merge still find each record by its key, and each child its parent?

The story of one check, per resource:

1. The resource's root table does not exist yet: passed, "not created yet" (`reader.not_created`).
2. The root table's primary key is counted: rows, null keys, keys present more than once, and a
   few of the offending keys with their row counts (`key_counts`).
3. Every declared child table that exists is counted: rows whose `_dlt_parent_id` finds no parent
   row, and rows with no `_dlt_root_id` (`link_counts`).
4. Any null or repeated key, or any child row with a broken link: failed (ERROR, which blocks
   downstream assets and fails the run, see `wiring.check_specs`); otherwise passed.
"""

from __future__ import annotations

from typing import Any

from dagster import AssetCheckResult, AssetKey, MetadataValue
from dlt.destinations.sql_client import SqlClientBase

from svcdesk_dagster.checks.reader import (
    LoadedTables,
    first_rows,
    json_safe,
    not_created,
)
from svcdesk_dagster.naming import table_name
from svcdesk_dagster.sources import VendorApi, declared_tables

MERGE_KEY_UNIQUE = "merge_key_unique"


def merge_key_unique(
    api: VendorApi, resource_name: str, destination: LoadedTables
) -> AssetCheckResult:
    """`merge_key_unique`: the primary key never null nor repeated, every child row linked."""
    root, *children = declared_tables(api.resource(resource_name))
    if root.name not in destination.tables:
        return not_created(api, resource_name, MERGE_KEY_UNIQUE)
    keys = key_counts(destination.sql, root.name, str(root.primary_key))
    links = {
        child.name: link_counts(destination.sql, child.name, str(child.parent))
        for child in children
        if child.name in destination.tables
    }
    broken_links = sum(link["orphan_count"] + link["null_root_id_count"] for link in links.values())
    return AssetCheckResult(
        asset_key=AssetKey(resource_name),
        check_name=MERGE_KEY_UNIQUE,
        passed=not (keys["null_key_count"] or keys["duplicate_key_count"] or broken_links),
        description=(
            f"{keys['row_count']} rows, {keys['null_key_count']} null keys, "
            f"{keys['duplicate_key_count']} repeated keys, {broken_links} child rows with a "
            "broken link to their parent."
        ),
        metadata={
            "table": table_name(api, resource_name),
            "primary_key": str(root.primary_key),
            "row_count": keys["row_count"],
            "null_key_count": keys["null_key_count"],
            "duplicate_key_count": keys["duplicate_key_count"],
            "offending_keys": MetadataValue.json(keys["offending_keys"]),
            "child_tables": MetadataValue.json(links),
        },
    )


def key_counts(sql: SqlClientBase[Any], table: str, key: str) -> dict[str, Any]:
    """Rows, null keys, keys present more than once, and a few of those keys with their rows."""
    qualified, column = sql.make_qualified_table_name(table), sql.escape_column_name(key)
    repeated = (
        f"SELECT {column}, count(*) FROM {qualified} WHERE {column} IS NOT NULL "
        f"GROUP BY {column} HAVING count(*) > 1"
    )
    ((rows, nulls),) = sql.execute_sql(
        f"SELECT count(*), count(*) - count({column}) FROM {qualified}"
    )
    ((duplicates,),) = sql.execute_sql(f"SELECT count(*) FROM ({repeated}) repeated_keys")
    sample = first_rows(sql, f"{repeated} ORDER BY count(*) DESC, {column}") if duplicates else []
    return {
        "row_count": int(rows),
        "null_key_count": int(nulls),
        "duplicate_key_count": int(duplicates),
        "offending_keys": ([{key: None, "rows": int(nulls)}] if nulls else [])
        + [{key: json_safe(value), "rows": int(n)} for value, n in sample],
    }


def link_counts(sql: SqlClientBase[Any], child: str, parent: str) -> dict[str, Any]:
    """Child rows whose `_dlt_parent_id` finds no parent `_dlt_id`, and rows with no root id."""
    child_table = sql.make_qualified_table_name(child)
    parent_table = sql.make_qualified_table_name(parent)
    parent_id, row_id, root_id = (
        sql.escape_column_name(name) for name in ("_dlt_parent_id", "_dlt_id", "_dlt_root_id")
    )
    orphans = (
        f"FROM {child_table} c WHERE NOT EXISTS "
        f"(SELECT 1 FROM {parent_table} p WHERE p.{row_id} = c.{parent_id})"
    )
    ((rows, null_roots),) = sql.execute_sql(
        f"SELECT count(*), count(*) - count({root_id}) FROM {child_table}"
    )
    ((orphan_count,),) = sql.execute_sql(f"SELECT count(*) {orphans}")
    sample = first_rows(sql, f"SELECT DISTINCT c.{parent_id} {orphans}") if orphan_count else []
    return {
        "row_count": int(rows),
        "orphan_count": int(orphan_count),
        "null_root_id_count": int(null_roots),
        "offending_parent_ids": [json_safe(value) for (value,) in sample],
    }
