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

The package, one concern a module:

- `reader.py`: reads the destination once per step (`reading_destination`) and the SQL helpers
  both checks share;
- `schema_contract.py` and `merge_key_unique.py`: one check each, its story at the top;
- `wiring.py`: the Dagster definitions (`check_specs`, `build_checks`, `run_checks`) and
  `CHECKS`, the check functions by name.

This module only gathers the names the rest of the project imports.
"""

from svcdesk_dagster.checks.merge_key_unique import MERGE_KEY_UNIQUE, merge_key_unique
from svcdesk_dagster.checks.reader import NOT_CREATED, LoadedTables, reading_destination
from svcdesk_dagster.checks.schema_contract import SCHEMA_CONTRACT, schema_contract
from svcdesk_dagster.checks.wiring import (
    CHECKS,
    build_checks,
    check_specs,
    run_checks,
)

__all__ = [
    "CHECKS",
    "MERGE_KEY_UNIQUE",
    "NOT_CREATED",
    "SCHEMA_CONTRACT",
    "LoadedTables",
    "build_checks",
    "check_specs",
    "merge_key_unique",
    "reading_destination",
    "run_checks",
    "schema_contract",
]
