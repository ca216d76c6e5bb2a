"""The current state of one resource: generated base records plus in-memory mutations.

Served records are kept as pre-serialised UTF-8 JSON so that a page body is a byte join:
base records in a byte-bounded cache of 100-record chunks (generated on a miss), mutated
records in a dict. Ground-truth dicts are decoded from those same bytes, so they always equal what
the API serves. Not thread-safe on its own: ``vendor.VendorData`` holds the lock that serialises access.
"""

from __future__ import annotations

import copy
import json
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from svcdesk_simulator.data import RecordFactory, Timeline
from svcdesk_simulator.index import BaseSet, Matches
from svcdesk_simulator.timestamps import parse_iso_ms

CHUNK = 100  # base records generated and cached together (one default-sized page)
_QUERY_CACHE_SIZE = 8  # distinct updated_since values whose match sets are kept
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, the wire format of every simulator body."""
    return _ENCODER.encode(value).encode()


class _State(NamedTuple):
    """What the index needs to know about a mutated record."""

    updated_ms: int
    deleted: bool
    gone: bool  # removed service: in no listing at all

    def matches(self, since_ms: int | None) -> bool:
        if self.gone:
            return False
        return not self.deleted if since_ms is None else self.updated_ms >= since_ms


class _Lru(OrderedDict):
    """An OrderedDict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def lookup(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def store(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self._size:
            self.popitem(last=False)


class _ChunkCache:
    """Serialised base records by chunk, bounded by total bytes.

    Once full it admits nothing more rather than evicting: base records never change, and
    a client sync is a sequential scan, which under LRU would evict every chunk just before
    it is needed again (zero hits once the data outgrows the cache). Kept this way, repeated
    syncs hit the cached share and memory stays flat, without churn, at any data size.
    """

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._chunks: dict[int, list[bytes]] = {}
        self._bytes = 0

    def get(self, index: int) -> list[bytes] | None:
        return self._chunks.get(index)

    def put(self, index: int, chunk: list[bytes]) -> None:
        size = sum(map(len, chunk))
        if self._bytes + size <= self._budget:
            self._chunks[index] = chunk
            self._bytes += size

    def clear(self) -> None:
        self._chunks.clear()
        self._bytes = 0


class ResourceStore:
    """One resource (tickets, incidents or services) as the vendor holds it now.

    Internal keys are integers 1..max_key; ``factory`` maps them to public ids. Base
    records 1..n come from the factory and ``timeline``; ``hidden`` lists the base records
    generated soft-deleted. A mutated or created record replaces its base record entirely.
    """

    def __init__(self, factory: RecordFactory, timeline: Timeline, hidden: array, cache_bytes: int) -> None:
        self.factory = factory
        self.timeline = timeline
        self.n = timeline.n
        self.max_key = timeline.n
        self._hidden = hidden
        self._hidden_set = frozenset(hidden)
        self._records: dict[int, dict[str, Any]] = {}
        self._states: dict[int, _State] = {}
        self._record_json: dict[int, bytes] = {}
        self._chunks = _ChunkCache(cache_bytes)
        self._base_sets = _Lru(_QUERY_CACHE_SIZE)
        self._matches = _Lru(_QUERY_CACHE_SIZE)
        self._version = 0
        self._extras: dict[str, Any] = {}
        self._transforms: dict[str, Callable[[Any], Any]] = {}

    # -- reading -------------------------------------------------------------------

    def page(self, since_ms: int | None, offset: int, limit: int) -> tuple[list[bytes], int]:
        """Serialised records of one page and the listing's current total."""
        matches = self._current_matches(since_ms)
        return self.records_json(matches.page(offset, limit)), matches.total

    def keys(self, since_ms: int | None = None) -> Iterator[int]:
        """Keys of a listing, ascending, as of now (later mutations are not reflected)."""
        return self._current_matches(since_ms).iter_from(1)

    def records_json(self, keys: Iterable[int]) -> list[bytes]:
        """Served bytes of existing records, given in ascending order: each base chunk is
        looked up, or generated when not cached, once for all its keys."""
        records: list[bytes] = []
        index, chunk = -1, []
        for key in keys:
            if key in self._states:
                records.append(self._mutated_json(key))
                continue
            if (key - 1) // CHUNK != index:
                index = (key - 1) // CHUNK
                chunk = self._chunk(index)
            records.append(chunk[key - 1 - index * CHUNK])
        return records

    def served(self, keys: Iterable[int]) -> list[dict[str, Any]]:
        """Records exactly as the API serves them (decoded from the served bytes)."""
        return [json.loads(record) for record in self.records_json(keys)]

    def exists(self, key: int) -> bool:
        """Whether the record exists (soft-deleted tickets do; removed services do not)."""
        state = self._states.get(key)
        return not state.gone if state is not None else 1 <= key <= self.n

    def core(self, key: int) -> dict[str, Any]:
        """A record's own fields (without added fields or transforms), as a fresh dict."""
        if not self.exists(key):
            raise KeyError(f"{self.factory.resource}: no record with id {self.factory.public_id(key)!r}")
        if key in self._records:
            return copy.deepcopy(self._records[key])
        return json.loads(self._base_text(key))

    @property
    def extra_field_names(self) -> set[str]:
        return set(self._extras)

    # -- writing -------------------------------------------------------------------

    def put(self, key: int, record: dict[str, Any]) -> None:
        """Replace (or create) a record; ``updated_at`` must already be set by the caller."""
        deleted = self.factory.soft_deletes and record.get("deleted_at") is not None
        state = _State(parse_iso_ms(record["updated_at"]), deleted, gone=False)
        self._records[key] = record
        self._states[key] = state
        self._record_json.pop(key, None)
        self.max_key = max(self.max_key, key)
        self._version += 1

    def remove(self, key: int) -> None:
        """Make a record vanish from every listing (services are removed, not soft-deleted)."""
        self.core(key)  # KeyError if it does not exist
        self._records.pop(key, None)
        self._record_json.pop(key, None)
        self._states[key] = _State(0, deleted=False, gone=True)
        self._version += 1

    def add_extra_field(self, name: str, value: Any) -> None:
        if name in self.factory.fields:
            raise ValueError(f"{name!r} is already a {self.factory.resource} field; use set_field_transform")
        if not callable(value):
            encode_json(value)  # fail here, not in the server thread, if it is not JSON
        self._extras[name] = value
        self._forget_serialised()

    def set_field_transform(self, name: str, fn: Callable[[Any], Any]) -> None:
        self._transforms[name] = fn
        self._forget_serialised()

    # -- internals -----------------------------------------------------------------

    def _chunk(self, index: int) -> list[bytes]:
        chunk = self._chunks.get(index)
        if chunk is None:
            first = index * CHUNK + 1
            stop = min(first + CHUNK, self.n + 1)
            times = self.timeline.times(first, stop)
            chunk = [self._serve_base(key, *kt) for key, kt in zip(range(first, stop), times)]
            self._chunks.put(index, chunk)
        return chunk

    def _mutated_json(self, key: int) -> bytes:
        cached = self._record_json.get(key)
        if cached is None:
            cached = self._record_json[key] = self._serve(copy.deepcopy(self._records[key]))
        return cached

    def _base_text(self, key: int) -> str:
        return self.factory.encode(key, self.timeline.created(key), self.timeline.updated(key), key in self._hidden_set)

    def _serve_base(self, key: int, created_ms: int, updated_ms: int) -> bytes:
        text = self.factory.encode(key, created_ms, updated_ms, key in self._hidden_set)
        if not (self._extras or self._transforms):
            return text.encode()
        return self._serve(json.loads(text))

    def _serve(self, record: dict[str, Any]) -> bytes:
        """Apply added fields and transforms (the vendor's schema changes) and serialise."""
        for name, value in self._extras.items():
            if name not in record:
                record[name] = value(record) if callable(value) else value
        for name, fn in self._transforms.items():
            if name in record:
                record[name] = fn(record[name])
        return encode_json(record)

    def _forget_serialised(self) -> None:
        self._chunks.clear()
        self._record_json.clear()

    def _current_matches(self, since_ms: int | None) -> Matches:
        cached = self._matches.lookup(since_ms)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        base = self._base_set(since_ms)
        added, dropped = [], []
        for key, state in self._states.items():
            now, before = state.matches(since_ms), key <= self.n and base.contains(key)
            if now and not before:
                added.append(key)
            elif before and not now:
                dropped.append(key)
        matches = Matches(base, added, dropped, self.max_key)
        self._matches.store(since_ms, (self._version, matches))
        return matches

    def _base_set(self, since_ms: int | None) -> BaseSet:
        base = self._base_sets.lookup(since_ms)
        if base is None:
            if since_ms is None:
                base = BaseSet(array("q"), 1, self.n, self._hidden)
            else:
                head, lo = self.timeline.updated_at_or_after(since_ms)
                base = BaseSet(head, lo, self.n, array("q"))
            self._base_sets.store(since_ms, base)
        return base
