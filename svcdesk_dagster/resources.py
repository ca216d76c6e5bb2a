"""Where the data goes: the dlt destination and pipelines, and the Dagster resources around them.

Nothing here touches the network, the disk or a secret at import: the destination and pipelines
are built when a run asks for them, from `SVCDESK_DESTINATION` and dlt's own configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt
from dagster_dlt import DagsterDltResource
from dlt.common.destination import Destination
from dlt.pipeline.pipeline import Pipeline

from svcdesk_dagster.sources import VendorApi

DESTINATION_ENV = "SVCDESK_DESTINATION"
DEFAULT_DESTINATION = "duckdb"
DEFAULT_DUCKDB_FILE = Path("data") / "svcdesk.duckdb"
"""Relative to the working directory. Named unlike any dataset: a DuckDB file called like a
dataset makes catalog references ambiguous."""

LOADER_FILE_FORMAT = "parquet"
"""dlt's default for DuckDB, `insert_values`, renders every row as SQL text: about 48 s and 4.4 GB
for 100,000 tickets here. Parquet is loaded by DuckDB natively, in a fraction of the time and
memory, and keeps the declared types on the way."""


def destination_name() -> str:
    return os.environ.get(DESTINATION_ENV, "").strip() or DEFAULT_DESTINATION


def duckdb_file() -> Path:
    """The DuckDB file: `DESTINATION__DUCKDB__CREDENTIALS` / `[destination.duckdb] credentials`,
    else `data/svcdesk.duckdb` under the working directory."""
    configured = dlt.config.get("destination.duckdb.credentials", str)
    return Path(configured) if configured else Path.cwd() / DEFAULT_DUCKDB_FILE


REPLACE_STRATEGY = "insert-from-staging"
"""A replaced table is swapped in one transaction from a staging dataset, so a run that fails
part-way leaves the table as it was instead of empty or half-loaded."""


def build_destination() -> Destination:
    """The destination named by `SVCDESK_DESTINATION`; its credentials come from dlt's config."""
    name = destination_name()
    if name == "duckdb":
        path = duckdb_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(credentials=str(path), replace_strategy=REPLACE_STRATEGY)
    return Destination.from_reference(name, replace_strategy=REPLACE_STRATEGY)


def pipeline_name(api: VendorApi) -> str:
    return f"svcdesk_{api.name}"


def build_pipeline(api: VendorApi) -> Pipeline:
    """One dlt pipeline per API, loading into the dataset named after it."""
    return dlt.pipeline(
        pipeline_name=pipeline_name(api),
        destination=build_destination(),
        dataset_name=api.name,
    )


def dagster_resources() -> dict[str, object]:
    return {"dlt": DagsterDltResource()}
