"""The catalog documents the data: every column of every table has a description, and the
`dagster/column_schema` of each asset names exactly the columns a sync stores."""

from __future__ import annotations

import duckdb
import pytest
from dagster import AssetKey

from svcdesk_dagster.catalog import undescribed_columns
from svcdesk_dagster.definitions import defs
from svcdesk_dagster.sources import APIS, declared_tables
from svcdesk_dagster_tests.conftest import Project
from svcdesk_dagster_tests.dagster_runs import run_job

ASSETS = {"tickets": "service_desk", "incidents": "incident_management", "services": "incident_management"}


@pytest.mark.parametrize(
    "table", [t for api in APIS for r in api.resources for t in declared_tables(r)], ids=lambda t: t.name
)
def test_no_declared_column_is_left_without_a_description(table) -> None:  # type: ignore[no-untyped-def]
    assert undescribed_columns(table) == []


def column_schema(asset: str):  # type: ignore[no-untyped-def]
    return defs.resolve_asset_graph().get(AssetKey(asset)).metadata["dagster/column_schema"]


@pytest.mark.parametrize("asset", sorted(ASSETS))
def test_every_column_in_the_catalog_has_a_description(asset: str) -> None:
    columns = column_schema(asset).columns
    assert columns
    assert [column.name for column in columns if not (column.description or "").strip()] == []


def test_the_catalog_names_exactly_the_columns_a_sync_stores(project: Project) -> None:
    run_job("full_refresh")
    with duckdb.connect(str(project.duckdb_file), read_only=True) as con:
        stored = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_name NOT LIKE '\\_dlt\\_%' ESCAPE '\\'"
        ).fetchall()
    for asset, dataset in ASSETS.items():
        names = {
            column if table == asset else f"{table}.{column}"
            for schema, table, column in stored
            if schema == dataset and (table == asset or table.startswith(f"{asset}__"))
        }
        assert names == {column.name for column in column_schema(asset).columns}, asset
