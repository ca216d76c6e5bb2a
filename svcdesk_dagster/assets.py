"""The Dagster assets `tickets`, `incidents` and `services`: one multi-asset per upstream API.

Built with `@multi_asset(specs=...)` rather than `@dlt_assets`, because only the former takes a
retry policy and check specs, and with our own specs, because dagster-dlt's default translator
invents upstream assets and a wrong `dagster/table_name`. The definitions hold no dlt source and
no secret: the real source is built inside the run, from the configuration in force then.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    Config,
    Failure,
    FreshnessPolicy,
    Jitter,
    MaterializeResult,
    RetryPolicy,
    multi_asset,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.pipeline.pipeline import Pipeline
from pydantic import Field

from svcdesk_dagster.catalog import asset_description, column_schema
from svcdesk_dagster.naming import op_name, sync_pool, table_name
from svcdesk_dagster.pools import PoolGuard
from svcdesk_dagster.resources import (
    LOADER_FILE_FORMAT,
    build_pipeline,
    explain_destination_error,
    wait_for_destination,
)
from svcdesk_dagster.settings import (
    MissingSettingError,
    asset_owners,
    destination_name,
    freshness_window,
    step_retries,
)
from svcdesk_dagster.sources import VendorApi, open_read

if TYPE_CHECKING:
    from svcdesk_dagster.sources import ApiRead


def sync_retry_policy() -> RetryPolicy:
    """Dagster's retries, the second layer above the HTTP retries, for an outage longer than those
    (transient failures only: `run_sync` marks the others final). Read when the code location
    loads, since the policy is part of the asset's definition."""
    retries = step_retries()
    return RetryPolicy(
        max_retries=retries.max_retries,
        delay=retries.first_delay_seconds,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


DEFAULT_FRESHNESS = {
    "tickets": timedelta(hours=2),
    "incidents": timedelta(minutes=30),
    "services": timedelta(days=1),
}
"""How old each table may get before Dagster flags it; `SVCDESK_FRESHNESS_<ASSET>_MINUTES`."""
DEFAULT_FRESHNESS_OF_OTHERS = timedelta(days=1)
"""The freshness window of an asset of a newly added API, until its own default is written above."""

def asset_spec(api: VendorApi, resource_name: str) -> AssetSpec:
    """The asset for one dlt resource: key = resource name, group = API, table = dataset.table."""
    fresh_within = freshness_window(
        resource_name, DEFAULT_FRESHNESS.get(resource_name, DEFAULT_FRESHNESS_OF_OTHERS)
    )
    return AssetSpec(
        key=AssetKey(resource_name),
        group_name=api.name,
        description=asset_description(api, resource_name, fresh_within),
        kinds={"dlt", destination_name()},
        owners=asset_owners(),
        freshness_policy=FreshnessPolicy.time_window(fail_window=fresh_within),
        metadata={
            "dagster/table_name": table_name(api, resource_name),
            "dagster/column_schema": column_schema(api, resource_name),
        },
    )


class VendorApiTranslator(DagsterDltTranslator):
    """Maps a dlt resource to the same spec `asset_spec` gives the definitions."""

    def __init__(self, api: VendorApi) -> None:
        self.api = api

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        return asset_spec(self.api, data.resource.name)


def build_sync_assets(api: VendorApi) -> AssetsDefinition:
    """One multi-asset per API: its resources share a dlt pipeline, so they run in one step."""

    @multi_asset(
        name=op_name(api),
        specs=[asset_spec(api, name) for name in api.resource_names],
        can_subset=True,
        pool=sync_pool(api),
        retry_policy=sync_retry_policy(),
    )
    def sync(
        context: AssetExecutionContext,
        dlt: DagsterDltResource,
        pool_guard: PoolGuard,  # frees what dead runs hold before the step asks for its pool
        config: SyncConfig,
    ) -> Iterator[MaterializeResult]:
        yield from run_sync(context, dlt, api, config)

    return sync


class SyncConfig(Config):
    """How a run reads its API."""

    full_refresh: bool = Field(
        default=False,
        description=(
            "Read the complete listings and replace the tables with them, instead of merging "
            "what changed since the last sync started. Either way the next incremental sync "
            "continues from the start of this read."
        ),
    )


def run_sync(
    context: AssetExecutionContext, dlt: DagsterDltResource, api: VendorApi, config: SyncConfig
) -> Iterator[MaterializeResult]:
    """Builds the real source from the configuration in force and loads the selected assets."""
    try:
        # Every setting the run reads, checked before the first request or write.
        read = open_read(api, full_refresh=config.full_refresh, log=context.log)
        destination_name()  # checked at load too, but the environment may have changed since
    except (MissingSettingError, ValueError) as error:
        # A missing or malformed setting does not fix itself: fail at once, without retries.
        raise Failure(description=str(error), allow_retries=False) from None
    pipeline = build_pipeline(api, context.instance.root_directory)
    wait_for_destination(context.log)
    # A full refresh replaces every table; otherwise each resource keeps its own disposition
    # (merge for the windowed ones, replace for complete listings such as services).
    overrides = {"write_disposition": "replace"} if config.full_refresh else {}
    results = dlt.run(
        context=context,
        dlt_source=read.dlt_source(),
        dlt_pipeline=pipeline,
        dagster_dlt_translator=VendorApiTranslator(api),
        loader_file_format=LOADER_FILE_FORMAT,
        **overrides,
    )
    try:
        for result in results:
            yield with_run_metadata(result, read, pipeline)
    except Exception as error:
        raise failure_of(read, error) from error
    finally:
        read.close()


def failure_of(read: "ApiRead", error: Exception) -> Failure:
    """The step's failure, said for the person on call. Only what may pass (a 429, a 5xx, a
    dropped connection, a DuckDB file another process holds) is worth Dagster's retries: retrying
    a wrong key, a rejected request or a broken record repeats the failure."""
    held = explain_destination_error(error)
    if held is not None:
        return Failure(description=held, allow_retries=True)
    explanation = read.explain(error)
    return Failure(description=explanation.message, allow_retries=explanation.transient)


def with_run_metadata(result: Any, read: "ApiRead", pipeline: Pipeline) -> MaterializeResult:
    """dagster-dlt's result, with the real table name, the table's rows after the load (also
    when the run brought none), and what this run read: rows, pages, retried responses, mode."""
    api, tally = read.api, read.tally
    resource_name = result.asset_key.path[-1]
    path = api.endpoint_path(resource_name)
    metadata = dict(result.metadata or {})
    metadata.update(
        {
            "dagster/table_name": table_name(api, resource_name),
            "dagster/row_count": count_rows(pipeline, resource_name),
            "sync_mode": "full_refresh" if read.full_refresh else "incremental",
            "rows_fetched": rows_fetched(pipeline, resource_name),
            "pages_fetched": tally.count(path),
            "responses_retried": tally.count(path, ok=False),
        }
    )
    return MaterializeResult(asset_key=result.asset_key, metadata=metadata)


def rows_fetched(pipeline: Pipeline, table: str) -> int:
    """Records this run read for `table` (every record read becomes one row in the load)."""
    normalize_info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    return int(normalize_info.row_counts.get(table, 0)) if normalize_info else 0


def count_rows(pipeline: Pipeline, table: str) -> int:
    """Rows in `table` now, through dlt's SQL client so it works on any SQL destination.

    dlt creates a table only once a row arrives for it: an API that has no records yet has no
    table, which is zero rows, not an error.
    """
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        try:
            rows = client.execute_sql(f"SELECT count(*) FROM {qualified}")
        except DatabaseUndefinedRelation:
            return 0
    return int(rows[0][0])

