"""The Dagster side of the asset checks: their specs, one check step per API, and its body.

Why one `@multi_asset_check` per API: the package docstring, in `__init__.py`. `CHECKS` names the
check functions (`schema_contract.py`, `merge_key_unique.py`); `run_checks` reads the destination
once (`reader.py`) and evaluates the selected ones.

(No `from __future__ import annotations` here: Dagster inspects the `context` annotation of a
check function at definition time and rejects it as a string.)
"""

from collections.abc import Callable, Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)
from dlt.pipeline.pipeline import Pipeline

from svcdesk_dagster.checks.merge_key_unique import MERGE_KEY_UNIQUE, merge_key_unique
from svcdesk_dagster.checks.reader import LoadedTables, reading_destination
from svcdesk_dagster.checks.schema_contract import SCHEMA_CONTRACT, schema_contract
from svcdesk_dagster.naming import checks_op_name, sync_pool
from svcdesk_dagster.resources import build_pipeline, wait_for_destination
from svcdesk_dagster.sources import VendorApi

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
                    "the declared schema, with no variant (`*__v_*`) column. New column: WARN "
                    "(the vendor added a field; it is loaded). Anything else: ERROR, the run "
                    "fails and downstream assets wait: the vendor sent a value of another type "
                    "(the metadata names the records). What to do: README, Asset checks, "
                    "`schema_contract`."
                ),
            ),
            AssetCheckSpec(
                MERGE_KEY_UNIQUE,
                asset=AssetKey(name),
                blocking=True,
                description=(
                    "The primary key is never null nor repeated, and every child row links to an "
                    "existing parent row. A failure (ERROR) fails the run and holds downstream "
                    "assets: the table no longer has one row per upstream record (the metadata "
                    "gives counts and a few keys). What to do: README, Asset checks, "
                    "`merge_key_unique`."
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

