"""Progress of one read in the run log: a line at least every interval, and a summary at the end.

Against a vendor 100-500 ms away, a first sync of a large account takes minutes, and a run log
that stays silent all that time looks like a hung run. While a listing is read, a ticker thread
writes one INFO line every interval (`SVCDESK_PROGRESS_INTERVAL_SECONDS`, 10 s): pages read out of
pages expected, rows, rows/s, the budget left and the time to go. When the read ends, one line
sums it up: pages, rows, deletes, requests, 429s and time. The log is the run's (the assets hand
down Dagster's `context.log`), so the lines show in the web UI and in the CLI's output.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from svcdesk_dagster.sources.governor import RateGovernor
from svcdesk_dagster.sources.http import ResponseTally


class Log(Protocol):
    def info(self, msg: str) -> None: ...


class ReadProgress:
    """The counts of one read of one resource, and the lines that report them."""

    def __init__(
        self,
        resource: str,
        path: str,
        log: Log,
        interval: float,
        tally: ResponseTally,
        governor: RateGovernor | None = None,
    ) -> None:
        self.resource, self.path, self.log, self.interval = resource, path, log, interval
        self.tally, self.governor = tally, governor
        self.pages = self.rows = self.deletes = 0
        self.pages_expected: int | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = time.monotonic()
        self._requests_before = tally.requests(path)
        self._429s_before = tally.answered(path, 429)

    def start(self) -> None:
        self._started = time.monotonic()
        self._ticker = threading.Thread(
            target=self._tick, name=f"progress-{self.resource}", daemon=True
        )
        self._ticker.start()

    def expect(self, pages: int) -> None:
        with self._lock:
            self.pages_expected = pages

    def page_read(self, rows: int, deletes: int = 0) -> None:
        with self._lock:
            self.pages += 1
            self.rows += rows
            self.deletes += deletes
            if self.pages_expected is not None:
                self.pages_expected = max(self.pages_expected, self.pages)

    def finish(self) -> None:
        """Stops the ticker and writes the summary line."""
        self._stopped.set()
        if self._ticker is not None:
            self._ticker.join()
        self.log.info(self.summary_line())

    def stop(self) -> None:
        """Stops the ticker without a summary (the read failed: its error says what happened)."""
        self._stopped.set()

    def progress_line(self) -> str:
        with self._lock:
            pages, rows, expected = self.pages, self.rows, self.pages_expected
        elapsed = time.monotonic() - self._started
        rate = rows / elapsed if elapsed > 0 else 0.0
        of = f" of {expected:,}" if expected is not None else ""
        parts = [f"{self.resource}: {pages:,}{of} pages read, {rows:,} rows, {rate:,.0f} rows/s"]
        budget = self._budget()
        if budget:
            parts.append(budget)
        if expected and pages:
            seconds_left = elapsed / pages * (expected - pages)
            parts.append(f"about {seconds_left:,.0f} s to go")
        return ", ".join(parts)

    def summary_line(self) -> str:
        elapsed = time.monotonic() - self._started
        requests = self.tally.requests(self.path) - self._requests_before
        limited = self.tally.answered(self.path, 429) - self._429s_before
        return (
            f"{self.resource}: read {self.pages:,} pages, {self.rows:,} rows "
            f"({self.deletes:,} deleted upstream) with {requests:,} requests, {limited:,} "
            f"answered 429, in {elapsed:,.1f} s"
        )

    def _budget(self) -> str:
        if self.governor is None:
            return ""
        left, limit = self.governor.budget_left, self.governor.budget_limit
        if left is None or limit is None:
            return ""
        return f"budget {max(left, 0):,} of {limit:,} left"

    def _tick(self) -> None:
        while not self._stopped.wait(self.interval):
            self.log.info(self.progress_line())
