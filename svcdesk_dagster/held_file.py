"""The DuckDB file held open by another process: wait for it a while, and say who holds it.

DuckDB lets one process write a file, and any other process's open connection, read-only
included, keeps it from doing so. An analyst's notebook left open on `data/svcdesk.duckdb` made
the next sync fail with dlt's "Please check if you configured the credentials at all ... your
internet connection may be down", the real cause ("Conflicting lock is held in ... (PID N)")
buried deep in the chained traceback. So before a sync or a check opens the file, it checks that
the file can be opened; while another process holds it, it logs who (PID and program) and waits,
at most `SVCDESK_DUCKDB_WAIT_SECONDS`, then fails with that said first. Dagster's step retries
then try again later, since the holder may well let go.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import Failure

from svcdesk_dagster.settings import DUCKDB_WAIT_ENV, duckdb_wait_seconds
from svcdesk_dagster.sources import causes

POLL_SECONDS = 0.5
_LOCK_HELD = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


@dataclass(frozen=True)
class Holder:
    """The process DuckDB names as holding the file's lock."""

    pid: int
    program: str

    @property
    def name(self) -> str:
        """The process's own name (`jupyter-lab`, `python3`), where /proc tells it."""
        try:
            return Path(f"/proc/{self.pid}/comm").read_text().strip()
        except OSError:
            return Path(self.program).name

    def __str__(self) -> str:
        return f"PID {self.pid} ({self.name}, {self.program})"


def holder_in(text: str) -> Holder | None:
    found = _LOCK_HELD.search(text)
    return Holder(int(found["pid"]), found["program"]) if found else None


def wait_until_free(path: Path, log: Any) -> None:
    """Returns once `path` can be opened for writing; fails after the configured wait."""
    if not path.exists():
        return
    wait = duckdb_wait_seconds()
    deadline = time.monotonic() + wait
    announced: set[Holder] = set()
    while True:
        holder = current_holder(path)
        if holder is None:
            return
        if holder not in announced:
            announced.add(holder)
            log.warning(
                f"The DuckDB file {path} is held open by another process, {holder}: the sync "
                f"waits for it, at most {wait:g} s ({DUCKDB_WAIT_ENV})."
            )
        if time.monotonic() >= deadline:
            raise Failure(description=held_message(path, holder, wait), allow_retries=True)
        time.sleep(POLL_SECONDS)


def current_holder(path: Path) -> Holder | None:
    """Who keeps `path` from being opened for writing now, or None when nobody does (or when it
    cannot be opened for another reason, which the step then reports as it opens the file)."""
    import duckdb  # here, not at import: the code location loads without DuckDB's modules

    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as error:
        return holder_in(str(error))
    return None


def held_message(path: Path | str, holder: Holder, wait: float | None = None) -> str:
    waited = f" The sync waited {wait:g} s ({DUCKDB_WAIT_ENV})." if wait is not None else ""
    return (
        f"The DuckDB file {path} is held open by another process, {holder}: DuckDB lets one "
        f"process write, and any other open connection blocks it.{waited} Close that "
        "connection (in a notebook, `con.close()`; see the README on reading the file without "
        "blocking syncs); Dagster retries the sync, and the next one loads everything."
    )


def explain_held(error: BaseException, path: Path | str) -> str | None:
    """The message for a failure whose cause is the file held by another process, else None
    (the lock can still be taken between the check above and dlt opening the file)."""
    for cause in causes(error):
        holder = holder_in(str(cause))
        if holder is not None:
            return held_message(path, holder)
    return None
