"""The offset paginator both APIs share.

The vendors' contract promises little about offset paging: `total` is counted anew on every request and
can change between pages, and a record that disappears from a listing (a soft-deleted ticket, a
removed service) moves every later record up one place, so a client that simply adds `limit` to
the offset skips a record. dlt's `OffsetPaginator` trusts `total` (it raises when it is missing and
stops early when it shrinks) and skips on a shift. What the contract does promise is that lists
are in ascending `id` order and that a new record gets a larger id than every existing one. This
paginator relies on that alone:

- each page after the first starts one record early, on the last record already read; finding
  that record in its place proves nothing moved, and it is dropped from the page;
- when it is not there (the list shifted under us), the paginator steps back a page until it finds
  ground it has read, and drops every record it has already passed: no record is skipped and none
  is read twice;
- a page shorter than `limit` is the last one; `total` is never read (which also spares a second
  JSON parse of every page).

It reads plain listings, the ones that can shift (`services`); a listing filtered with
`updated_since` cannot, and is read several pages at a time instead (`listing.py`).
"""

from __future__ import annotations

from typing import Any

from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api.config_setup import register_paginator
from requests import Request, Response

from svcdesk_dagster.sources.api import PAGINATOR_TYPE
from svcdesk_dagster.sources.contract import VendorContractError

MAX_REWINDS = 50


class ListingKeptShiftingError(RuntimeError):
    """Records kept disappearing ahead of the reader faster than it could page."""


class VendorOffsetPaginator(OffsetPaginator):
    """Offset/limit paging in ascending-id lists that neither skips nor repeats when they shift."""

    def __init__(
        self,
        limit: int = 100,
        id_field: str = "id",
        max_rewinds: int = MAX_REWINDS,
    ) -> None:
        super().__init__(limit=limit, total_path=None, stop_after_empty_page=True)
        self.id_field = id_field
        self.max_rewinds = max_rewinds
        self._last_id: Any = None
        self._rewinds = 0

    def init_request(self, request: Request) -> None:
        self._last_id = None
        self._rewinds = 0
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Decides the next offset; drops, in place, the records of `data` already read."""
        page = data if data is not None else []
        offset, received = self.current_value, len(page)
        check_ids(page, offset, self.id_field)
        if self._listing_shifted(offset, page):
            self._rewind(offset, page)
            return
        self._drop_already_read(page)
        if page:
            self._last_id = page[-1].get(self.id_field)
        self._has_next_page = received >= self.limit
        # Start the next page on the last record of this one: the overlap that proves no shift.
        self.current_value = offset + received - 1

    def _listing_shifted(self, offset: int, page: list[Any]) -> bool:
        """The record we overlapped on is no longer where we left it (or the page is gone)."""
        if self._last_id is None or offset == 0:
            return False
        return not page or page[0].get(self.id_field) > self._last_id

    def _rewind(self, offset: int, page: list[Any]) -> None:
        self._rewinds += 1
        if self._rewinds > self.max_rewinds:
            raise ListingKeptShiftingError(
                f"Records kept disappearing ahead of the reader at offset {offset}: "
                f"{self.max_rewinds} rewinds did not find the last record read again."
            )
        page.clear()
        self.current_value = max(0, offset - self.limit)
        self._has_next_page = True

    def _drop_already_read(self, page: list[Any]) -> None:
        if self._last_id is None:
            return
        read = 0
        while read < len(page) and page[read].get(self.id_field) <= self._last_id:
            read += 1
        del page[:read]

    def __str__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, next offset={self.current_value})"


def check_ids(page: list[Any], offset: int, id_field: str = "id", previous: Any = None) -> Any:
    """Every record of `page` (read at `offset`) has an id, and the ids ascend, after `previous`
    when given: what the contract promises and paging relies on. Returns the last id."""
    for position, record in enumerate(page):
        key = record.get(id_field) if isinstance(record, dict) else None
        if key is None:
            raise VendorContractError(f"the record at offset {offset + position} has no `{id_field}`")
        if previous is not None and not _ascending(previous, key):
            raise VendorContractError(
                f"`{id_field}` {key!r} at offset {offset + position} does not come after "
                f"{previous!r}: listings must be in ascending `{id_field}` order"
            )
        previous = key
    return previous


def _ascending(previous: Any, key: Any) -> bool:
    try:
        return bool(previous < key)
    except TypeError:  # ids of different types: no order at all
        return False


register_paginator(PAGINATOR_TYPE, VendorOffsetPaginator)
