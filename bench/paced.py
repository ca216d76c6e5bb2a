"""The vendor-paced benchmark: `./dev python -m bench.paced [--tickets N] [--json PATH]`.

Against a real vendor a sync's time is the vendor's: each request takes 100-500 ms, and the key
has a budget of requests a minute. This benchmark makes the simulator such a vendor (250 ms a
request, 1,200 requests a minute per key) and measures, for N tickets (default 100,000):

* the **ideal**: the pages a read needs, divided by the budget's rate (20 requests a second);
* the project's **first sync** and **full refresh** (`dagster asset materialize ... --select
  tickets`, the second with `full_refresh`), with the budget announced in `RateLimit-*` headers;
* the same with the budget **not announced** and `requests_per_minute = 1200` configured;
* the **peer**: a bare dlt pipeline of the seed configuration of dlt's `rest_api_source` (offset
  paginator, limit 100, one page after another), into DuckDB.

For each: its time, its ratio to the ideal, and the 429s the vendor answered. Every measured
command runs in a fresh process; the budget starts afresh before each one, so none inherits the
last one's spending. The tables are checked against the simulator after every load.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.launcher import Launcher
from bench.run import FULL_REFRESH_CONFIG, Bench, Expected, Workspace, verify_load
from svcdesk_simulator import Simulator

LATENCY_MS = 250.0
BUDGET = 1_200
WINDOW_SECONDS = 60.0
PAGE = 100
TARGET_RATIO = 1.2
MAX_429_SHARE = 0.01


@dataclass
class PacedRun:
    label: str
    seconds: float
    requests: int
    answered_429: int
    rows: int
    ideal_s: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.ideal_s


def ideal_seconds(tickets: int) -> float:
    """Pages needed (every ticket, 100 a page) at the budget's rate."""
    return math.ceil(tickets / PAGE) / (BUDGET / WINDOW_SECONDS)


@dataclass(frozen=True)
class Vendor:
    """The simulator, and how it announces its budget ("ietf" headers, or "none")."""

    sim: Simulator
    headers: str


def measure(
    bench: Bench, vendor: Vendor, workspace: Workspace, label: str, command: list[str],
    expected: Expected, ideal: float, extra_env: dict[str, str] | None = None,
) -> PacedRun:
    """One command against a fresh budget: its wall time, requests and 429s."""
    sim = vendor.sim
    sim.set_budget(BUDGET, WINDOW_SECONDS, headers=vendor.headers)
    saved = dict(bench.env)
    bench.env.update(extra_env or {})
    try:
        run, requests = bench.run(label, command, sim, workspace)
    finally:
        bench.env = saved
    rows = verify_load(workspace, expected, label)
    return PacedRun(label, run.wall_s, requests, sim.request_count("tickets", status=429), rows, ideal)


def dagster_command(config: dict[str, Any] | None = None) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets",
    ]
    return command + (["--config-json", json.dumps(config)] if config else [])


def project_runs(
    bench: Bench, vendor: Vendor, expected: Expected, ideal: float, how: str,
    extra_env: dict[str, str] | None = None,
) -> list[PacedRun]:
    workspace = bench.workspace("project")
    return [
        measure(bench, vendor, workspace, f"project: first sync, {how}", dagster_command(),
                expected, ideal, extra_env),
        measure(bench, vendor, workspace, f"project: full refresh, {how}",
                dagster_command(FULL_REFRESH_CONFIG), expected, ideal, extra_env),
    ]


def peer_run(bench: Bench, vendor: Vendor, expected: Expected, ideal: float) -> PacedRun:
    workspace = bench.workspace("peer")
    out = workspace.root / "peer.json"
    command = [sys.executable, "-m", "bench.probes", "seed-rest-api", "--out", str(out)]
    return measure(bench, vendor, workspace, "peer: dlt rest_api_source, seed configuration",
                   command, expected, ideal)


def run_paced(args: argparse.Namespace, launcher: Launcher) -> list[PacedRun]:
    ideal = ideal_seconds(args.tickets)
    with tempfile.TemporaryDirectory(prefix="svcdesk-paced-") as scratch:
        bench = Bench(args, Path(scratch), launcher)
        with bench.simulator(args.tickets) as sim:
            sim.pace(latency_ms=LATENCY_MS)
            tickets = sim.live_tickets()
            expected = Expected(len(tickets), sum(len(t["tags"]) for t in tickets))
            announced, silent = Vendor(sim, "ietf"), Vendor(sim, "none")
            runs = project_runs(bench, announced, expected, ideal, "budget in headers")
            runs += project_runs(
                bench, silent, expected, ideal, "budget configured, no headers",
                {"SOURCES__SERVICE_DESK__REQUESTS_PER_MINUTE": str(BUDGET)},
            )
            if not args.no_peer:
                runs.append(peer_run(bench, announced, expected, ideal))
    return runs


def render(runs: list[PacedRun], tickets: int) -> str:
    ideal = ideal_seconds(tickets)
    lines = [
        f"Vendor-paced: {tickets:,} tickets, {LATENCY_MS:g} ms a request, a budget of "
        f"{BUDGET:,} requests a minute; ideal {math.ceil(tickets / PAGE):,} pages / "
        f"{BUDGET / WINDOW_SECONDS:g} a second = {ideal:.1f} s",
        "",
        "| read | time s | x ideal | requests | 429s | rows |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.label} | {run.seconds:.1f} | {run.ratio:.2f} | {run.requests:,} | "
            f"{run.answered_429:,} | {run.rows:,} |"
        )
    project = [run for run in runs if run.label.startswith("project")]
    worst = max(run.ratio for run in project)
    share = max(run.answered_429 / max(run.requests, 1) for run in project)
    lines += [
        "",
        f"Targets: project within {TARGET_RATIO}x the ideal: worst {worst:.2f}x "
        f"({'PASS' if worst <= TARGET_RATIO else 'FAIL'}); at most {MAX_429_SHARE:.0%} of requests "
        f"answered 429: worst {share:.2%} ({'PASS' if share <= MAX_429_SHARE else 'FAIL'}).",
        "Time is the wall time of the whole command (start-up, read, normalize, load).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.paced", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--no-peer", action="store_true", help="skip the (slow) bare dlt peer")
    parser.add_argument("--json", type=Path, default=Path("bench/results/paced.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    launcher = Launcher.start()
    try:
        runs = run_paced(args, launcher)
    finally:
        launcher.close()
    print(render(runs, args.tickets))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"tickets": args.tickets, "ideal_s": ideal_seconds(args.tickets),
         "runs": [{**asdict(run), "ratio": run.ratio} for run in runs]}, indent=2
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
