"""The simulator's records shaped as the tables must hold them, and the tables read back.

This is the test suite's statement of what the README promises of the tables: column names are the API's
field names, nested objects flattened with `__`, lists in child tables, one row per live record.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from svcdesk_simulator import Simulator

CHILD_LISTS = {"tickets": "tags", "incidents": "assignees"}


def parse_timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A record as its table row: nested objects flattened with `__`, lists left out."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            row.update(flatten(value, f"{name}__"))
        elif isinstance(value, list):
            continue
        elif name.endswith("_at"):
            row[name] = parse_timestamp(value)
        else:
            row[name] = value
    return row


def expected_rows(records: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {record["id"]: flatten(record) for record in records}


def expected_children(records: list[dict[str, Any]], child: str) -> dict[Any, list[Any]]:
    """Each parent id's list, in order; empty lists are absent, as they have no child rows."""
    return {record["id"]: record[child] for record in records if record[child]}


class Database(Protocol):
    """A destination other than a DuckDB file that answers SQL (the PostgreSQL tests' database)."""

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]: ...


def query(database: Path | Database, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of `sql`: a path is a DuckDB file, read-only; anything else answers
    itself. The one seam between the comparisons below and the destination's client."""
    if not isinstance(database, (str, Path)):
        return database.query(sql)
    with duckdb.connect(str(database), read_only=True) as con:
        cursor = con.execute(sql)
        return [description[0] for description in cursor.description], cursor.fetchall()


def table_rows(database: Path | Database, table: str) -> dict[Any, dict[str, Any]]:
    """`dataset.table` keyed by id, without dlt's bookkeeping columns."""
    names, values = query(database, f"SELECT * FROM {table} ORDER BY id")
    rows = [dict(zip(names, row)) for row in values]
    return {
        row["id"]: {name: value for name, value in row.items() if not name.startswith("_dlt_")}
        for row in rows
    }


def child_lists(database: Path | Database, parent: str, child: str) -> dict[Any, list[Any]]:
    """The child table `parent__child` folded back into each parent id's ordered list."""
    names, rows = query(
        database,
        f"SELECT p.id AS _parent_key, c.* FROM {parent} p "
        f"JOIN {parent}__{child} c ON c._dlt_parent_id = p._dlt_id "
        "ORDER BY p.id, c._dlt_list_idx",
    )
    lists: dict[Any, list[Any]] = {}
    for values in rows:
        row = dict(zip(names, values))
        fields = {k: v for k, v in row.items() if not k.startswith(("_dlt_", "_parent_key"))}
        item = fields["value"] if set(fields) == {"value"} else fields
        lists.setdefault(row["_parent_key"], []).append(item)
    return lists


def count(database: Path | Database, table: str) -> int:
    return query(database, f"SELECT count(*) FROM {table}")[1][0][0]


TABLES = {
    "tickets": "service_desk.tickets",
    "incidents": "incident_management.incidents",
    "services": "incident_management.services",
}


def live_records(simulator: Simulator, asset: str) -> list[dict[str, Any]]:
    return {
        "tickets": simulator.live_tickets,
        "incidents": simulator.live_incidents,
        "services": simulator.live_services,
    }[asset]()


def assert_tables_equal_simulator(simulator: Simulator, database: Path | Database) -> None:
    """Every table, child tables included, equals the simulator's live records field by field."""
    for asset, table in TABLES.items():
        assert table_rows(database, table) == expected_rows(live_records(simulator, asset)), table
    tickets, incidents = simulator.live_tickets(), simulator.live_incidents()
    assert child_lists(database, "service_desk.tickets", "tags") == expected_children(tickets, "tags")
    assert child_lists(database, "incident_management.incidents", "assignees") == expected_children(
        incidents, "assignees"
    )
    for parent, child in (("service_desk.tickets", "tags"), ("incident_management.incidents", "assignees")):
        assert orphans(database, parent, child) == 0, f"{parent}__{child} has rows without a parent"


def orphans(database: Path | Database, parent: str, child: str) -> int:
    """Child rows whose parent row is gone: what a delete that missed the child table leaves."""
    return query(
        database,
        f"SELECT count(*) FROM {parent}__{child} c "
        f"WHERE NOT EXISTS (SELECT 1 FROM {parent} p WHERE p._dlt_id = c._dlt_parent_id)",
    )[1][0][0]
