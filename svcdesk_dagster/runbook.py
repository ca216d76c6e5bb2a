"""The README's operations (`svcdesk dlt ...`, `svcdesk rebuild <asset>`), acting on exactly
what the runs act on.

dlt's own CLI (`dlt pipeline svcdesk_service_desk drop tickets`, `info`, `trace`) knows neither the
project's default DuckDB file nor where the runs keep their pipeline folders: those defaults live
in `settings.py` and `resources.py`, and dlt's CLI would instead create and drop tables in a new, empty
`svcdesk_service_desk.duckdb` in the working directory and report the data is gone while the real
file keeps its rows. `svcdesk dlt` runs dlt's CLI with the environment the runs resolve (the
destination's file and `DLT_DATA_DIR`), taken from the same functions the runs call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from svcdesk_dagster.naming import pipeline_name
from svcdesk_dagster.resources import instance_data_dir
from svcdesk_dagster.settings import (
    DATA_DIR_ENV,
    dagster_home,
    destination_name,
    dlt_data_dir,
    duckdb_file,
)
from svcdesk_dagster.sources import APIS, VendorApi

DAGSTER_HOME_ENV = "DAGSTER_HOME"
DUCKDB_CREDENTIALS_ENV = "DESTINATION__DUCKDB__CREDENTIALS"


class RunbookError(RuntimeError):
    """An operation that cannot act on the runs' data as asked; the message says what to do."""


def runs_environment() -> dict[str, str]:
    """This process's environment plus what the runs would resolve that dlt's CLI cannot see."""
    env = dict(os.environ)
    if dlt_data_dir() is None:
        home = dagster_home()
        if home is None:
            raise RunbookError(
                f"Neither {DATA_DIR_ENV} nor {DAGSTER_HOME_ENV} is set, so the runs keep no "
                "pipeline folder between runs and there is nothing for dlt's CLI to act on. Run it "
                f"through `./dev` (which sets {DAGSTER_HOME_ENV}=.dagster_home), or with the "
                f"{DAGSTER_HOME_ENV} of the deployment."
            )
        env[DATA_DIR_ENV] = str(instance_data_dir(home))
    if destination_name() == "duckdb":
        env[DUCKDB_CREDENTIALS_ENV] = str(duckdb_file().resolve())
    return env


def run_dlt(arguments: list[str]) -> int:
    """dlt's CLI, with the runs' destination and pipeline folders."""
    env = runs_environment()
    command = [str(Path(sys.executable).with_name("dlt")), *arguments]
    return subprocess.run(command, env=env, check=False).returncode


def api_of(asset: str) -> VendorApi:
    for api in APIS:
        if asset in api.resource_names:
            return api
    known = ", ".join(name for api in APIS for name in api.resource_names)
    raise RunbookError(f"No asset {asset!r}: the assets are {known}.")


def rebuild(asset: str) -> int:
    """Drops the asset's table, child tables and incremental window, then syncs it again: what a
    column whose type changed needs, since dlt cannot change a column's type in place."""
    api = api_of(asset)
    dropped = run_dlt(["-y", "pipeline", pipeline_name(api), "drop", asset])
    if dropped != 0:
        return dropped
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "-m", "svcdesk_dagster", "--select", asset]
    return subprocess.run(command, env=runs_environment(), check=False).returncode
