"""What both asset checks read: one API's tables in the destination, over one open dlt client.

`reading_destination` opens the API's dataset once per check step and reads the column schemas
of every table the resource dicts declare, plus every table dlt made under a resource (from the
schema dlt stored with the data). The checks (`schema_contract.py`, `merge_key_unique.py`) then
query it through the helpers below. Why dlt's clients only, and why a table dlt has not created
yet passes (`not_created`): the package docstring, in `__init__.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetCheckResult, AssetKey, Failure
from dlt.common.schema import Schema
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.schema.utils import get_nested_tables
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.job_client_impl import SqlJobClientBase
from dlt.destinations.sql_client import SqlClientBase
from dlt.pipeline.pipeline import Pipeline

from svcdesk_dagster.naming import table_name
from svcdesk_dagster.resources import explain_destination_error
from svcdesk_dagster.settings import destination_name
from svcdesk_dagster.sources import VendorApi, declared_tables

SAMPLE_SIZE = 5
"""How many offending keys a result shows: enough to start looking, few enough to read."""

NOT_CREATED = "table not created yet"


@dataclass(frozen=True)
class LoadedTables:
    """What one check step read from the destination, and the open client to query it further."""

    client: SqlJobClientBase
    tables: dict[str, TTableSchemaColumns]
    """Columns of every existing table of the API, keyed by table name (as dlt names tables)."""
    nested: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Every table dlt created under each resource, root first, from the schema dlt stored."""

    @property
    def sql(self) -> SqlClientBase[Any]:
        return self.client.sql_client

    def as_stored(self, identifier: str) -> str:
        """An identifier as INFORMATION_SCHEMA spells it on this destination (e.g. upper case)."""
        return self.client.capabilities.casefold_identifier(identifier)


@contextmanager
def reading_destination(api: VendorApi, pipeline: Pipeline) -> Iterator[LoadedTables]:
    """Opens the API's dataset and reads the column schemas of all its tables, declared or found
    in the schema dlt stored. A destination that cannot be opened fails the step instead."""
    with ExitStack() as stack:
        client = entered_sql_client(stack, api, pipeline)
        nested = stored_nested_tables(client, api)
        names = {t.name for r in api.resources for t in declared_tables(r)}
        names.update(name for tables in nested.values() for name in tables)
        columns = dict(client.get_storage_tables(sorted(names)))
        yield LoadedTables(
            client=client,
            tables={name: found for name, found in columns.items() if found},
            nested=nested,
        )


def stored_nested_tables(client: SqlJobClientBase, api: VendorApi) -> dict[str, tuple[str, ...]]:
    """The tables dlt created under each resource, as the schema it stored with the data says.

    This is how a table nobody declared is found: a vendor's new list field becomes a new child
    table. Nothing stored yet (a destination never loaded) means no tables.
    """
    try:
        stored = client.get_stored_schema(api.name)
    except DatabaseUndefinedRelation:
        return {}
    if stored is None:
        return {}
    schema = Schema.from_stored_schema(json.loads(stored.schema))
    return {
        name: tuple(str(t["name"]) for t in get_nested_tables(schema.tables, name))
        for name in api.resource_names
        if name in schema.tables
    }


def not_created(api: VendorApi, resource_name: str, check_name: str) -> AssetCheckResult:
    """Nothing to check yet: dlt creates a table only when its first row arrives."""
    return AssetCheckResult(
        asset_key=AssetKey(resource_name),
        check_name=check_name,
        passed=True,
        description=f"`{table_name(api, resource_name)}` is not created yet: no record arrived.",
        metadata={"table": table_name(api, resource_name), "status": NOT_CREATED},
    )


def first_rows(sql: SqlClientBase[Any], query: str) -> list[tuple[Any, ...]]:
    """The first `SAMPLE_SIZE` rows of a query, without `LIMIT` (not every SQL dialect has it)."""
    with sql.execute_query(query) as cursor:
        return [tuple(row) for row in cursor.fetchmany(SAMPLE_SIZE)]


def json_safe(value: Any) -> Any:
    """A value read from the destination (a key, an id) as the check's JSON metadata can hold it:
    None, ints and strings as they are, anything else (Decimal, UUID...) as its text."""
    return value if value is None or isinstance(value, (int, str)) else str(value)


# -- helpers ------------------------------------------------------------------------------------


def entered_sql_client(stack: ExitStack, api: VendorApi, pipeline: Pipeline) -> SqlJobClientBase:
    """The destination's SQL job client, open until `stack` closes.

    A destination that cannot be reached fails the step with a message naming it, instead of a
    bare driver error: no check result is better than a result about a table nobody could read.
    """
    try:
        client = stack.enter_context(pipeline.destination_client())
    except Exception as error:
        held = explain_destination_error(error)
        raise Failure(
            description=held
            or (
                f"The asset checks could not open the destination `{destination_name()}` "
                f"(dataset `{api.name}`): {error}"
            ),
            allow_retries=held is not None,
        ) from error
    if not isinstance(client, SqlJobClientBase):
        raise Failure(
            description=(
                f"The asset checks need a SQL destination; `{destination_name()}` is not."
            ),
            allow_retries=False,
        )
    return client
