"""Which ids a listing matches, answered without scanning all ids.

A listing (plain, or ``updated_since=t``) matches a set of ids. It is kept as two layers:

* ``BaseSet``: what the *generated* data matches. It never changes, so it is computed
  once per query and cached: a sorted array of ids below ``lo`` plus the range
  ``lo..hi`` minus a sorted array of ``holes`` (soft-deleted base tickets in a plain listing).
* ``Matches``: the base set corrected by the mutations: ids ``added`` (changed or created
  records that now match) and ids ``dropped`` (base matches that no longer do). Rebuilt on
  the first query after a mutation, in O(number of mutated records).

Both answer ``rank(x)`` (members <= x) with a few bisections, so the member at a deep
offset is found by binary search over ids in O(log^2) and a page costs O(limit), whatever
the number of records or deletions.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice


@dataclass(frozen=True)
class BaseSet:
    """Ids ``head`` (sorted, all < lo) plus ``lo..hi`` except ``holes`` (sorted, within lo..hi)."""

    head: array
    lo: int
    hi: int
    holes: array
    hole_set: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hole_set", frozenset(self.holes))

    @property
    def total(self) -> int:
        return len(self.head) + max(0, self.hi - self.lo + 1) - len(self.holes)

    def contains(self, key: int) -> bool:
        if key < self.lo:
            at = bisect_left(self.head, key)
            return at < len(self.head) and self.head[at] == key
        return key <= self.hi and key not in self.hole_set

    def rank(self, x: int) -> int:
        in_range = max(0, min(x, self.hi) - self.lo + 1)
        return bisect_right(self.head, x) + in_range - bisect_right(self.holes, x)

    def iter_from(self, x: int) -> Iterator[int]:
        yield from islice(self.head, bisect_left(self.head, x), None)
        key = max(x, self.lo)
        holes, at = self.holes, bisect_left(self.holes, key)
        while key <= self.hi:
            if at < len(holes) and holes[at] == key:
                at += 1
            else:
                yield key
            key += 1


class Matches:
    """A ``BaseSet`` corrected by mutated records; see the module docstring."""

    def __init__(self, base: BaseSet, added: Iterable[int], dropped: Iterable[int], max_key: int) -> None:
        self._base = base
        self._added = sorted(added)
        self._dropped = sorted(dropped)
        self._dropped_set = frozenset(self._dropped)
        self._max_key = max_key
        self.total = base.total + len(self._added) - len(self._dropped)

    def rank(self, x: int) -> int:
        return self._base.rank(x) + bisect_right(self._added, x) - bisect_right(self._dropped, x)

    def iter_from(self, x: int) -> Iterator[int]:
        """Members >= x, ascending."""
        base: Iterator[int] = self._base.iter_from(x)
        if self._dropped_set:
            base = (key for key in base if key not in self._dropped_set)
        added = self._added[bisect_left(self._added, x) :]
        return heapq.merge(base, added) if added else base

    def page(self, offset: int, limit: int) -> list[int]:
        if offset >= self.total:
            return []
        return list(islice(self.iter_from(self._nth(offset)), limit))

    def _nth(self, offset: int) -> int:
        """The member at 0-based ``offset``: the smallest id whose rank exceeds it."""
        lo, hi = 1, self._max_key
        while lo < hi:
            mid = (lo + hi) // 2
            if self.rank(mid) > offset:
                hi = mid
            else:
                lo = mid + 1
        return lo
