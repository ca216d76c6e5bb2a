"""Reading an `updated_since` listing several pages at a time, within the vendor's budget.

dlt's `rest_api` reads a listing one page after another, so against a vendor 250 ms away a read
of 1,000 pages takes at least 250 s, whatever the budget allows. A listing filtered with
`updated_since` cannot shift under a reader (docs/contract.md, Incremental reads): records
change in place and new ones join at its end. So once its first page has given its `total`, its
other pages can be read at once:

- the first page is read alone, for `total`; then up to `concurrency` pages are in flight, each
  on its own connection, paced by the key's rate governor (`governor.py`) at the transport;
- pages are handed to dlt in order, as soon as each one and those before it have arrived, so at
  most `concurrency` pages wait in memory;
- a failed page is retried alone, by the session's retry policy; one that keeps failing stops the
  read, and the pages not yet requested are not;
- each record is read exactly once (offsets do not move); one that joins while the listing is
  read is picked up by the next window, and a last page that comes back full is followed page by
  page to the end, for a vendor whose `total` is behind.

Plain listings (`services`, or any vendor without `updated_since`) can shift and keep the
sequential, shift-proof paginator (`paginator.py`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from svcdesk_dagster.sources.contract import VendorContractError
from svcdesk_dagster.sources.http import refuse_failed_status
from svcdesk_dagster.sources.paginator import check_ids
from svcdesk_dagster.sources.progress import ReadProgress
from svcdesk_dagster.sources.redaction import API_KEY_PARAM

Record = dict[str, Any]


@dataclass(frozen=True)
class Page:
    offset: int
    records: list[Record]
    total: int | None


@dataclass(frozen=True)
class ChangedListing:
    """One listing of the records of a resource changed at or after `since`."""

    session: requests.Session
    url: str
    filter_param: str
    since: str
    api_key: str
    limit: int
    concurrency: int
    deleted_field: str | None = None
    """A field set on soft-deleted records: counted as deletes, and dropped with `drop_deleted`."""
    drop_deleted: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,)

    def fetch(self, offset: int) -> Page:
        """One page: the vendor's answer checked (a 200 with a JSON listing) and unpacked."""
        params = {
            "offset": offset, "limit": self.limit, self.filter_param: self.since,
            API_KEY_PARAM: self.api_key,
        }
        response = self.session.get(self.url, params=params)
        refuse_failed_status(response, self.secrets)
        body = response.json()
        records = body.get("data") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise VendorContractError(f"the answer at offset {offset} holds no `data` list")
        total = body.get("total")
        return Page(offset, records, total if isinstance(total, int) else None)


def read_changed_listing(listing: ChangedListing, progress: ReadProgress) -> Iterator[list[Record]]:
    """Every page of `listing`, in order, each as the list of records dlt is to load."""
    first = listing.fetch(0)
    if first.total is not None:
        progress.expect(max(1, math.ceil(first.total / listing.limit)))
    last_id = check_ids(first.records, 0)
    yield _counted(listing, first, progress)
    if len(first.records) < listing.limit:
        return
    offsets = range(listing.limit, _planned_end(listing, first), listing.limit)
    last = first
    for page in _in_order(listing, offsets):
        last_id = check_ids(page.records, page.offset, previous=last_id)
        yield _counted(listing, page, progress)
        last = page
    # A full last page: the listing goes on past what the first page counted.
    while len(last.records) == listing.limit:
        last = listing.fetch(last.offset + listing.limit)
        last_id = check_ids(last.records, last.offset, previous=last_id)
        yield _counted(listing, last, progress)


def _planned_end(listing: ChangedListing, first: Page) -> int:
    """Where the pages the first page announced end (just the first page without a `total`:
    the rest is then read page by page)."""
    return first.total if first.total is not None else listing.limit


def _in_order(listing: ChangedListing, offsets: range) -> Iterator[Page]:
    """The pages at `offsets`, at most `listing.concurrency` in flight, handed back in order."""
    pending = iter(offsets)
    in_flight: deque[Future[Page]] = deque()
    pool = ThreadPoolExecutor(max_workers=listing.concurrency, thread_name_prefix="page")
    try:
        for offset in pending:
            in_flight.append(pool.submit(listing.fetch, offset))
            if len(in_flight) == listing.concurrency:
                break
        while in_flight:
            page = in_flight.popleft().result()
            next_offset = next(pending, None)
            if next_offset is not None:
                in_flight.append(pool.submit(listing.fetch, next_offset))
            yield page
    finally:
        # On a failure (or dlt closing the generator), the pages not yet requested never are.
        pool.shutdown(wait=False, cancel_futures=True)


def _counted(listing: ChangedListing, page: Page, progress: ReadProgress) -> list[Record]:
    """The page's records as dlt gets them (soft-deleted ones dropped on a full read), counted."""
    records = page.records
    deletes = 0
    if listing.deleted_field is not None:
        live = [record for record in records if record.get(listing.deleted_field) is None]
        deletes = len(records) - len(live)
        if listing.drop_deleted:
            records = live
    progress.page_read(len(page.records), deletes)
    return records
