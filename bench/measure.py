"""Running one measured command in a fresh process: its wall time, peak RSS and logs.

The command is started by the launcher (`bench/launcher.py`), which waits for it with `os.wait4`:
Linux reports there the largest resident set of the command and of every descendant it waited for,
which is what the machine must hold for that command.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.launcher import Launcher
from svcdesk_dagster.sources import redact

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_PREFIXES = ("SOURCES__", "DESTINATION__", "SVCDESK_", "NORMALIZE__", "LOAD__", "EXTRACT__")
"""Settings a developer may have exported; the benchmark measures the project's defaults."""


class BenchError(RuntimeError):
    """A measured command failed or loaded the wrong data: the figures would be meaningless."""


@dataclass(frozen=True)
class ProcessRun:
    """One finished command: how long it took end to end and the most memory it held."""

    wall_s: float
    cpu_s: float
    """User + system CPU time of the command and its waited-for descendants: unlike wall time,
    barely inflated when other work shares the machine."""
    peak_rss_mb: float
    returncode: int
    stdout: Path
    stderr: Path


def base_environment() -> dict[str, str]:
    """This environment without any project setting, dlt data dir or Dagster home.

    dlt's anonymous telemetry is switched off: the benchmark talks only to loopback.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(PROJECT_PREFIXES) and name not in ("DLT_DATA_DIR", "DAGSTER_HOME")
    }
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    return env


def run_process(
    launcher: Launcher, command: list[str], env: dict[str, str], log_dir: Path, timeout_s: float
) -> ProcessRun:
    """Runs `command` from the project root, through `launcher`, with its output in `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / "stdout.log", log_dir / "stderr.log"
    answer = launcher.run(
        command=command, cwd=str(PROJECT_ROOT), env=env, stdout=str(stdout), stderr=str(stderr),
        timeout_s=timeout_s,
    )
    return ProcessRun(
        wall_s=round(answer["wall_s"], 3),
        cpu_s=round(answer["cpu_s"], 3),
        peak_rss_mb=kib_to_mb(answer["max_rss_kib"]),  # Linux: ru_maxrss is in KiB
        returncode=answer["returncode"],
        stdout=stdout,
        stderr=stderr,
    )


def kib_to_mb(kib: int) -> float:
    return round(kib * 1024 / 1e6, 1)


def check_succeeded(what: str, run: ProcessRun, secrets: tuple[str, ...]) -> None:
    """Raises `BenchError` with the end of the command's logs (keys redacted) if it failed."""
    if run.returncode == 0:
        return
    tails = []
    for log in (run.stdout, run.stderr):
        text = log.read_text(errors="replace")[-4000:]
        if text.strip():
            tails.append(f"--- {log.name} (last 4000 characters) ---\n{redact(text, secrets)}")
    raise BenchError(f"{what} exited with {run.returncode}\n" + "\n".join(tails))


def import_times(
    launcher: Launcher, statements: tuple[str, ...], runs: int, env: dict[str, str], log_dir: Path
) -> dict[str, list[ProcessRun]]:
    """`python -c <statement>`, each in `runs` fresh interpreters.

    The statements take turns, so that a slow moment of the machine does not hit one of them only.
    Run after the other measurements, so every module is compiled and in the page cache.
    """
    results: dict[str, list[ProcessRun]] = {statement: [] for statement in statements}
    for index in range(runs):
        for number, statement in enumerate(statements):
            run = run_process(
                launcher, [sys.executable, "-c", statement], env,
                log_dir / f"import-{number}-{index}", timeout_s=120,
            )
            check_succeeded(f"python -c {statement!r}", run, ())
            results[statement].append(run)
    return results
