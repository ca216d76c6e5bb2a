"""The asset checks the README names: `schema_contract` and `merge_key_unique` on every asset.

One `@multi_asset_check` per API, because the checks of one API read the same dlt dataset through
the same pipeline (`build_pipeline`), in one step and over one connection. The checks only read the
destination: they need no API key and work on a machine that has never run a sync.

Both compare the destination with what the `VendorApi` resource dicts declare (`declared_tables`,
the one reading of those dicts), and both go through dlt's job and SQL clients only: column
schemas from INFORMATION_SCHEMA via `get_storage_tables`, plain SQL with dlt's own quoting and no
`LIMIT`. Nothing in them is DuckDB's; the tests also run them on SQLite through dlt's `sqlalchemy`.

A table dlt has not created yet (it creates a table when the first row for it arrives) is not a
failure: an API with no records, or tickets none of which has a tag, is a legitimate state. The
check passes and its metadata says the table is not created yet.

(No `from __future__ import annotations` here: Dagster inspects the `context` annotation of a
check function at definition time and rejects it as a string.)
"""

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MetadataValue,
    multi_asset_check,
)
from dlt.common.schema import Schema
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.schema.utils import get_nested_tables
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.job_client_impl import SqlJobClientBase
from dlt.destinations.sql_client import SqlClientBase
from dlt.pipeline.pipeline import Pipeline
from dlt.sources.rest_api.typing import EndpointResource

from svcdesk_dagster.naming import checks_op_name, sync_pool, table_name
from svcdesk_dagster.resources import (
    build_pipeline,
    explain_destination_error,
    wait_for_destination,
)
from svcdesk_dagster.sources import APIS, VendorApi
from svcdesk_dagster.sources.contract import VARIANT_MARKER, Columns, DeclaredTable, declared_tables
from svcdesk_dagster.sources.settings import destination_name

SCHEMA_CONTRACT = "schema_contract"
MERGE_KEY_UNIQUE = "merge_key_unique"

SAMPLE_SIZE = 5
"""How many offending keys a result shows: enough to start looking, few enough to read."""

DLT_COLUMN_PREFIX = "_dlt_"

NOT_CREATED = "table not created yet"


# -- what the resource dicts declare ------------------------------------------------------------


def api_resource(api: VendorApi, resource_name: str) -> EndpointResource:
    return next(r for r in api.resources if r["name"] == resource_name)


# -- what the destination holds -----------------------------------------------------------------


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

    def fold(self, identifier: str) -> str:
        """An identifier as INFORMATION_SCHEMA spells it on this destination (e.g. upper case)."""
        return self.client.capabilities.casefold_identifier(identifier)


@contextmanager
def reading_destination(api: VendorApi, pipeline: Pipeline) -> Iterator[LoadedTables]:
    """Opens the API's dataset and reads the column schemas of all its tables.

    A destination that cannot be reached fails the step with a message naming it, instead of a
    bare driver error: no check result is better than a result about a table nobody could read.
    """
    with ExitStack() as stack:
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


# -- schema_contract ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way a table differs from its declaration, as it appears in the check's metadata."""

    table: str
    column: str
    problem: str
    expected: str
    found: str
    severity: str
    record_ids: list[Any] = field(default_factory=list)
    """For a type change: a few ids of the records whose value arrived with the new type."""


def column_differences(
    table: str, declared: Columns, found: TTableSchemaColumns, fold: Callable[[str], str]
) -> list[Difference]:
    """Every difference between a table's declared and actual columns, dlt's own columns aside.

    Types are compared as dlt data types (dlt maps each destination's types back to them), so
    precision and time zone, which no declaration here sets, are not compared.
    """
    by_folded = {fold(name): (name, spec) for name, spec in declared.items()}
    differences = [
        unexpected_column(table, name, spec, by_folded)
        for name, spec in found.items()
        if name not in by_folded and not name.lower().startswith(DLT_COLUMN_PREFIX)
    ]
    for folded, (name, spec) in by_folded.items():
        differences += declared_column_differences(table, name, spec, found.get(folded))
    return differences


def declared_column_differences(
    table: str, name: str, spec: Mapping[str, Any], actual: Mapping[str, Any] | None
) -> list[Difference]:
    """A declared column that is absent, of another dlt type, or of other nullability: ERROR."""
    if actual is None:
        problem = "declared column missing"
        return [Difference(table, name, problem, describe(spec), "absent", "ERROR")]
    differences = []
    if spec.get("data_type") and actual.get("data_type") != spec["data_type"]:
        expected, found = str(spec["data_type"]), str(actual.get("data_type"))
        differences.append(Difference(table, name, "wrong type", expected, found, "ERROR"))
    if nullability(actual) != nullability(spec):
        expected, found = nullability(spec), nullability(actual)
        differences.append(Difference(table, name, "nullability differs", expected, found, "ERROR"))
    return differences


def unexpected_column(
    table: str,
    name: str,
    actual: Mapping[str, Any],
    by_folded: Mapping[str, tuple[str, Mapping[str, Any]]],
) -> Difference:
    """A column nobody declared: a new field (WARN), or the trace of a field whose type changed
    (ERROR): a variant column `<field>__v_<type>`, or `<field>__<key>` when a declared scalar
    now arrives as an object (dlt flattens it next to the declared column, which stays null)."""
    is_variant = VARIANT_MARKER in name.lower()
    bases = [declared for declared in by_folded if name.startswith(f"{declared}__")]
    if bases:
        declared_name, spec = by_folded[max(bases, key=len)]
        shape = "a variant column" if is_variant else "an object, which dlt flattens"
        return Difference(
            table,
            name,
            f"type changed: `{declared_name}` now arrives as {shape}",
            str(spec.get("data_type")),
            str(actual.get("data_type")),
            "ERROR",
        )
    if is_variant:
        problem = "type changed: variant column"
        return Difference(table, name, problem, "no variant", describe(actual), "ERROR")
    return Difference(table, name, "new column", "absent", describe(actual), "WARN")


def unexpected_table(root: DeclaredTable, name: str) -> Difference:
    """A child table nobody declared: a new list field (WARN), or a declared scalar field that
    now arrives as a list (ERROR), which dlt turns into the child table `<table>__<field>`."""
    field = name[len(root.name) + 2 :]
    if field in root.columns:
        problem = f"type changed: `{field}` now arrives as a list, which dlt makes a child table"
        declared = str(root.columns[field].get("data_type"))
        return Difference(name, "*", problem, declared, "json", "ERROR")
    return Difference(name, "*", "new table", "absent", "present", "WARN")


def with_record_ids(
    difference: Difference, root: DeclaredTable, destination: LoadedTables
) -> Difference:
    """A type change with the ids of a few records that hold a value of the new type. A variant or
    flattened column in which no row holds a value any more (a full refresh replaced them after
    the vendor was fixed) is what is left of a past change: a WARN, no longer an ERROR."""
    if difference.severity != "ERROR" or not difference.problem.startswith("type changed"):
        return difference
    holders, ids = records_holding(destination.sql, difference, root)
    if holders:
        return replace(difference, record_ids=ids)
    return replace(
        difference,
        problem=(
            f"{difference.problem}; no row holds such a value any more (left from a past change)"
        ),
        severity="WARN",
    )


def records_holding(
    sql: SqlClientBase[Any], difference: Difference, root: DeclaredTable
) -> tuple[int, list[Any]]:
    """How many rows of `difference.table` hold a value in its column (any row, for a whole
    table), and the ids of the first `SAMPLE_SIZE` records they belong to."""
    key = sql.escape_column_name(str(root.primary_key))
    table = sql.make_qualified_table_name(difference.table)
    column = sql.escape_column_name(difference.column)
    where = "" if difference.column == "*" else f" WHERE c.{column} IS NOT NULL"
    if difference.table == root.name:
        ids = f"SELECT c.{key} FROM {table} c{where}"
    else:
        root_id, row_id = (sql.escape_column_name(n) for n in ("_dlt_root_id", "_dlt_id"))
        parents = sql.make_qualified_table_name(root.name)
        ids = (
            f"SELECT DISTINCT p.{key} FROM {table} c "
            f"JOIN {parents} p ON c.{root_id} = p.{row_id}{where}"
        )
    ((holders,),) = sql.execute_sql(f"SELECT count(*) FROM {table} c{where}")
    sample = first_rows(sql, f"{ids} ORDER BY 1") if holders else []
    return int(holders), [plain(value) for (value,) in sample]


def describe(spec: Mapping[str, Any]) -> str:
    return f"{spec.get('data_type')}, {nullability(spec)}"


def nullability(spec: Mapping[str, Any]) -> str:
    return "nullable" if spec.get("nullable", True) else "not null"


def schema_contract(
    api: VendorApi, resource_name: str, destination: LoadedTables
) -> AssetCheckResult:
    """`schema_contract`: the resource's tables against their declarations, plus tables nobody
    declared. Only new columns or tables: failed with WARN; anything else: failed with ERROR."""
    declared = declared_tables(api_resource(api, resource_name))
    root = declared[0]
    declared_names = {t.name for t in declared}
    differences: list[Difference] = []
    for table in declared:
        found = destination.tables.get(table.name)
        if found is not None:
            differences += column_differences(table.name, table.columns, found, destination.fold)
    for name in destination.nested.get(resource_name, ()):
        if name not in declared_names and name in destination.tables:
            differences.append(unexpected_table(root, name))
    missing = sorted(declared_names - set(destination.tables))
    if resource_name in missing:
        return not_created(api, resource_name, SCHEMA_CONTRACT)
    differences = [with_record_ids(d, root, destination) for d in differences]
    errors = [d for d in differences if d.severity == "ERROR"]
    return AssetCheckResult(
        asset_key=AssetKey(resource_name),
        check_name=SCHEMA_CONTRACT,
        passed=not differences,
        # New columns only: failed with WARN, not passed. A passed check shows green whatever its
        # severity, so the vendor's new field would go unseen; a failed WARN shows yellow, and
        # never blocks downstream nor fails the run.
        severity=(
            AssetCheckSeverity.WARN if differences and not errors else AssetCheckSeverity.ERROR
        ),
        description=summary(differences),
        metadata={
            "table": table_name(api, resource_name),
            "differences": MetadataValue.json([asdict(d) for d in differences]),
            "error_count": len(errors),
            "warning_count": len(differences) - len(errors),
            "tables_not_created_yet": MetadataValue.json(missing),
        },
    )


def summary(differences: list[Difference]) -> str:
    if not differences:
        return "The tables match the declared schema."
    return "; ".join(
        f"{d.severity} {d.table}.{d.column}: {d.problem} (expected {d.expected}, found {d.found}"
        + (f"; records {', '.join(map(str, d.record_ids))}" if d.record_ids else "")
        + ")"
        for d in differences
    )


def not_created(api: VendorApi, resource_name: str, check_name: str) -> AssetCheckResult:
    """Nothing to check yet: dlt creates a table only when its first row arrives."""
    return AssetCheckResult(
        asset_key=AssetKey(resource_name),
        check_name=check_name,
        passed=True,
        description=f"`{table_name(api, resource_name)}` is not created yet: no record arrived.",
        metadata={"table": table_name(api, resource_name), "status": NOT_CREATED},
    )


# -- merge_key_unique ---------------------------------------------------------------------------


def merge_key_unique(
    api: VendorApi, resource_name: str, destination: LoadedTables
) -> AssetCheckResult:
    """`merge_key_unique`: the primary key never null nor repeated, every child row linked."""
    root, *children = declared_tables(api_resource(api, resource_name))
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
        + [{key: plain(value), "rows": int(n)} for value, n in sample],
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
        "offending_parent_ids": [plain(value) for (value,) in sample],
    }


def first_rows(sql: SqlClientBase[Any], query: str) -> list[tuple[Any, ...]]:
    """The first `SAMPLE_SIZE` rows of a query, without `LIMIT` (not every SQL dialect has it)."""
    with sql.execute_query(query) as cursor:
        return [tuple(row) for row in cursor.fetchmany(SAMPLE_SIZE)]


def plain(value: Any) -> Any:
    """A key as JSON shows it: ints and strings as they are, anything else (Decimal...) as text."""
    return value if value is None or isinstance(value, (int, str)) else str(value)


# -- the Dagster definitions --------------------------------------------------------------------

CHECKS: dict[str, Callable[[VendorApi, str, LoadedTables], AssetCheckResult]] = {
    SCHEMA_CONTRACT: schema_contract,
    MERGE_KEY_UNIQUE: merge_key_unique,
}


def check_specs(api: VendorApi) -> list[AssetCheckSpec]:
    """Both checks on every asset of the API, both blocking.

    A blocking check that fails with ERROR fails its run (so `sync_failure_sensor` reports it) and
    keeps downstream assets from reading the table: repeated keys, or values moved out of their
    declared column into a variant column, are not what a downstream query expects. A WARN (a new
    vendor field) never blocks.
    """
    return [
        spec
        for name in api.resource_names
        for spec in (
            AssetCheckSpec(
                SCHEMA_CONTRACT,
                asset=AssetKey(name),
                blocking=True,
                description=(
                    "Columns, dlt types and nullability of the table and its child tables match "
                    "the declared schema, with no variant (`*__v_*`) column. New column: WARN; "
                    "anything else: ERROR."
                ),
            ),
            AssetCheckSpec(
                MERGE_KEY_UNIQUE,
                asset=AssetKey(name),
                blocking=True,
                description=(
                    "The primary key is never null nor repeated, and every child row links to an "
                    "existing parent row."
                ),
            ),
        )
    ]


def build_checks(api: VendorApi) -> AssetChecksDefinition:
    """One check step per API: its checks share the pipeline and one connection to the dataset."""

    @multi_asset_check(
        name=checks_op_name(api),
        specs=check_specs(api),
        can_subset=True,
        # In the sync's pool: an embedded DuckDB file takes one process at a time, readers too.
        pool=sync_pool(api),
        # Frees what dead runs hold before the step asks for the pool (pools.py).
        required_resource_keys={"pool_guard"},
    )
    def checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        pipeline = build_pipeline(api, context.instance.root_directory)
        wait_for_destination(context.log)
        yield from run_checks(api, pipeline, context.selected_asset_check_keys)

    return checks


def run_checks(
    api: VendorApi, pipeline: Pipeline, selected: set[AssetCheckKey]
) -> Iterator[AssetCheckResult]:
    """Reads the destination once, then evaluates every selected check of the API."""
    with reading_destination(api, pipeline) as destination:
        for resource_name in api.resource_names:
            for check_name, check in CHECKS.items():
                if AssetCheckKey(AssetKey(resource_name), check_name) in selected:
                    yield check(api, resource_name, destination)


ASSET_CHECKS: tuple[AssetChecksDefinition, ...] = tuple(build_checks(api) for api in APIS)
