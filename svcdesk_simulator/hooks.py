"""Request hooks: callbacks run before each API request is answered.

They let a test act at an exact point of a client's sync (change a record between two pages,
stop the server mid-run) or watch requests as they arrive, with no timing guesswork.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from svcdesk_simulator.request_log import RequestInfo


class HookHandle:
    """Returned by ``Simulator.on_request``; ``remove()`` unregisters that one callback."""

    def __init__(self, hooks: Hooks, callback: Callable[[RequestInfo], None]) -> None:
        self._hooks = hooks
        self.callback = callback

    def remove(self) -> None:
        self._hooks.remove(self)


class Hooks:
    """The registered callbacks, in registration order. Kept as a tuple that is replaced, never
    changed, so ``run`` needs no lock and a hook may add or remove hooks while running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: tuple[HookHandle, ...] = ()

    def add(self, callback: Callable[[RequestInfo], None]) -> HookHandle:
        handle = HookHandle(self, callback)
        with self._lock:
            self._handles = (*self._handles, handle)
        return handle

    def remove(self, handle: HookHandle) -> None:
        with self._lock:
            self._handles = tuple(h for h in self._handles if h is not handle)

    def clear(self) -> None:
        with self._lock:
            self._handles = ()

    def run(self, info: RequestInfo) -> None:
        for handle in self._handles:
            handle.callback(info)
