"""Fault injection: the failures the contract says a client must survive, on demand.

``Faults`` only *decides* what happens to a request (``decide`` returns a ``Decision``);
the server carries it out. Decisions are deterministic for a given sequence of requests:
one-shot faults are consumed first-in first-out, and ``random`` draws from its own seeded
generator, one draw per request. Everything is guarded by a lock because the server
answers each connection on its own thread.

Precedence when several are armed: outage, then one-shot faults, then random faults, then
the rate limit. ``slow`` delays whatever the answer is, and the latency (``latency.py``) comes
on top of it. Faults come before the vendor itself (``routing.py``): a faulted answer needs no
valid key, and neither spends nor announces the request budget (``budget.py``); "drop" and
"truncate" cut short the vendor's own answer, which did spend it.
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections import deque
from dataclasses import dataclass

RESOURCES = frozenset({"tickets", "incidents", "services"})
RANDOM_KINDS = frozenset({"500", "502", "503", "504", "429", "html_502", "drop", "truncate"})


@dataclass(frozen=True)
class Decision:
    """What to do with one request.

    ``kind``: None (answer normally), "error" (JSON error with ``status``), "html_502"
    (proxy page), "drop" (cut the connection mid-body), "truncate" (body shorter than its
    Content-Length) or "rate_limited" (429 with ``retry_after``). ``delay``: seconds to wait
    before answering.
    """

    kind: str | None = None
    status: int = 200
    retry_after: int = 0
    delay: float = 0.0


@dataclass
class _OneShot:
    kind: str
    remaining: int
    resource: str | None


def _check_resource(resource: str | None) -> None:
    if resource is not None and resource not in RESOURCES:
        raise ValueError(f"resource must be one of {sorted(RESOURCES)} or None, not {resource!r}")


def _check_count(n: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")


def _decision_for(kind: str, delay: float) -> Decision:
    """A random or one-shot fault kind ("503", "html_502", "drop", ...) as a decision."""
    if kind.isdigit():
        status = int(kind)
        return Decision("rate_limited" if status == 429 else "error", status, delay=delay)
    return Decision(kind, 502 if kind == "html_502" else 200, delay=delay)


class Faults:
    """Switches for transient failures; see the module docstring. Combine freely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def fail_next(self, n: int, status: int = 503, resource: str | None = None) -> None:
        """The next ``n`` requests (to ``resource``, or to any) answer ``status`` with the
        vendor's JSON error body (a 429 also gets ``Retry-After: 0``)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, not {status}")
        self._queue(str(status), n, resource)

    def html_502_next(self, n: int, resource: str | None = None) -> None:
        """The next ``n`` requests get a proxy's 502 page: HTML, not JSON."""
        self._queue("html_502", n, resource)

    def drop_next(self, n: int, resource: str | None = None) -> None:
        """The next ``n`` requests get headers and part of the body, then a connection reset."""
        self._queue("drop", n, resource)

    def truncate_next(self, n: int, resource: str | None = None) -> None:
        """The next ``n`` requests get a body shorter than its Content-Length, then EOF."""
        self._queue("truncate", n, resource)

    def slow(self, seconds: float, resource: str | None = None) -> None:
        """Delay every answer (to ``resource``, or to any) by ``seconds``; 0 switches it off."""
        _check_resource(resource)
        with self._lock:
            if seconds > 0:
                self._delays[resource] = seconds
            else:
                self._delays.pop(resource, None)

    def rate_limit(self, per_second: int, retry_after: int = 1) -> None:
        """Answer 429 (with ``Retry-After: retry_after``) to a request when ``per_second``
        requests were already let through in the last second. Rejected requests do not count."""
        if per_second < 1 or retry_after < 0:
            raise ValueError("per_second must be >= 1 and retry_after >= 0")
        with self._lock:
            self._rate = (per_second, int(retry_after))
            self._admitted.clear()

    def outage(self, status: int = 503, resource: str | None = None) -> None:
        """Every request (to ``resource``, or to any) answers ``status`` until ``clear()``."""
        _check_resource(resource)
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, not {status}")
        with self._lock:
            self._outages[resource] = status

    def random(
        self, rate: float, kinds: tuple[str, ...] = ("503", "html_502", "drop", "truncate"), seed: int = 0
    ) -> None:
        """Each request fails with probability ``rate``, with a kind drawn from ``kinds``
        (HTTP statuses as strings, "html_502", "drop", "truncate"). Same seed and same
        request sequence, same failures."""
        unknown = set(kinds) - RANDOM_KINDS
        if unknown or not kinds or not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1] and kinds a non-empty subset of {sorted(RANDOM_KINDS)}")
        with self._lock:
            self._random = (rate, tuple(kinds), _random.Random(seed))

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._one_shots: list[_OneShot] = []
            self._delays: dict[str | None, float] = {}
            self._outages: dict[str | None, int] = {}
            self._rate: tuple[int, int] | None = None
            self._admitted: deque[float] = deque()
            self._random: tuple[float, tuple[str, ...], _random.Random] | None = None

    def decide(self, resource: str) -> Decision:
        """Decide the fate of one request to ``resource`` (consumes one-shot faults)."""
        with self._lock:
            delay = max(self._delays.get(resource, 0.0), self._delays.get(None, 0.0))
            kind = self._outage_kind(resource) or self._one_shot_kind(resource) or self._random_kind()
            if kind is not None:
                return _decision_for(kind, delay)
            retry_after = self._rate_limited()
            if retry_after is not None:
                return Decision("rate_limited", 429, retry_after, delay)
            return Decision(delay=delay)

    def _queue(self, kind: str, n: int, resource: str | None) -> None:
        _check_count(n)
        _check_resource(resource)
        with self._lock:
            if n:
                self._one_shots.append(_OneShot(kind, n, resource))

    def _outage_kind(self, resource: str) -> str | None:
        status = self._outages.get(resource, self._outages.get(None))
        return None if status is None else str(status)

    def _one_shot_kind(self, resource: str) -> str | None:
        for shot in self._one_shots:
            if shot.resource in (None, resource):
                shot.remaining -= 1
                if not shot.remaining:
                    self._one_shots.remove(shot)
                return shot.kind
        return None

    def _random_kind(self) -> str | None:
        if self._random is None:
            return None
        rate, kinds, rng = self._random
        failed = rng.random() < rate
        kind = rng.choice(kinds)  # drawn every time so the sequence only depends on the count
        return kind if failed else None

    def _rate_limited(self) -> int | None:
        """The Retry-After to answer with if this request is over the limit, else None
        (and the request counts towards the rolling second)."""
        if self._rate is None:
            return None
        per_second, retry_after = self._rate
        now = time.monotonic()
        while self._admitted and self._admitted[0] <= now - 1.0:
            self._admitted.popleft()
        if len(self._admitted) >= per_second:
            return retry_after
        self._admitted.append(now)
        return None
