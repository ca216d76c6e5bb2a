"""Mutations: how a test (or a hook, mid-sync) changes what the vendor holds.

Records are created, updated, soft-deleted or removed with the timestamps a real vendor would
write, from the vendor's clock (``clock.py``); and the shape of every record can change the way
a vendor's API drifts: a field added to all records, or a field's values transformed (e.g. a
type change). A mutated record replaces its generated one in its store (``store.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svcdesk_simulator.clock import Clock
from svcdesk_simulator.store import ResourceStore
from svcdesk_simulator.vendor import VendorData


class Mutations:
    """Changes to the vendor's stores, each under the stores' lock."""

    def __init__(self, data: VendorData, clock: Clock) -> None:
        self._data = data
        self._clock = clock

    def create(self, resource: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """A new record with the next id, created and updated now, ``overrides`` applied."""
        store = self._data.store(resource)
        with self._data.lock:
            _check_fields(store, overrides)
            key = store.max_key + 1
            record = store.factory.fresh(key, self._clock.now_ms())
            record.update(overrides)
            store.put(key, record)
            return store.served([key])[0]

    def update(self, resource: str, record_id: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a record; ``updated_at`` becomes now unless given explicitly."""
        store = self._data.store(resource)
        with self._data.lock:
            _check_fields(store, fields)
            key = store.factory.key_of(record_id)
            record = store.core(key)
            record.update({"updated_at": self._clock.now(), **fields})
            store.put(key, record)
            return store.served([key])[0]

    def delete_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Soft delete: ``deleted_at`` and ``updated_at`` become now."""
        now = self._clock.now()
        return self.update("tickets", ticket_id, {"deleted_at": now, "updated_at": now})

    def create_incident(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """A new triggered incident; its ``service_id`` is a live service unless given."""
        with self._data.lock:
            if "service_id" not in overrides:
                overrides["service_id"] = self._live_service_id()
            return self.create("incidents", overrides)

    def update_incident(self, incident_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Also stamps ``acknowledged_at``/``resolved_at`` as the status moves (``_lifecycle_stamps``)."""
        with self._data.lock:
            store = self._data.store("incidents")
            current = store.core(store.factory.key_of(incident_id))
            now = self._clock.now()  # one reading, so the stamps equal updated_at
            stamps = _lifecycle_stamps(current["status"], fields.get("status", current["status"]), now)
            return self.update("incidents", incident_id, {"updated_at": now, **stamps, **fields})

    def remove_service(self, service_id: str) -> None:
        """The service disappears from every listing; incidents keep referencing it."""
        store = self._data.store("services")
        with self._data.lock:
            store.remove(store.factory.key_of(service_id))

    def add_extra_field(self, resource: str, name: str, value: Any) -> None:
        """Every record of ``resource`` gains field ``name``; ``value`` may be a callable."""
        with self._data.lock:
            self._data.store(resource).add_extra_field(name, value)

    def set_field_transform(self, resource: str, field: str, fn: Callable[[Any], Any]) -> None:
        """Every served record's ``field`` becomes ``fn(value)``."""
        with self._data.lock:
            self._data.store(resource).set_field_transform(field, fn)

    def _live_service_id(self) -> str:
        store = self._data.store("services")
        first = next(store.keys(None), None)
        if first is None:
            raise ValueError("no live service to attach the incident to; pass service_id")
        return store.factory.public_id(first)


def _check_fields(store: ResourceStore, fields: dict[str, Any]) -> None:
    allowed = (set(store.factory.fields) | store.extra_field_names) - {"id"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"{store.factory.resource}: no settable field(s) {unknown}; allowed: {sorted(allowed)}")


def _lifecycle_stamps(old_status: str, status: str, now: str) -> dict[str, Any]:
    """What a status change stamps: ``acknowledged_at``/``resolved_at`` become ``now`` when the
    status moves to acknowledged/resolved, and a re-trigger clears them; fields the caller
    gives explicitly win over these."""
    if status == old_status:
        return {}
    if status == "triggered":
        return {"acknowledged_at": None, "resolved_at": None}
    if status == "acknowledged":
        return {"acknowledged_at": now, "resolved_at": None}
    return {"resolved_at": now} if status == "resolved" else {}
