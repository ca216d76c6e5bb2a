"""The vendor's clock: the real UTC clock plus an offset a test may set.

A real vendor's clock is never exactly the client's, and a sync's incremental window must
survive that; every timestamp a mutation writes comes from here, so setting ``offset`` skews
them all at once.
"""

from __future__ import annotations

import datetime as dt
import time

from svcdesk_simulator.timestamps import iso_ms


class Clock:
    """Vendor time, in milliseconds since 1970 or as the API writes it."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._offset_ms = 0  # the offset as now_ms() adds it, converted once when set

    @property
    def offset(self) -> dt.timedelta:
        """The vendor's clock minus the real UTC clock (may be negative)."""
        return self._offset

    @offset.setter
    def offset(self, offset: dt.timedelta) -> None:
        self._offset = offset
        self._offset_ms = offset // dt.timedelta(milliseconds=1)

    def now_ms(self) -> int:
        """The vendor's current time, in milliseconds since 1970."""
        return time.time_ns() // 1_000_000 + self._offset_ms

    def now(self) -> str:
        """The vendor's current time as the API writes it, e.g. ``2026-11-20T08:15:02.517Z``."""
        return iso_ms(self.now_ms())
