"""The offset paginator both APIs share.

dlt's `OffsetPaginator` trusts `total`: it raises when `total` is missing and stops as soon as
`offset >= total`, although API_CONTRACT.md says `total` is counted anew for every request and can
change from page to page. This one stops on the evidence of the page itself: a page shorter than
`limit` is the last one. It never reads `total`, which also spares a second JSON parse of every
page; the price is one empty request when the last page happens to be exactly full.
"""

from __future__ import annotations

from typing import Any

from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api.config_setup import register_paginator
from requests import Response

PAGINATOR_TYPE = "vendor_offset"


class VendorOffsetPaginator(OffsetPaginator):
    """Offset/limit paging that ends on a short page, never on a shrunken or missing `total`."""

    def __init__(self, limit: int = 100, **kwargs: Any) -> None:
        super().__init__(limit=limit, total_path=None, stop_after_empty_page=True, **kwargs)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        page_size = len(data or [])
        self.current_value += page_size
        self._has_next_page = page_size >= self.limit

    def __str__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, next offset={self.current_value})"


register_paginator(PAGINATOR_TYPE, VendorOffsetPaginator)
