"""`schema_contract`: is each table of a resource still what its resource dict declares?

The story of one check, per resource:

1. The resource's root table does not exist yet: passed, "not created yet" (`reader.not_created`).
2. Every declared table that exists is compared column by column with its declaration, as dlt
   data types and nullability (dlt's own `_dlt_*` columns aside). A declared column that is
   absent, of another type or of other nullability is an ERROR. A declared child table not
   created yet is no difference: the metadata lists it (`tables_not_created_yet`).
3. Columns and child tables nobody declared: a new vendor field or list is a WARN; the trace of a
   declared field whose type changed is an ERROR (a variant column `<field>__v_<type>`, an object
   dlt flattened into `<field>__<key>`, or a list dlt turned into the child table
   `<table>__<field>`). Such an ERROR names a few records that hold a value of the new type; when
   no row holds one any more (a full refresh replaced them), it is left from a past change: WARN.
4. No difference: passed. Only WARNs: failed with WARN (yellow, never blocks). Any ERROR: failed
   with ERROR, which blocks downstream assets and fails the run (`wiring.check_specs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.destinations.sql_client import SqlClientBase

from svcdesk_dagster.checks.reader import (
    LoadedTables,
    first_rows,
    json_safe,
    not_created,
)
from svcdesk_dagster.naming import table_name
from svcdesk_dagster.sources import (
    VARIANT_MARKER,
    Columns,
    DeclaredTable,
    VendorApi,
    declared_tables,
)

SCHEMA_CONTRACT = "schema_contract"

DLT_COLUMN_PREFIX = "_dlt_"


def schema_contract(
    api: VendorApi, resource_name: str, destination: LoadedTables
) -> AssetCheckResult:
    """`schema_contract`: the resource's tables against their declarations, plus tables nobody
    declared. Only new columns or tables: failed with WARN; anything else: failed with ERROR."""
    declared = declared_tables(api.resource(resource_name))
    missing = sorted({t.name for t in declared} - set(destination.tables))
    if resource_name in missing:
        return not_created(api, resource_name, SCHEMA_CONTRACT)
    differences = [
        with_record_ids(difference, declared[0], destination)
        for difference in table_differences(resource_name, declared, destination)
    ]
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


# -- what differs -------------------------------------------------------------------------------


def table_differences(
    resource_name: str, declared: tuple[DeclaredTable, ...], destination: LoadedTables
) -> list[Difference]:
    """The differences of every declared table that exists, then one per table nobody declared
    that dlt created under the resource."""
    root = declared[0]
    declared_names = {t.name for t in declared}
    differences: list[Difference] = []
    for table in declared:
        found = destination.tables.get(table.name)
        if found is not None:
            differences += column_differences(table.name, table.columns, found, destination.as_stored)
    for name in destination.nested.get(resource_name, ()):
        if name not in declared_names and name in destination.tables:
            differences.append(unexpected_table(root, name))
    return differences


def column_differences(
    table: str, declared: Columns, found: TTableSchemaColumns, as_stored: Callable[[str], str]
) -> list[Difference]:
    """Every difference between a table's declared and actual columns, dlt's own columns aside.

    Types are compared as dlt data types (dlt maps each destination's types back to them), so
    precision and time zone, which no declaration here sets, are not compared.
    """
    by_folded = {as_stored(name): (name, spec) for name, spec in declared.items()}
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


# -- which records hold a changed type ----------------------------------------------------------


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
    return int(holders), [json_safe(value) for (value,) in sample]


# -- how the result reads -----------------------------------------------------------------------


def summary(differences: list[Difference]) -> str:
    if not differences:
        return "The tables match the declared schema."
    return "; ".join(
        f"{d.severity} {d.table}.{d.column}: {d.problem} (expected {d.expected}, found {d.found}"
        + (f"; records {', '.join(map(str, d.record_ids))}" if d.record_ids else "")
        + ")"
        for d in differences
    )


def describe(spec: Mapping[str, Any]) -> str:
    return f"{spec.get('data_type')}, {nullability(spec)}"


def nullability(spec: Mapping[str, Any]) -> str:
    return "nullable" if spec.get("nullable", True) else "not null"
