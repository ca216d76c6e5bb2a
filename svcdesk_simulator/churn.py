"""Churn: the vendor's other users at work while a client syncs, so records change under its
pages and between its runs without a test scripting each change.

A background thread makes ``per_minute`` changes a minute, evenly spread: the n-th change is
due at ``n * 60 / per_minute`` seconds after the start, so fractions of a change carry over and
the rate does not drift. It sleeps on an ``Event`` until the next change is due (at least
``_MIN_WAIT_SECONDS``, making every change due by then), so it never spins and stops at once.
Each change is one of: update a live ticket's status and priority, create a ticket, soft-delete
a live ticket, change an incident's status, create an incident, drawn with its record from a
generator seeded from the simulator's seed. They go through the mutation methods
(``mutations.py``), so the ground truth (``Simulator.live_tickets`` and the like) stays exact.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from svcdesk_simulator.data import INCIDENT_STATUSES, TICKET_PRIORITIES, TICKET_STATUSES
from svcdesk_simulator.mutations import Mutations
from svcdesk_simulator.store import ResourceStore
from svcdesk_simulator.vendor import VendorData

_MIN_WAIT_SECONDS = 0.01  # the thread wakes at most this often
_PICK_TRIES = 20  # random ids tried to find a live record before giving up on it
_STOP_TIMEOUT_SECONDS = 5.0


class Churn:
    """Changes to the vendor's records, made from a background thread at a steady rate."""

    def __init__(self, data: VendorData, mutations: Mutations, seed: int) -> None:
        self._data = data
        self._mutations = mutations
        self._seed = seed
        self._lock = threading.Lock()  # serialises start and stop
        self._running: tuple[threading.Thread, threading.Event] | None = None

    def start(self, per_minute: int) -> None:
        """Make ``per_minute`` changes a minute from now on (0 stops), replacing an earlier
        rate; the draws restart from the seed."""
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 0:
            raise ValueError(f"per_minute must be a whole number >= 0, not {per_minute!r}")
        with self._lock:
            self._stop_running()
            if not per_minute:
                return
            stopped = threading.Event()
            rng = random.Random(f"{self._seed}:churn")
            thread = threading.Thread(
                target=self._run, args=(60.0 / per_minute, stopped, rng), name="svcdesk-simulator-churn", daemon=True
            )
            self._running = (thread, stopped)
            thread.start()

    def stop(self) -> None:
        """Stop making changes; returns once the thread has ended. Idempotent."""
        with self._lock:
            self._stop_running()

    def _stop_running(self) -> None:
        if self._running is None:
            return
        thread, stopped = self._running
        self._running = None
        stopped.set()
        thread.join(_STOP_TIMEOUT_SECONDS)

    def _run(self, interval: float, stopped: threading.Event, rng: random.Random) -> None:
        started = time.monotonic()
        made = 0
        while not stopped.wait(max(_MIN_WAIT_SECONDS, started + (made + 1) * interval - time.monotonic())):
            due = int((time.monotonic() - started) / interval)
            while made < due and not stopped.is_set():
                self._change_one(rng)
                made += 1

    def _change_one(self, rng: random.Random) -> None:
        """One change, drawn from ``_CHANGES``; a change that finds no live record to work
        on creates a ticket instead. A failure (say, a test's failing transform) is shown
        and the churn goes on, as the server does with a failing hook."""
        needs, change = rng.choice(_CHANGES)
        try:
            with self._data.lock:  # the record picked stays live until it is changed
                target = _pick_live(self._data.store(needs), rng) if needs else None
                if needs and target is None:
                    change = _create_ticket
                change(self._mutations, rng, target)
        except Exception:
            traceback.print_exc()


def _update_ticket(mutations: Mutations, rng: random.Random, ticket_id: Any) -> None:
    fields = {"status": rng.choice(TICKET_STATUSES), "priority": rng.choice(TICKET_PRIORITIES)}
    mutations.update("tickets", ticket_id, fields)


def _create_ticket(mutations: Mutations, rng: random.Random, _: Any) -> None:
    mutations.create("tickets", {})


def _delete_ticket(mutations: Mutations, rng: random.Random, ticket_id: Any) -> None:
    mutations.delete_ticket(ticket_id)


def _update_incident(mutations: Mutations, rng: random.Random, incident_id: Any) -> None:
    mutations.update_incident(incident_id, {"status": rng.choice(INCIDENT_STATUSES)})


def _create_incident(mutations: Mutations, rng: random.Random, service_id: Any) -> None:
    mutations.create_incident({"service_id": service_id})


_CHANGES: tuple[tuple[str | None, Callable[[Mutations, random.Random, Any], None]], ...] = (
    # (the resource of the live record the change works on, if any; the change)
    ("tickets", _update_ticket),
    (None, _create_ticket),
    ("tickets", _delete_ticket),
    ("incidents", _update_incident),
    ("services", _create_incident),  # a new incident on a live service
)


def _pick_live(store: ResourceStore, rng: random.Random) -> Any:
    """The public id of a random live record of ``store`` (not soft-deleted, not removed),
    or None when ``_PICK_TRIES`` random ids found none."""
    for _ in range(_PICK_TRIES if store.max_key else 0):
        key = rng.randint(1, store.max_key)
        if store.exists(key) and store.core(key).get("deleted_at") is None:
            return store.factory.public_id(key)
    return None
