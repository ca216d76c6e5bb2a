"""Incremental windows that lose nothing.

The vendors' contract: a record that changes while a client pages keeps its place in the id-ordered
list, so it may be read *before* its change, while records changed later are read after it with
larger `updated_at` values. A cursor at the largest `updated_at` seen (dlt's incremental) then
starts the next read after that change, and loses it. The next window must instead start where
the previous read *started*, less a margin for the vendor's clock being off ours; records read
twice at the boundary are absorbed by the merge on `id`.

The window lives in the dlt resource state, which dlt stores in the destination together with the
data it describes: it advances only when the load that read it lands, and a run on a fresh machine
continues where the last one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dlt

WINDOW_STATE_KEY = "next_window_start"
BEGINNING = "1970-01-01T00:00:00.000Z"
"""The first window of an incremental sync: everything, soft-deleted tickets included, so their
deletion reaches a table that may already hold them. A full read starts here too."""


def iso_timestamp(moment: datetime) -> str:
    """The contract's timestamp shape: UTC, millisecond precision, `Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class SyncWindow:
    """Where one resource's read starts, and where the next read will start.

    `incremental=False` is a full read: it starts at the beginning, but the next incremental
    window still starts at this read.
    """

    resource: str
    margin: timedelta
    incremental: bool = True

    def advance(self) -> str:
        """The start of this read's window (the `updated_since` to send), after moving the stored
        start to this read's start, less the margin, for the next read.

        Call it inside dlt's extract step (the listing's generator does), so the state written
        here is committed only with the data of this read.
        """
        state = dlt.current.resource_state(self.resource)
        start = (state.get(WINDOW_STATE_KEY) or BEGINNING) if self.incremental else BEGINNING
        state[WINDOW_STATE_KEY] = iso_timestamp(datetime.now(timezone.utc) - self.margin)
        return str(start)
