"""Listings and paging: a page of a resource for one query, and the same records as dicts.

A page is ``offset``/``limit`` over the records a query matches (all live ones, or, for tickets
and incidents, those updated since ``updated_since``), with the listing's exact ``total`` at
that moment. The page body is assembled from the stores' pre-serialised bytes (``store.py``);
tests' ground truth (``Simulator.live_tickets`` and the like) reads the same listings, so it
equals what the API serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from svcdesk_simulator.timestamps import parse_iso_ms
from svcdesk_simulator.vendor import VendorData

MAX_LIMIT = 100
_FILTERABLE = frozenset({"tickets", "incidents"})  # /v1/services ignores updated_since
_EVERYTHING = -(2**62)  # an updated_since older than any record: soft-deleted tickets included
_DIGITS = re.compile(r"[0-9]+")
_BATCH = 100  # records served per hold of the lock while iterating a listing


class BadRequest(Exception):
    """A query parameter the vendor rejects (400); the message names the parameter."""


class Listings:
    """Reads the vendor's stores as the API lists them, under the stores' lock."""

    def __init__(self, data: VendorData) -> None:
        self._data = data

    def page_body(self, resource: str, params: dict[str, str]) -> bytes:
        """The JSON body of one page: ``data``, ``total``, ``offset``, ``limit``.
        BadRequest for an invalid ``offset``, ``limit`` or ``updated_since``."""
        offset = _paging_value(params, "offset", 0, 0, None)
        limit = _paging_value(params, "limit", MAX_LIMIT, 1, MAX_LIMIT)
        since_ms = _since(resource, params)
        store = self._data.stores[resource]
        with self._data.lock:
            records, total = store.page(since_ms, offset, limit)
        tail = b'],"total":%d,"offset":%d,"limit":%d}' % (total, offset, limit)
        return b'{"data":[' + b",".join(records) + tail

    def iter_live(self, resource: str) -> Iterator[dict[str, Any]]:
        """What the plain listing shows now (soft-deleted and removed records excluded)."""
        return self._iter_listed(resource, None)

    def iter_all(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every record including soft-deleted ones (removed services stay out)."""
        return self._iter_listed(resource, _EVERYTHING)

    def get(self, resource: str, record_id: Any) -> dict[str, Any]:
        """One record as the API serves it (soft-deleted tickets included); KeyError if absent."""
        store = self._data.store(resource)
        with self._data.lock:
            key = store.factory.key_of(record_id)
            store.core(key)  # KeyError for unknown or removed records
            return store.served([key])[0]

    def _iter_listed(self, resource: str, since_ms: int | None) -> Iterator[dict[str, Any]]:
        """Records of a listing as of the call; served in batches so the lock is never held
        while the caller consumes them (records changed meanwhile show their new state)."""
        store = self._data.store(resource)
        with self._data.lock:
            keys = store.keys(since_ms)
        while True:
            with self._data.lock:
                taken = _take(keys, _BATCH)
                records = store.served(key for key in taken if store.exists(key))
            if not taken:
                return
            yield from records


def requested_window(params: dict[str, str]) -> tuple[int | None, int | None]:
    """``offset`` and ``limit`` as a page will use them (defaults applied), None if invalid:
    what the request log records, whether or not the request gets that far."""
    return (
        _lenient_paging_value(params, "offset", 0, 0, None),
        _lenient_paging_value(params, "limit", MAX_LIMIT, 1, MAX_LIMIT),
    )


def _paging_value(params: dict[str, str], name: str, default: int, lowest: int, highest: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) and lowest <= int(raw) <= (highest if highest is not None else int(raw)):
        return int(raw)
    bounds = f"from {lowest} to {highest}" if highest is not None else f">= {lowest}"
    raise BadRequest(f"invalid {name} {raw!r}: must be an integer {bounds}")


def _lenient_paging_value(
    params: dict[str, str], name: str, default: int, lowest: int, highest: int | None
) -> int | None:
    try:
        return _paging_value(params, name, default, lowest, highest)
    except BadRequest:
        return None


def _since(resource: str, params: dict[str, str]) -> int | None:
    raw = params.get("updated_since")
    if raw is None or resource not in _FILTERABLE:
        return None
    try:
        return parse_iso_ms(raw)
    except ValueError:
        raise BadRequest(
            f"invalid updated_since {raw!r}: must be an ISO 8601 timestamp with a UTC offset, "
            "e.g. 2026-11-20T08:15:02.517Z"
        ) from None


def _take(iterator: Iterator[int], n: int) -> list[int]:
    return [key for _, key in zip(range(n), iterator)]
