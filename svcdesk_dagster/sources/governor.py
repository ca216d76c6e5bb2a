"""The request budget of one API key, kept by every request this process sends with that key.

A vendor gives each key N requests per window and answers `429` past it (docs/contract.md,
Request budget). dlt has no client-side rate limiting: a client learns the budget from its 429s,
and each 429 costs a retry's wait. The governor spends the budget instead of discovering it:

- **Announced budget.** Every answer's `RateLimit-*` headers (or the vendor's variant) say what
  is left in the window and when it starts afresh. The governor lets a request go only while
  the window has some left after the requests already in flight, and otherwise waits for the
  window to start afresh.
- **Configured budget** (`requests_per_minute`, for a vendor that announces nothing): at most
  that many requests in any 60 seconds, which no fixed window of the vendor's can exceed.
- When both are known, both hold, so the lower wins.

One governor per key and base URL, shared by every resource, every concurrent page read and
every retry in the process (`governor_for`): the transport adapter asks it before each attempt
(`http.py`). A 429 that still comes is retried as before; it is then the exception, not the way
the budget is learned.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

WINDOW_OF_A_MINUTE = 60.0
RESET_MARGIN = 0.05
"""Added to an announced reset: a request sent a hair early would be counted in the old window."""
WAIT_WHEN_UNKNOWN = 0.05
"""How long a request waits, when the window is spent and its end is not announced, before it
asks again."""


@dataclass(frozen=True)
class Announcement:
    """What one answer said of the budget."""

    limit: int | None
    remaining: int | None
    reset_seconds: float | None


class RateGovernor:
    """Paces the requests of one API key (module docstring)."""

    def __init__(
        self,
        headers: tuple[str, str, str],
        requests_per_minute: float | None = None,
        clock=time.monotonic,  # type: ignore[no-untyped-def]
        sleep=time.sleep,  # type: ignore[no-untyped-def]
    ) -> None:
        self.headers = headers
        self.requests_per_minute = requests_per_minute
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._left: int | None = None
        """Requests the window still allows, those in flight already taken off."""
        self._window_ends: float | None = None
        self._in_flight = 0
        self._sent: deque[float] = deque()
        self.waited_seconds = 0.0

    @property
    def budget_left(self) -> int | None:
        """What the current window still allows, as last announced and spent since (None when
        the vendor announced nothing)."""
        with self._lock:
            return self._left

    @property
    def budget_limit(self) -> int | None:
        with self._lock:
            return self._limit

    def acquire(self) -> None:
        """Returns when a request may be sent, and counts it as in flight."""
        while True:
            with self._lock:
                wait = self._wait_needed(self._clock())
                if wait <= 0:
                    self._take(self._clock())
                    return
            self.waited_seconds += wait
            self._sleep(wait)

    def release(self, answer_headers: Mapping[str, str] | None) -> None:
        """The request ended: with an answer (its headers), or without one (None)."""
        now = self._clock()
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if answer_headers is not None:
                self._learn(read_announcement(answer_headers, self.headers), now)

    # -- helpers ------------------------------------------------------------------------------

    def _wait_needed(self, now: float) -> float:
        if self._window_ends is not None and now >= self._window_ends:
            self._start_new_window()
        waits = [0.0]
        if self._left is not None and self._left <= 0:
            waits.append(
                self._window_ends - now if self._window_ends is not None else WAIT_WHEN_UNKNOWN
            )
        if self.requests_per_minute:
            while self._sent and now - self._sent[0] >= WINDOW_OF_A_MINUTE:
                self._sent.popleft()
            if len(self._sent) >= self.requests_per_minute:
                waits.append(self._sent[0] + WINDOW_OF_A_MINUTE - now)
        return max(waits)

    def _take(self, now: float) -> None:
        self._in_flight += 1
        if self._left is not None:
            self._left -= 1
        if self.requests_per_minute:
            self._sent.append(now)

    def _start_new_window(self) -> None:
        """The announced window ended: the next one allows `limit` again, the requests still in
        flight (sent in the old window, maybe counted in the new one) taken off."""
        self._left = None if self._limit is None else self._limit - self._in_flight
        self._window_ends = None

    def _learn(self, said: Announcement, now: float) -> None:
        if said.limit is not None:
            self._limit = said.limit
        if said.remaining is None:
            return
        # Answers overtake each other: the vendor counted this one, maybe not the others in
        # flight. Take them off what it says is left, and never trust an older, larger figure
        # within the same window.
        left = said.remaining - self._in_flight
        ends = now + said.reset_seconds + RESET_MARGIN if said.reset_seconds is not None else None
        if ends is not None and self._window_ends is not None and ends < self._window_ends - 1.0:
            return  # an answer from a window that has ended since: what it says is stale
        new_window = (
            self._window_ends is None
            or (ends is not None and ends > self._window_ends + 1.0)
        )
        self._left = left if new_window or self._left is None else min(self._left, left)
        if ends is not None:
            # Vendors round the reset up: within a window, the earliest end said is the truest.
            self._window_ends = ends if new_window else min(self._window_ends or ends, ends)


def read_announcement(headers: Mapping[str, str], names: tuple[str, str, str]) -> Announcement:
    """The budget an answer announces in the header names `names` (limit, remaining, reset)."""
    limit, remaining, reset = (_number(headers.get(name)) for name in names)
    if reset is not None and reset > 10**9:  # an epoch time, as some vendors send, not seconds
        reset = max(0.0, reset - time.time())
    return Announcement(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset_seconds=reset,
    )


def _number(value: str | None) -> float | None:
    """A header's number; a list such as `1200, 1200;w=60` gives its first item."""
    if value is None:
        return None
    first = value.split(",")[0].split(";")[0].strip()
    try:
        number = float(first)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


_GOVERNORS: dict[tuple[str, str], RateGovernor] = {}
_GOVERNORS_LOCK = threading.Lock()


def governor_for(
    base_url: str,
    api_key: str,
    headers: tuple[str, str, str],
    requests_per_minute: float | None,
) -> RateGovernor:
    """The governor of the key `api_key` at `base_url` in this process, made on first use and
    given the settings in force now. The key is kept only as a digest."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    with _GOVERNORS_LOCK:
        governor = _GOVERNORS.get((base_url, digest))
        if governor is None:
            governor = _GOVERNORS[(base_url, digest)] = RateGovernor(headers, requests_per_minute)
        governor.headers = headers
        governor.requests_per_minute = requests_per_minute
        return governor
