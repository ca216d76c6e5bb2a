"""Where the data goes: the dlt destination and pipelines, and the Dagster resources around them.

Nothing here touches the network, the disk or a secret at import: the destination and pipelines
are built when a run asks for them, from `SVCDESK_DESTINATION` and dlt's own configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
from dagster_dlt import DagsterDltResource
from dlt.common.destination import Destination
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.pipeline.pipeline import Pipeline

from svcdesk_dagster.held_file import explain_held, wait_until_free
from svcdesk_dagster.naming import pipeline_name
from svcdesk_dagster.pools import PoolGuard
from svcdesk_dagster.settings import (
    destination_name,
    dlt_config_holds,
    dlt_data_dir,
    duckdb_file,
    duckdb_global_config,
    set_dlt_default,
)
from svcdesk_dagster.sources import VendorApi

LOADER_FILE_FORMAT = "parquet"
"""dlt's default for DuckDB, `insert_values`, renders every row as SQL text: about 48 s and 4.4 GB
for 100,000 tickets here. Parquet is loaded by DuckDB natively, in a fraction of the time and
memory, and keeps the declared types on the way."""


def wait_for_destination(log: Any) -> None:
    """On DuckDB, waits (a bounded time, logging who) while another process holds the file."""
    if destination_name() == "duckdb":
        wait_until_free(duckdb_file(), log)


def explain_destination_error(error: BaseException) -> str | None:
    """What to tell the person on call when a step failed because of the destination, if it did:
    the DuckDB file held open by another process. None for anything else."""
    if destination_name() == "duckdb":
        return explain_held(error, duckdb_file())
    return None


REPLACE_STRATEGY = "insert-from-staging"
"""A replaced table is swapped in one transaction from a staging dataset, so a run that fails
part-way leaves the table as it was instead of empty or half-loaded."""


DUCKDB_GLOBAL_CONFIG: dict[str, Any] = {"memory_limit": "256MB", "threads": 2}
"""DuckDB settings for every connection to the file. By default DuckDB may take 80% of the
machine's memory, and a load's merge keeps what it takes: a sync of 1,000,000 tickets peaked at
1.3 GB. Bounded, DuckDB spills to `<file>.tmp` instead (measured with 128 MB and 2 threads: that
sync peaked at 0.45 GB, one of 100,000 at 0.42 GB instead of 0.47, the load about as fast). What a
merge needs that cannot spill grows with DuckDB's threads (one per core by default): 128 MB failed
a 100,000-ticket merge with 16 threads, and 64 MB with 2. So both are pinned, with twice the
memory that sufficed: the same limits hold on any machine. A load is one merge per table, which
gains little from more threads. `[destination.duckdb.credentials] global_config` overrides these
key by key (raise `memory_limit` with `threads`)."""


def build_destination() -> Destination:
    """The destination named by `SVCDESK_DESTINATION`; its credentials come from dlt's config."""
    name = destination_name()
    if name == "duckdb":
        path = duckdb_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(
            credentials=duckdb_credentials(path), replace_strategy=REPLACE_STRATEGY
        )
    return Destination.from_reference(name, replace_strategy=REPLACE_STRATEGY)


def duckdb_credentials(path: Path) -> DuckDbCredentials:
    """The DuckDB file at `path`, opened with `DUCKDB_GLOBAL_CONFIG` under what is configured."""
    return DuckDbCredentials(
        str(path), global_config={**DUCKDB_GLOBAL_CONFIG, **duckdb_global_config()}
    )


PIPELINE_DEFAULTS: dict[str, object] = {"data_writer.disable_compression": True}
"""dlt settings the project changes from dlt's defaults, for its own pipelines only.

`data_writer.disable_compression`: dlt gzips every file it hands from extract to normalize to
load, files it deletes once the load is done; that costs about 1 s of every 100,000 tickets (a
fifth of the extract step) to save disk space for minutes. A user who set the key keeps theirs.
"""


RUNTIME_DEFAULTS: dict[str, object] = {"runtime.dlthub_telemetry": False}
"""dlt sends anonymous usage events to dlthub by default. Like Dagster's telemetry (off in
dagster.yaml), it stays off unless the user turns it on: ingestion often runs where outbound
traffic is audited, and the project sends nothing it was not asked to."""


def apply_dlt_defaults(name: str) -> None:
    """Sets `PIPELINE_DEFAULTS` for the pipeline `name` (dlt's `<pipeline>.<key>`) and
    `RUNTIME_DEFAULTS`, except where the configuration (environment, `.dlt/*.toml`) already holds
    the key, scoped or not."""
    for key, value in PIPELINE_DEFAULTS.items():
        scoped = f"{name}.{key}"
        if not dlt_config_holds(scoped) and not dlt_config_holds(key):
            set_dlt_default(scoped, value)
    for key, value in RUNTIME_DEFAULTS.items():
        if not dlt_config_holds(key):
            set_dlt_default(key, value)


def pipelines_dir(instance_root: str | Path | None) -> str | None:
    """Where dlt keeps the pipelines' working folders: `DLT_DATA_DIR` when set (dlt's own
    override, which dlt's CLI honours too), else `dlt/pipelines` in the Dagster instance's root.

    dlt's default is one folder per user (`/var/dlt` for root), shared by every checkout and every
    deployment on the machine, so two instances' runs of one pipeline would work in the same folder
    and break each other's load packages; the pools that serialize runs live in each instance and
    cannot help. The instance root is `DAGSTER_HOME` for a deployment (so `info` and `trace` find
    the last run there), and a throwaway folder for a run on an ephemeral instance; either way the
    state is restored from the destination at the start of every run.
    """
    if dlt_data_dir() is not None or instance_root is None:
        return None
    return str(instance_data_dir(instance_root) / "pipelines")


def instance_data_dir(instance_root: str | Path) -> Path:
    """The dlt data directory of a Dagster instance: what `DLT_DATA_DIR` would name for dlt's CLI
    to find the pipelines `pipelines_dir` puts there."""
    return Path(instance_root) / "dlt"


def build_pipeline(api: VendorApi, instance_root: str | Path | None = None) -> Pipeline:
    """One dlt pipeline per API, loading into the dataset named after it, working in the folder
    `pipelines_dir` picks for the Dagster instance rooted at `instance_root`."""
    apply_dlt_defaults(pipeline_name(api))
    return dlt.pipeline(
        pipeline_name=pipeline_name(api),
        destination=build_destination(),
        dataset_name=api.name,
        pipelines_dir=pipelines_dir(instance_root),
    )


def dagster_resources() -> dict[str, object]:
    return {"dlt": DagsterDltResource(), "pool_guard": PoolGuard()}
