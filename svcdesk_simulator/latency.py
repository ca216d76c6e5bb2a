"""Latency: how long each answer takes to come back from a vendor far away (docs/contract.md,
"Latency"), so a client's waiting, and what it does about it, can be seen on loopback.

``Latency`` only says how long; the router (``routing.py``) waits that long on the
request's own connection thread, holding no lock, so requests on separate connections wait
side by side. Jitter is drawn from a generator seeded from the simulator's seed, one draw per
answer: the same sequence of requests gets the same delays.
"""

from __future__ import annotations

import math
import random
import threading


class Latency:
    """The delay of every answer: ``latency_ms`` plus a uniform draw in +-``jitter_ms``."""

    def __init__(self, seed: int, latency_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
        self._seed = seed
        self._lock = threading.Lock()  # guards the generator: answers draw concurrently
        self.set(latency_ms, jitter_ms)

    def set(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every answer by ``latency_ms`` +- ``jitter_ms`` (0 switches it off); the
        jitter's generator restarts from the seed. ``jitter_ms`` may not exceed ``latency_ms``."""
        if not 0 <= latency_ms < math.inf or not 0 <= jitter_ms <= latency_ms:
            raise ValueError(
                f"latency_ms must be >= 0 and jitter_ms from 0 to latency_ms, not {latency_ms!r} and {jitter_ms!r}"
            )
        with self._lock:
            self._seconds, self._jitter = latency_ms / 1000, jitter_ms / 1000
            self._rng = random.Random(f"{self._seed}:latency")

    def next_delay(self) -> float:
        """Seconds the next answer waits before it is sent."""
        if not self._seconds:  # the common case, without the lock
            return 0.0
        with self._lock:
            if not self._jitter:
                return self._seconds
            return self._seconds + self._rng.uniform(-self._jitter, self._jitter)
