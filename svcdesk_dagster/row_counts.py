"""Reading back what landed in DuckDB: row counts per table, for the demo and the benchmark."""

from __future__ import annotations

from pathlib import Path

import duckdb

from svcdesk_dagster.sources import APIS


def table_counts(database: Path) -> dict[str, int]:
    """Rows per data table (child tables included, dlt's own `_dlt_*` tables left out)."""
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN (SELECT unnest(?)) AND table_name NOT LIKE '\\_dlt\\_%' ESCAPE '\\' "
            "ORDER BY 1, 2",
            [[api.name for api in APIS]],
        ).fetchall()
        return {
            f"{schema}.{table}": con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
            for schema, table in tables
        }
