"""The declared schema of a resource, and the guard that keeps every record true to it.

Each API module declares its tables in its resource dicts: `columns` for the resource's table and
`nested_hints` for the child tables dlt makes of its lists. `declared_tables` is the one reading of
those declarations, for the guard here and for the `schema_contract` check (`checks/schema_contract.py`).

Why a guard at all: dlt coerces a value to its column's declared type whenever it can, silently.
A vendor that starts sending `"priority": 3` gets `"3"` stored, `"customer_id": "42"` gets `42`,
and an epoch number in a timestamp column becomes a date, with no trace a check could find. Where
dlt cannot coerce, it stores the value in a variant column `<field>__v_<type>` (nullable fields)
or fails the load at normalize, leaving a package behind that every later run tries first (fields
declared non-nullable). So each record is checked as it is extracted, and a value whose type is
not the declared one is:

- in a nullable field: moved to the variant column `<field>__v_<type>` dlt itself would use,
  the declared column left null. The row loads, nothing is lost, and `schema_contract` reports
  the variant column as an ERROR with the ids of the records that hold one. An object or a list
  in a nullable scalar field is left to dlt, which flattens it into `<field>__<key>` columns or a
  child table `<table>__<field>`: the check reports those the same way.
- in a non-nullable field (or null there): not storable, since the declared column cannot be
  left empty. The read stops with a `TypeDriftError` naming the resource, the field and the
  record's id, before anything is loaded, so the tables and the incremental window stay as they
  were and the first run after the vendor is fixed loads everything.

Cost: 1.5 us a ticket (a record that fits is compared with its `Shape` only), about 1.5% of what a
sync spends on it; the README's Performance section has the paired benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing dlt's rest_api loads the HTTP stack: not when the code location loads
    from dlt.sources.rest_api.typing import EndpointResource

Columns = Mapping[str, Mapping[str, Any]]
Record = dict[str, Any]

DEFAULT_PRIMARY_KEY = "id"
VARIANT_MARKER = "__v_"
"""dlt stores a value that does not fit its column's type in a variant `<column>__v_<type>`."""
LIST_ITEM_COLUMN = "value"
"""The column dlt gives the items of a list of scalars in its child table."""


class VendorContractError(ValueError):
    """The vendor sent something its API contract rules out (a record without an id, ids out of
    order): loading on would silently corrupt the table, so the read stops."""


class TypeDriftError(VendorContractError):
    """A field declared non-nullable arrived null, or of another type: the record cannot be
    stored faithfully, so the read stops before anything is loaded."""


@dataclass(frozen=True)
class DeclaredTable:
    """One table as a resource dict declares it: its columns and, for a child table, its parent."""

    name: str
    columns: Columns
    parent: str | None = None
    primary_key: str | None = None
    path: tuple[str, ...] = ()
    """For a child table, the record fields that lead to its list (`("tags",)`)."""


def declared_tables(resource: EndpointResource) -> tuple[DeclaredTable, ...]:
    """The resource's table, then one child table per `nested_hints` entry.

    Child tables are named as dlt names them: the path from the root joined with `__`
    (`tickets__tags`); their link to the parent is dlt's `_dlt_parent_id`, not a declared key.
    """
    root = str(resource["name"])
    primary_key = resource.get("primary_key", DEFAULT_PRIMARY_KEY)
    if not isinstance(primary_key, str):
        raise ValueError(f"Resource {root!r}: a single-column primary key is supported.")
    tables = [DeclaredTable(root, resource.get("columns") or {}, primary_key=primary_key)]
    for path, hints in (resource.get("nested_hints") or {}).items():
        fragments = (path,) if isinstance(path, str) else tuple(path)
        tables.append(
            DeclaredTable(
                "__".join((root, *fragments)),
                hints.get("columns") or {},
                parent="__".join((root, *fragments[:-1])),
                path=fragments,
            )
        )
    return tuple(tables)


# -- the guard ----------------------------------------------------------------------------------


def hard_delete_column(resource: EndpointResource) -> str | None:
    """The declared column whose value marks a record deleted upstream (`deleted_at`), if any."""
    columns = resource.get("columns") or {}
    return next((name for name, spec in columns.items() if spec.get("hard_delete")), None)


def type_name(value: Any) -> str:
    """The dlt data type a value would get on its own, as variant columns are suffixed."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "text"
    return "json"


EXACT_TYPES: dict[str, type] = {"text": str, "bigint": int, "bool": bool}
"""Declared types a value fits only as exactly this Python type (no subclass: `True` is no int)."""
TIMESTAMP = "timestamp"
parse_timestamp = datetime.fromisoformat


def _is_timestamp(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        parse_timestamp(value)
    except ValueError:
        return False
    return True


def _exactly(expected: type) -> Callable[[Any], bool]:
    return lambda value: type(value) is expected


FITS: dict[str, Callable[[Any], bool]] = {
    **{data_type: _exactly(expected) for data_type, expected in EXACT_TYPES.items()},
    "double": lambda value: type(value) in (float, int),
    TIMESTAMP: _is_timestamp,
}
"""What each declared dlt type accepts, as the vendor's JSON gives it: exactly, with no coercion."""


@dataclass(frozen=True)
class FieldRule:
    """One declared column, found in a record at `path` (`custom_fields__channel` is
    `("custom_fields", "channel")`)."""

    column: str
    path: tuple[str, ...]
    data_type: str
    nullable: bool
    fits: Callable[[Any], bool]


def field_rules(columns: Columns) -> tuple[FieldRule, ...]:
    return tuple(
        FieldRule(
            column=name,
            path=tuple(name.split("__")),
            data_type=str(spec["data_type"]),
            nullable=bool(spec.get("nullable", True)),
            fits=FITS[str(spec["data_type"])],
        )
        for name, spec in columns.items()
        if spec.get("data_type") in FITS
    )


def type_guard(resource: EndpointResource) -> Callable[[Record], Record]:
    """The per-record guard of `resource` (module docstring), for dlt's `add_map`.

    Almost every record fits its declaration, so a record is first compared with its `Shape` (one
    lookup and one type comparison a field, a parse a timestamp: about 1.5 us a ticket), and only
    one that does not fit goes field by field through the rules that say what to do.
    """
    root, *children = declared_tables(resource)
    name, key = root.name, str(root.primary_key)
    rules = field_rules(root.columns)
    lists = tuple((child.path, field_rules(child.columns)) for child in children)
    shape = shape_of(rules, lists)

    def guard(record: Record) -> Record:
        if not fits(record, shape):
            record_id = record.get(key)
            for rule in rules:
                _guard_field(record, rule, name, record_id)
            for path, item_rules in lists:
                _guard_list(record, path, item_rules, name, record_id)
        return record

    return guard


@dataclass
class Shape:
    """What a record, a nested object or a list's item holds when nothing drifted."""

    exact: list[tuple[str, type, bool]] = field(default_factory=list)
    """Fields compared by exact type: name, Python type, nullable."""
    stamps: list[tuple[str, bool]] = field(default_factory=list)
    """Timestamp fields: name, nullable."""
    objects: dict[str, Shape] = field(default_factory=dict)
    """Nested objects (`custom_fields`), whose fields are flattened into columns."""
    lists: list[tuple[str, Shape | type]] = field(default_factory=list)
    """Lists (child tables): of objects of a shape, or of scalars of a type."""
    checkable: bool = True
    """False when a declared type has no fast comparison: such a record always goes the slow way."""


def shape_of(
    rules: tuple[FieldRule, ...],
    lists: tuple[tuple[tuple[str, ...], tuple[FieldRule, ...]], ...],
) -> Shape:
    """The `Shape` a record (or a list's item) has when it fits `rules` and `lists`."""
    shape = Shape()
    for rule in rules:
        container = shape
        for step in rule.path[:-1]:
            container = container.objects.setdefault(step, Shape())
        if rule.data_type in EXACT_TYPES:
            container.exact.append((rule.path[-1], EXACT_TYPES[rule.data_type], rule.nullable))
        elif rule.data_type == TIMESTAMP:
            container.stamps.append((rule.path[-1], rule.nullable))
        else:
            shape.checkable = False
    for path, item_rules in lists:
        scalar = [rule for rule in item_rules if rule.column == LIST_ITEM_COLUMN]
        if len(path) != 1:
            shape.checkable = False
        elif scalar and scalar[0].data_type in EXACT_TYPES:
            shape.lists.append((path[0], EXACT_TYPES[scalar[0].data_type]))
        else:
            item_shape = shape_of(item_rules, ())
            shape.checkable = shape.checkable and item_shape.checkable
            shape.lists.append((path[0], item_shape))
    return shape


def fits(record: Any, shape: Shape) -> bool:
    """The record holds exactly what `shape` declares: the hot path of the guard."""
    if not shape.checkable or type(record) is not dict:
        return False
    get = record.get
    for name, expected, nullable in shape.exact:
        value = get(name)
        if type(value) is not expected and (value is not None or not nullable):
            return False
    for name, nullable in shape.stamps:
        value = get(name)
        if value is None:
            if nullable:
                continue
            return False
        try:
            parse_timestamp(value)
        except (TypeError, ValueError):
            return False
    for name, inner in shape.objects.items():
        if not fits(get(name), inner):
            return False
    for name, items in shape.lists:
        value = get(name)
        if type(value) is not list:
            return False
        if isinstance(items, Shape):
            for item in value:
                if not fits(item, items):
                    return False
        else:
            for item in value:
                if type(item) is not items:
                    return False
    return True


def _guard_field(
    record: Record, rule: FieldRule, resource: str, record_id: Any, within: tuple[str, ...] = ()
) -> None:
    container: Any = record
    for step in rule.path[:-1]:
        container = container.get(step) if isinstance(container, dict) else None
    field = rule.path[-1]
    value = container.get(field) if isinstance(container, dict) else None
    if value is None:
        if not rule.nullable:
            raise _drift(resource, record_id, rule, "null", within)
        return
    if rule.fits(value):
        return
    if not rule.nullable:
        raise _drift(resource, record_id, rule, type_name(value), within)
    if isinstance(value, (dict, list)):
        return  # dlt flattens it, or makes a child table of it; the check reports either
    container[field] = None
    container[f"{field}{VARIANT_MARKER}{type_name(value)}"] = value


def _guard_list(
    record: Record,
    path: tuple[str, ...],
    rules: tuple[FieldRule, ...],
    resource: str,
    record_id: Any,
) -> None:
    """A declared list (a child table): present, a list, and every item true to its columns."""
    items: Any = record
    for step in path:
        items = items.get(step) if isinstance(items, dict) else None
    if type(items) is not list:
        raise TypeDriftError(
            f"`{resource}` record {record_id!r}: `{'.'.join(path)}` is declared a list, not "
            f"null, and arrived as {type_name(items) if items is not None else 'null'}"
        )
    for item in items:
        if isinstance(item, dict):
            for rule in rules:
                _guard_field(item, rule, resource, record_id, within=path)
        else:
            # A list of scalars: dlt stores each item in the child table's `value` column.
            for rule in rules:
                if rule.column == LIST_ITEM_COLUMN and not rule.fits(item):
                    raise _drift(resource, record_id, rule, type_name(item), within=path, item=True)


def _drift(
    resource: str,
    record_id: Any,
    rule: FieldRule,
    found: str,
    within: tuple[str, ...] = (),
    item: bool = False,
) -> TypeDriftError:
    """`tickets` record 42: `customer_id` ...; in a list, `tags[]` or `assignees[].name`."""
    inside = f"{'.'.join(within)}[]" if within else ""
    field = inside if item else ".".join(filter(None, (inside, ".".join(rule.path))))
    return TypeDriftError(
        f"`{resource}` record {record_id!r}: `{field}` is declared {rule.data_type}, not null, "
        f"and arrived as {found}; a non-nullable column cannot hold it, so nothing was loaded"
    )
