"""The request budget: each API key may make N requests per window, as a vendor's plan allows
(docs/contract.md, "Request budget and RateLimit-* headers").

Windows are fixed and aligned to the vendor's clock (``clock.py``): window number
``floor(now / window_seconds)``, so moving ``Simulator.clock_offset`` by a window starts a
fresh one. Each API has one key (``routing.ApiKeys``), so each API has its own counter; the
incident management key's counter is shared by incidents and services.

What is counted, in the order the router (``routing.py``) asks: an injected fault
(``faults.py``) answers first and counts nothing; a missing or wrong key (401) counts nothing
and announces nothing; then the budget decides. An admitted request counts, whatever its
answer (200, or 400 for a bad query); a refused one (429) does not. Every answer after the
key check announces the budget in the chosen header style, ``Remaining`` being what is left
after this request. ``Reset`` and a 429's ``Retry-After`` are the seconds until the next
window starts, rounded up: from 1 to ``ceil(window_seconds)``, never 0, so a client that
waits that long always finds a fresh window.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from svcdesk_simulator.clock import Clock

RATE_LIMIT_HEADER_STYLES = {  # style: the names of (limit, remaining, reset)
    "ietf": ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
    "x-ratelimit": ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"),
    "x-rate-limit": ("X-Rate-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"),
    "none": (),  # enforced, announced in no header
}

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Budget:
    """``requests`` per API key in each window of ``window_seconds``, announced in the
    ``headers`` style (a key of ``RATE_LIMIT_HEADER_STYLES``)."""

    requests: int
    window_seconds: float
    headers: str = "ietf"

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or not isinstance(self.requests, int) or self.requests < 1:
            raise ValueError(f"requests must be a whole number >= 1, not {self.requests!r}")
        if not 0 < self.window_seconds < math.inf:
            raise ValueError(f"window_seconds must be a positive number, not {self.window_seconds!r}")
        if self.headers not in RATE_LIMIT_HEADER_STYLES:
            raise ValueError(f"headers must be one of {sorted(RATE_LIMIT_HEADER_STYLES)}, not {self.headers!r}")

    @property
    def header_names(self) -> tuple[str, ...]:
        """The names of the limit, remaining and reset headers (none for "none")."""
        return RATE_LIMIT_HEADER_STYLES[self.headers]

    def announce(self, remaining: int, reset_seconds: int) -> Headers:
        """The budget headers of one answer."""
        return tuple(zip(self.header_names, (str(self.requests), str(remaining), str(reset_seconds))))


@dataclass(frozen=True)
class Allowance:
    """The budget's verdict on one request: whether it may be answered, the headers that
    announce the budget, and the seconds until the window resets (a 429's Retry-After)."""

    admitted: bool
    headers: Headers = ()
    reset_seconds: int = 0


UNLIMITED = Allowance(admitted=True)


class RequestBudget:
    """The counters of the budget in force (or none), one per API; thread-safe, since
    every connection thread spends from them."""

    def __init__(self, clock: Clock, budget: Budget | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.configure(budget)

    def configure(self, budget: Budget | None) -> None:
        """Put ``budget`` in force (None: no budget), every counter starting afresh."""
        with self._lock:
            self._budget = budget
            self._spent: dict[str, tuple[int, int]] = {}  # api: (window number, requests admitted)

    def spend(self, api: str) -> Allowance:
        """Admit one request of ``api``'s key if its window has budget left, and count it."""
        if self._budget is None:  # the common case, without the lock
            return UNLIMITED
        with self._lock:
            budget = self._budget
            if budget is None:
                return UNLIMITED
            window, reset_seconds = _window_at(self._clock.now_ms(), budget.window_seconds)
            spent_window, spent = self._spent.get(api, (window, 0))
            spent = spent if spent_window == window else 0
            admitted = spent < budget.requests
            if admitted:
                spent += 1
            self._spent[api] = (window, spent)
            return Allowance(admitted, budget.announce(budget.requests - spent, reset_seconds), reset_seconds)


def _window_at(now_ms: int, window_seconds: float) -> tuple[int, int]:
    """The number of the window ``now_ms`` falls in, and the whole seconds (rounded up,
    at least 1) until the next one starts."""
    window_ms = window_seconds * 1000
    window = math.floor(now_ms / window_ms)
    return window, max(1, math.ceil(((window + 1) * window_ms - now_ms) / 1000))
