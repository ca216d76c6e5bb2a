"""A small process that starts every measured command, so each one's peak RSS is its own.

Linux carries a process's high-water RSS across `fork` and `exec` into the new program's
`ru_maxrss`: a command started by a 300 MB parent reports at least 300 MB, whatever it uses. The
benchmark's parent grows large (Dagster, dlt and the simulator live there), so it does not start
the measured commands itself. It starts this launcher first, while it is still a bare interpreter
(`bench/__main__.py`), and sends it one JSON request a line; the launcher runs the command, waits
for it with `wait4` (the largest RSS of the command and of every descendant it waited for) and
answers with one JSON line. Standard library only, imported before anything heavy, so its own
footprint (`baseline_rss_kib`, reported) is the smallest peak any measurement can show.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Runs one command; its wall time covers start-up to exit, as a user would time it."""
    with open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            request["command"], cwd=request["cwd"], env=request["env"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
        )
        killer = threading.Timer(request["timeout_s"], process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 already
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "returncode": process.returncode,
    }


class Launcher:
    """The parent's handle on a launcher process. Start it before importing anything large."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self.baseline_rss_kib = self._ask({"baseline": True})["max_rss_kib"]

    @classmethod
    def start(cls) -> Launcher:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.launcher"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        return cls(process)

    def run(self, **request: Any) -> dict[str, Any]:
        """`command`, `cwd`, `env`, `stdout`, `stderr` (paths), `timeout_s`."""
        return self._ask(request)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError("the benchmark's launcher process ended unexpectedly")
        return json.loads(answer)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=10)


def serve() -> None:
    """Answers requests from stdin until it closes."""
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("baseline"):
            answer = {"max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        else:
            answer = run(request)
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
