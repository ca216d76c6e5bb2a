"""Running the project's own jobs and assets, in process, through the code location's `defs`."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult

from svcdesk_dagster.definitions import defs


def run_job(name: str, *, raise_on_error: bool = True) -> ExecuteInProcessResult:
    """Executes job `name` of the code location on a throwaway instance."""
    with DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def(name).execute_in_process(
            instance=instance, raise_on_error=raise_on_error
        )


def materialize(*asset_names: str, raise_on_error: bool = True) -> ExecuteInProcessResult:
    """Materializes a selection of the code location's assets, as the UI's Materialize does."""
    job = defs.resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(
            instance=instance,
            asset_selection=[AssetKey(name) for name in asset_names],
            raise_on_error=raise_on_error,
        )


def materialized_keys(result: ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
