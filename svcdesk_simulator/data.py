"""Deterministic record generation: any record of the base data set, from (seed, id) alone.

Nothing is materialised per record. A ``Timeline`` holds the only per-record state (two
compact random arrays, 6 bytes a record) from which ``created_at``/``updated_at`` follow,
because ``updated_since`` must find matching ids without generating records. Every other
field comes from a keyed BLAKE2b digest of the id, indexed into pre-escaped vocabulary
(``vocabulary.py``), and the record's JSON text is assembled with one f-string.
That keeps generation at a few microseconds per record, so a page is cheap even uncached.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sys
from array import array
from functools import lru_cache
from itertools import compress, repeat
from operator import add
from typing import Any

from svcdesk_simulator import vocabulary as vocab
from svcdesk_simulator.timestamps import DAY_MS, datetime_ms, iso_ms

SPAN_MS = 730 * DAY_MS  # base records are created over the two years before the epoch
MAX_UPDATE_DELAY_MS = 90 * DAY_MS  # base updated_at <= created_at + this (bounds index scans)
RECENT_MS = 14 * DAY_MS  # records created this close to the epoch are mostly still open
_EPOCH_BASE_MS = datetime_ms(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
_DELAY_TABLE_SIZE = 65_536


def _seed_digest(seed: int, label: str, size: int = 32) -> bytes:
    return hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=size).digest()


def epoch_ms_for_seed(seed: int) -> int:
    """The "present" of the base data: 2026-01-01 minus up to 30 days, chosen by the seed.

    Fixed rather than wall-clock based so a seed reproduces the same bytes on any day; in
    the past so that every mutation (stamped with the real clock) is newer than all base data.
    """
    return _EPOCH_BASE_MS - int.from_bytes(_seed_digest(seed, "epoch", 8), "little") % (30 * DAY_MS)


@lru_cache(maxsize=1)
def _delay_table() -> array:
    """Distribution of (updated_at - created_at): many never updated, most within hours or
    weeks, a tail up to ``MAX_UPDATE_DELAY_MS``. Indexed by a random 16-bit value so a
    million delays cost one C-level ``map`` instead of a million RNG calls."""
    rng = random.Random("update-delays")
    table = array("q")
    for _ in range(_DELAY_TABLE_SIZE):
        roll = rng.random()
        if roll < 0.18:
            delay = 0
        elif roll < 0.60:
            delay = int(rng.expovariate(1 / (6 * 3_600_000)))
        elif roll < 0.90:
            delay = rng.randrange(30 * DAY_MS)
        else:
            delay = rng.randrange(MAX_UPDATE_DELAY_MS)
        table.append(min(delay, MAX_UPDATE_DELAY_MS))
    return table


def _random_array(rng: random.Random, typecode: str, n: int) -> array:
    values = array(typecode)
    values.frombytes(rng.randbytes(values.itemsize * n))
    if sys.byteorder == "big":  # keep the same data on every platform
        values.byteswap()
    return values


class Timeline:
    """Base ``created_at``/``updated_at`` of ids 1..n, in 6 bytes a record.

    ``created_at`` strictly increases with the id (id k is created in the k-th of n equal
    slots of the two-year span, at a random point of its slot), so "first id created at or
    after t" is arithmetic. ``updated_at`` is ``created_at`` plus a delay from a shared
    table (clamped to the epoch), so it is bounded by ``created_at + MAX_UPDATE_DELAY_MS``:
    an ``updated_since`` query only has to scan ids created in that window before t.
    Nothing of size n is computed in Python at construction (1,000,000 ids: ~20 ms).
    """

    def __init__(self, n: int, seed: int, resource: str, epoch_ms: int) -> None:
        rng = random.Random(f"{seed}:{resource}:timeline")
        self.n = n
        self.epoch_ms = epoch_ms
        self.start_ms = epoch_ms - SPAN_MS
        self.step_ms = SPAN_MS // max(n, 1)
        self._jitter = _random_array(rng, "I", n)
        self._delay_index = _random_array(rng, "H", n)
        self._delays = _delay_table()  # built once per process (~0.1 s), here rather than mid-request

    def created(self, key: int) -> int:
        return self.start_ms + (key - 1) * self.step_ms + self._jitter[key - 1] % self.step_ms

    def updated(self, key: int) -> int:
        return min(self.created(key) + self._delays[self._delay_index[key - 1]], self.epoch_ms)

    def times(self, first: int, stop: int) -> list[tuple[int, int]]:
        """(created_at, updated_at) of ids first..stop-1, computed in bulk for a cache chunk."""
        step = self.step_ms
        slots = range(self.start_ms + (first - 1) * step, self.start_ms + (stop - 1) * step, step)
        created = list(map(add, slots, map(step.__rmod__, self._jitter[first - 1 : stop - 1])))
        raw_updated = map(add, created, map(self._delays.__getitem__, self._delay_index[first - 1 : stop - 1]))
        return list(zip(created, map(min, raw_updated, repeat(self.epoch_ms))))

    def first_created_at_or_after(self, t_ms: int) -> int:
        """Smallest id whose created_at >= t_ms (n + 1 if none): the slot arithmetic above."""
        if t_ms <= self.start_ms:
            return 1
        key = (t_ms - self.start_ms) // self.step_ms + 1
        if key > self.n:
            return self.n + 1
        return key if self.created(key) >= t_ms else key + 1

    def updated_at_or_after(self, t_ms: int) -> tuple[array, int]:
        """Ids whose base updated_at >= t_ms, as (sorted ids below ``lo``, ``lo``): every id
        from ``lo`` to n matches (created_at >= t_ms) and below ``lo`` only the window of
        ids created up to ``MAX_UPDATE_DELAY_MS`` earlier can, which is scanned with C-level
        ``map`` calls (about 25 ms for the 120,000 ids of a 1,000,000-id window)."""
        if t_ms > self.epoch_ms:  # no base record is updated after the epoch
            return array("q"), self.n + 1
        lo = self.first_created_at_or_after(t_ms)
        first = self.first_created_at_or_after(t_ms - MAX_UPDATE_DELAY_MS)
        step = self.step_ms
        slots = range(self.start_ms + (first - 1) * step, self.start_ms + (lo - 1) * step, step)
        created = map(add, slots, map(step.__rmod__, self._jitter[first - 1 : lo - 1]))
        updated = map(add, created, map(self._delays.__getitem__, self._delay_index[first - 1 : lo - 1]))
        return array("q", compress(range(first, lo), map(t_ms.__le__, updated))), lo


def pick_ids(n: int, seed: int, label: str, fraction: float) -> array:
    """A deterministic random subset of 1..n (about ``fraction`` of it), sorted."""
    if fraction <= 0:
        return array("q")
    threshold = round(fraction * 65_536)
    flags = _random_array(random.Random(f"{seed}:{label}"), "H", n)
    return array("q", compress(range(1, n + 1), map(threshold.__gt__, flags)))


class RecordFactory:
    """Generates the base records of one resource; subclasses fix the fields.

    ``encode`` returns a record's JSON text. Records created through the simulator's
    mutation methods start from ``encode`` too (with the creation time), so they look alike.
    """

    resource: str
    fields: tuple[str, ...]
    soft_deletes = False

    def __init__(self, seed: int, epoch_ms: int) -> None:
        self.epoch_ms = epoch_ms
        self._hasher = hashlib.blake2b(digest_size=32, key=_seed_digest(seed, self.resource))

    def digest(self, key: int) -> bytes:
        """32 random bytes for a record: its fields are indexed from these."""
        hasher = self._hasher.copy()
        hasher.update(key.to_bytes(8, "little"))
        return hasher.digest()

    def public_id(self, key: int) -> Any:
        return key

    def key_of(self, public_id: Any) -> int:
        """The internal integer key of an id as the API shows it."""
        if isinstance(public_id, bool) or not isinstance(public_id, int):
            raise KeyError(f"{self.resource}: no record with id {public_id!r}")
        return public_id

    def encode(self, key: int, created_ms: int, updated_ms: int, deleted: bool) -> str:
        raise NotImplementedError

    def fresh(self, key: int, now_ms: int) -> dict[str, Any]:
        """A record created just now (``created_at == updated_at == now``)."""
        return json.loads(self.encode(key, now_ms, now_ms, False))


class PrefixedIdFactory(RecordFactory):
    """Resources whose ids are strings like ``INC0000042``: numbered internally."""

    prefix: str
    width: int

    def public_id(self, key: int) -> str:
        return f"{self.prefix}{key:0{self.width}d}"

    def key_of(self, public_id: Any) -> int:
        if isinstance(public_id, str) and public_id.startswith(self.prefix) and public_id[len(self.prefix):].isdigit():
            return int(public_id[len(self.prefix):])
        raise KeyError(f"{self.resource}: no record with id {public_id!r}")


def _weighted(choices: dict[str, int]) -> tuple[str, ...]:
    """A 256-entry lookup table: one random byte picks a value with the given weights."""
    total = sum(choices.values())
    table: list[str] = []
    for value, weight in choices.items():
        table.extend([value] * round(256 * weight / total))
    return tuple((table + table[-1:] * 256)[:256])


_TICKET_STATUS_RECENT = _weighted({"new": 25, "open": 30, "pending": 15, "on_hold": 10, "solved": 15, "closed": 5})
_TICKET_STATUS_OLD = _weighted({"closed": 70, "solved": 20, "open": 4, "pending": 3, "on_hold": 2, "new": 1})
_PRIORITY = _weighted({"null": 20, '"low"': 25, '"normal"': 35, '"high"': 15, '"urgent"': 5})
_INCIDENT_STATUS_RECENT = _weighted({"triggered": 35, "acknowledged": 35, "resolved": 30})
_INCIDENT_STATUS_OLD = _weighted({"resolved": 96, "acknowledged": 2, "triggered": 2})
_SERVICE_STATUS = _weighted({"active": 80, "maintenance": 10, "disabled": 10})
# The values these fields take, for the changes the simulator makes itself (churn.py).
TICKET_STATUSES = tuple(dict.fromkeys(_TICKET_STATUS_RECENT))
TICKET_PRIORITIES = tuple(json.loads(priority) for priority in dict.fromkeys(_PRIORITY))
INCIDENT_STATUSES = tuple(dict.fromkeys(_INCIDENT_STATUS_RECENT))
_SUBJECTS = vocab.combined(vocab.TICKET_AREAS, vocab.TICKET_PROBLEMS)
_TITLES = vocab.combined(vocab.COMPONENTS, vocab.SYMPTOMS)
_SERVICE_NAMES = vocab.combined(vocab.COMPONENTS, vocab.SERVICE_SUFFIXES, separator="")
_SERVICE_DESCRIPTIONS = tuple(vocab.jtext(text) for text in vocab.SERVICE_DESCRIPTIONS)
_NULL_BELOW = 51  # a digest byte below this (about 20% of 256) makes a nullable field null


class TicketFactory(RecordFactory):
    resource = "tickets"
    fields = ("id", "subject", "description", "status", "priority", "customer_id", "assignee_id",
              "tags", "custom_fields", "created_at", "updated_at", "deleted_at")
    soft_deletes = True

    def __init__(self, seed: int, epoch_ms: int) -> None:
        super().__init__(seed, epoch_ms)
        self._descriptions = vocab.description_pool(seed)
        self._tags = vocab.tag_sets()
        self._custom = vocab.custom_field_sets()

    def encode(self, key: int, created_ms: int, updated_ms: int, deleted: bool) -> str:
        """Written flat (inline digest, bit operations, table lookups) because it is the
        hot path of an uncached page: about 2 us a ticket."""
        hasher = self._hasher.copy()
        hasher.update(key.to_bytes(8, "little"))
        d = hasher.digest()
        status = (_TICKET_STATUS_RECENT if self.epoch_ms - created_ms < RECENT_MS else _TICKET_STATUS_OLD)[d[0]]
        subject = _SUBJECTS[(d[1] | d[2] << 8) % len(_SUBJECTS)]
        if d[3] < 26:
            subject = f"{subject} (ref {d[4] | d[5] << 8})"
        description = "null" if d[6] < 46 else self._descriptions[(d[7] | d[8] << 8) % len(self._descriptions)]
        assignee = "null" if d[9] < _NULL_BELOW else (d[10] | d[11] << 8) % 500 + 1
        product = 6 if d[14] < _NULL_BELOW else d[15] % 6  # index 6 is null
        sla = 5 if d[16] < _NULL_BELOW else d[17] % 5  # index 5 is null
        updated = iso_ms(updated_ms)
        deleted_at = f'"{updated}"' if deleted else "null"
        return (
            f'{{"id":{key},"subject":"{subject}","description":{description},"status":"{status}",'
            f'"priority":{_PRIORITY[d[18]]},"customer_id":{(d[19] | d[20] << 8 | d[21] << 16) % 50_000 + 1},'
            f'"assignee_id":{assignee},"tags":{self._tags[d[22] % len(self._tags)]},'
            f'"custom_fields":{self._custom[((d[13] % 5) * 7 + product) * 6 + sla]},'
            f'"created_at":"{iso_ms(created_ms)}","updated_at":"{updated}","deleted_at":{deleted_at}}}'
        )

    def fresh(self, key: int, now_ms: int) -> dict[str, Any]:
        record = super().fresh(key, now_ms)
        record["status"] = "new"
        return record


class IncidentFactory(PrefixedIdFactory):
    resource = "incidents"
    fields = ("id", "title", "status", "urgency", "service_id", "assignees", "created_at",
              "updated_at", "acknowledged_at", "resolved_at")
    prefix = "INC"
    width = 7

    def __init__(self, seed: int, epoch_ms: int, services: ServiceFactory, service_count: int) -> None:
        super().__init__(seed, epoch_ms)
        self._services = services
        self._service_count = max(service_count, 1)
        self._assignees = vocab.assignee_sets()

    def encode(self, key: int, created_ms: int, updated_ms: int, deleted: bool) -> str:
        d = self.digest(key)
        recent = self.epoch_ms - created_ms < 3 * DAY_MS
        status = (_INCIDENT_STATUS_RECENT if recent else _INCIDENT_STATUS_OLD)[d[0]]
        acknowledged, resolved = self._lifecycle(status, d, created_ms, updated_ms)
        service_id = self._services.public_id((d[4] | d[5] << 8 | d[6] << 16) % self._service_count + 1)
        return (
            f'{{"id":"{self.public_id(key)}","title":"{_TITLES[(d[1] | d[2] << 8) % len(_TITLES)]}",'
            f'"status":"{status}","urgency":"{"high" if d[3] < 90 else "low"}","service_id":"{service_id}",'
            f'"assignees":{self._assignees[d[8] % len(self._assignees)]},'
            f'"created_at":"{iso_ms(created_ms)}","updated_at":"{iso_ms(updated_ms)}",'
            f'"acknowledged_at":{acknowledged},"resolved_at":{resolved}}}'
        )

    @staticmethod
    def _lifecycle(status: str, d: bytes, created_ms: int, updated_ms: int) -> tuple[str, str]:
        """acknowledged_at/resolved_at as JSON, consistent with the status and never after
        updated_at: a resolved incident was resolved by its last change, and 1 in 5 was
        resolved without ever being acknowledged."""
        if status == "triggered":
            return "null", "null"
        ack_ms = created_ms + (updated_ms - created_ms) * d[9] // 256
        if status == "acknowledged":
            return f'"{iso_ms(ack_ms)}"', "null"
        acknowledged = "null" if d[10] < _NULL_BELOW else f'"{iso_ms(ack_ms)}"'
        return acknowledged, f'"{iso_ms(updated_ms)}"'

    def fresh(self, key: int, now_ms: int) -> dict[str, Any]:
        record = super().fresh(key, now_ms)
        record.update(status="triggered", acknowledged_at=None, resolved_at=None)
        return record


class ServiceFactory(PrefixedIdFactory):
    resource = "services"
    fields = ("id", "name", "description", "status", "escalation_policy_id", "created_at", "updated_at")
    prefix = "SVC"
    width = 4

    def encode(self, key: int, created_ms: int, updated_ms: int, deleted: bool) -> str:
        d = self.digest(key)
        description = "null" if d[2] < _NULL_BELOW else _SERVICE_DESCRIPTIONS[d[3] % len(_SERVICE_DESCRIPTIONS)]
        policy = "null" if d[4] < _NULL_BELOW else f'"EP{d[5] % 40 + 1:03d}"'
        return (
            f'{{"id":"{self.public_id(key)}","name":"{_SERVICE_NAMES[(d[0] | d[1] << 8) % len(_SERVICE_NAMES)]}",'
            f'"description":{description},"status":"{_SERVICE_STATUS[d[6]]}","escalation_policy_id":{policy},'
            f'"created_at":"{iso_ms(created_ms)}","updated_at":"{iso_ms(updated_ms)}"}}'
        )
