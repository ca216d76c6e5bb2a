"""What one simulated vendor holds: how much data (``VendorSize``) and the stores built from it
(``VendorData``).

``VendorSize`` is the one place the sizes and their defaults are written: the ``Simulator``,
``serve_forever``, the demo (``svcdesk_dagster/demo.py``) and the ``svcdesk`` command
(``svcdesk_dagster/cli.py``, which makes one option per field) all take it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from svcdesk_simulator.data import (
    IncidentFactory,
    RecordFactory,
    ServiceFactory,
    TicketFactory,
    Timeline,
    epoch_ms_for_seed,
    pick_ids,
)
from svcdesk_simulator.store import ResourceStore

MAX_RECORDS = 1_000_000
_CACHE_SHARES = {"tickets": 0.6, "incidents": 0.3, "services": 0.1}  # of cache_megabytes


@dataclass(frozen=True)
class VendorSize:
    """How much data a simulated vendor holds, and the seed it is generated from.

    Each count goes from 0 to 1,000,000. ``deleted_ticket_fraction`` of the generated tickets
    are already soft-deleted, as on a real service desk, so the plain ticket listing shows
    fewer records than ``tickets``. Each field's ``help`` says what it is on the command line.
    """

    tickets: int = field(default=1_000, metadata={"help": "tickets the simulator holds"})
    incidents: int = field(default=500, metadata={"help": "incidents it holds"})
    services: int = field(default=25, metadata={"help": "services it holds"})
    seed: int = field(default=42, metadata={"help": "seed of the simulator's data"})
    deleted_ticket_fraction: float = field(
        default=0.02, metadata={"help": "share of the generated tickets already soft-deleted"}
    )

    def __post_init__(self) -> None:
        for name, count in (("tickets", self.tickets), ("incidents", self.incidents), ("services", self.services)):
            if not 0 <= count <= MAX_RECORDS:
                raise ValueError(f"{name} must be from 0 to {MAX_RECORDS:,}, not {count}")
        if self.incidents and not self.services:
            raise ValueError("incidents reference services: services must be >= 1 when incidents > 0")


class VendorData:
    """The three resources' stores and the one lock that guards them all.

    The stores are not thread-safe on their own (``store.py``), and tests and hooks mutate
    records on their threads while connection threads build pages: every reader and writer
    takes ``lock`` (re-entrant, so a mutation may call another under it).
    ``cache_megabytes`` bounds the serialised-record cache, split 60/30/10 between tickets,
    incidents and services.
    """

    def __init__(self, size: VendorSize, cache_megabytes: int) -> None:
        self.lock = threading.RLock()
        self.stores = _build_stores(size, cache_megabytes)

    def store(self, resource: str) -> ResourceStore:
        """The store of ``resource``; ValueError naming the valid ones for anything else."""
        try:
            return self.stores[resource]
        except KeyError:
            raise ValueError(f"resource must be one of {sorted(self.stores)}, not {resource!r}") from None


def _build_stores(size: VendorSize, cache_megabytes: int) -> dict[str, ResourceStore]:
    seed, epoch = size.seed, epoch_ms_for_seed(size.seed)
    service_factory = ServiceFactory(seed, epoch)
    factories: list[tuple[RecordFactory, int, float]] = [
        (TicketFactory(seed, epoch), size.tickets, size.deleted_ticket_fraction),
        (IncidentFactory(seed, epoch, service_factory, size.services), size.incidents, 0.0),
        (service_factory, size.services, 0.0),
    ]
    return {
        factory.resource: ResourceStore(
            factory,
            Timeline(n, seed, factory.resource, epoch),
            pick_ids(n, seed, f"{factory.resource}:deleted", fraction),
            int(cache_megabytes * _CACHE_SHARES[factory.resource] * 2**20),
        )
        for factory, n, fraction in factories
    }
