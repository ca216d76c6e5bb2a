"""The benchmark command: `./dev python -m bench [--tickets N] [--no-million] [--json PATH]`.

What it measures, in one run on one machine, for a simulator holding N tickets (default 100,000):

* **plain requests**: every page of the plain listing with `requests` + `response.json()`, nothing else.
* **bare dlt**: the project's own ticket source (`open_read(...).dlt_source()`, full read) in a plain
  `dlt.pipeline(...).run(...)` into DuckDB, with the project's loader format
  (`LOADER_FILE_FORMAT`), and with dlt's default (`insert_values`) behind `--with-default-loader`.
* **Dagster**: `dagster asset materialize -m svcdesk_dagster --select tickets`, the command a user
  runs, on a fresh DuckDB file, dlt data dir and `DAGSTER_HOME`: a first sync, which reads the
  complete listing (its window starts at the beginning). Then, on the same destination, a
  no-change incremental run (wall time and requests) and a full refresh (the same command with
  `SyncConfig(full_refresh=True)`: replace from a complete read). The same first sync against a
  100-ticket simulator is the fixed cost; `(rows_N - rows_100) / (t_N - t_100)` is the steady
  throughput.
* **1,000,000 tickets** (`--million`, on by default): plain requests and the Dagster first sync, for the
  peak RSS at that size.
* **import cost**: `python -c "import svcdesk_dagster"` against `python -c "import dagster_dlt,
  dlt"`, best of several fresh interpreters.

Every measured command runs in its own fresh process (wall time includes its start-up; peak RSS
is its own, from `wait4`). The simulator runs in threads of this process, so its CPU and memory
are not counted in any measured process, but on a machine with few cores it competes with the
measured process for CPU. After every load the tables are checked against the simulator: rows in
`service_desk.tickets` and `tickets__tags` equal what the plain listing served, and that equals
the listing's `total` (the simulator's live ticket count). A mismatch fails the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dlt_trace import load_pipeline_trace
from bench.launcher import Launcher
from bench.measure import (
    PROJECT_ROOT,
    BenchError,
    ProcessRun,
    base_environment,
    check_succeeded,
    import_times,
    kib_to_mb,
    run_process,
)
from bench.report import (
    IMPORT_BASE,
    IMPORT_NOTHING,
    IMPORT_PROJECT,
    Measurement,
    build_report,
    render,
)
from svcdesk_dagster.naming import op_name, pipeline_name
from svcdesk_dagster.resources import LOADER_FILE_FORMAT
from svcdesk_dagster.row_counts import table_counts
from svcdesk_dagster.sources import SERVICE_DESK
from svcdesk_simulator import Simulator, settings_for

DEFAULT_TICKETS = 100_000
FIXED_COST_TICKETS = 100
MILLION = 1_000_000
DEFAULT_RESULTS = PROJECT_ROOT / "bench" / "results" / "latest.json"
TICKETS_TABLE = f"{SERVICE_DESK.name}.tickets"
TAGS_TABLE = f"{SERVICE_DESK.name}.tickets__tags"
IMPORT_STATEMENTS = (IMPORT_NOTHING, IMPORT_BASE, IMPORT_PROJECT)
DEFAULT_SIMULATOR_CACHE_MB = 128
SERVED_BYTES_PER_TICKET = 700
"""A served ticket's JSON is about 605 bytes with this seed's data; the rest is headroom."""
SIMULATOR_TICKET_CACHE_SHARE = 0.6
"""The part of the simulator's cache that holds tickets (`VendorData`, svcdesk_simulator/vendor.py)."""
FULL_REFRESH_CONFIG = {"ops": {op_name(SERVICE_DESK): {"config": {"full_refresh": True}}}}


@dataclass(frozen=True)
class Expected:
    """What the tables must hold after a load: what the plain listing served."""

    rows: int
    tag_rows: int


@dataclass(frozen=True)
class Workspace:
    """One destination's own files: DuckDB file, dlt data dir, Dagster home, logs."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """A fresh workspace whose Dagster home has the project's instance settings."""
        workspace = cls(root)
        workspace.dagster_home.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", workspace.dagster_home / "dagster.yaml")
        return workspace

    @property
    def duckdb_file(self) -> Path:
        return self.root / "svcdesk.duckdb"

    @property
    def dlt_dir(self) -> Path:
        return self.root / "dlt"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"


def simulator_cache_mb(tickets: int) -> int:
    """A record cache that holds every ticket once read, so that after the first read the
    simulator only joins cached bytes, whatever N: its CPU would otherwise be counted against
    the client on a small machine (about 1 GB of this process's memory at 1,000,000)."""
    needed = tickets * SERVED_BYTES_PER_TICKET / SIMULATOR_TICKET_CACHE_SHARE / 2**20
    return max(DEFAULT_SIMULATOR_CACHE_MB, math.ceil(needed))


class Bench:
    """One benchmark run: its options, scratch space and progress log."""

    def __init__(self, args: argparse.Namespace, scratch: Path, launcher: Launcher) -> None:
        self.args = args
        self.scratch = scratch
        self.launcher = launcher
        self.env = base_environment()
        self._numbers = itertools.count(1)
        self._start = time.perf_counter()

    def log(self, message: str) -> None:
        elapsed = time.perf_counter() - self._start
        print(f"[bench {elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)

    def workspace(self, name: str) -> Workspace:
        return Workspace.create(self.scratch / f"{next(self._numbers):02d}-{name}")

    @contextmanager
    def simulator(self, tickets: int) -> Iterator[Simulator]:
        """The service desk API with `tickets` tickets (no incidents: only tickets are measured),
        and fresh keys, never printed."""
        self.log(f"starting the simulator with {tickets:,} tickets")
        with Simulator(
            tickets=tickets,
            incidents=0,
            services=0,
            seed=self.args.seed,
            service_desk_api_key=secrets.token_urlsafe(16),
            incident_management_api_key=secrets.token_urlsafe(16),
            cache_megabytes=simulator_cache_mb(tickets),
        ) as sim:
            yield sim

    def run(
        self, what: str, command: list[str], sim: Simulator, workspace: Workspace
    ) -> tuple[ProcessRun, int]:
        """Runs one measured command against `sim`; returns it and the ticket requests it made."""
        env = {
            **self.env,
            **settings_for(sim),
            "DESTINATION__DUCKDB__CREDENTIALS": str(workspace.duckdb_file),
            "DLT_DATA_DIR": str(workspace.dlt_dir),
            "DAGSTER_HOME": str(workspace.dagster_home),
        }
        sim.reset_request_log()
        log_dir = workspace.root / "logs" / f"{next(self._numbers):02d}"
        run = run_process(self.launcher, command, env, log_dir, timeout_s=self.args.timeout)
        check_succeeded(what, run, (sim.api_keys.service_desk, sim.api_keys.incident_management))
        requests = sim.request_count(resource="tickets")
        self.log(f"{what}: {run.wall_s:.2f} s, peak RSS {run.peak_rss_mb:.0f} MB, {requests} requests")
        return run, requests


def verify_load(workspace: Workspace, expected: Expected, what: str) -> int:
    """Fails the benchmark unless the tables hold exactly what the listing served."""
    counts = table_counts(workspace.duckdb_file)
    got = (counts.get(TICKETS_TABLE, 0), counts.get(TAGS_TABLE, 0))
    if got != (expected.rows, expected.tag_rows):
        raise BenchError(
            f"{what} loaded {got[0]:,} tickets and {got[1]:,} tags; the simulator serves "
            f"{expected.rows:,} live tickets with {expected.tag_rows:,} tags"
        )
    return got[0]


def measure_plain_requests(bench: Bench, sim: Simulator, tickets: int, key: str) -> tuple[Measurement, Expected]:
    """Plain requests, and from it what every load of this simulator must end up holding."""
    workspace = bench.workspace("plain_requests")
    out = workspace.root / "result.json"
    command = [sys.executable, "-m", "bench.probes", "plain-requests", "--out", str(out)]
    run, requests = bench.run(f"plain requests, {tickets:,} tickets", command, sim, workspace)
    result = json.loads(out.read_text())
    if result["rows"] != result["listing_total"]:
        raise BenchError(
            f"plain requests read {result['rows']:,} tickets but the listing's total is "
            f"{result['listing_total']:,}"
        )
    measurement = Measurement(
        key=key, label="plain requests + json", tickets=tickets, rows=result["rows"],
        requests=requests, wall_s=run.wall_s, work_s=result["work_s"],
        peak_rss_mb=run.peak_rss_mb, details={**result, "cpu_s": run.cpu_s},
    )
    return measurement, Expected(result["rows"], result["tag_rows"])


def measure_bare_dlt(
    bench: Bench, sim: Simulator, tickets: int, expected: Expected, loader_file_format: str | None
) -> Measurement:
    """The project's source in a plain dlt pipeline (`None`: dlt's default loader format)."""
    name = loader_file_format or "insert_values"
    workspace = bench.workspace(f"bare-dlt-{name}")
    out = workspace.root / "result.json"
    command = [sys.executable, "-m", "bench.probes", "bare-dlt", "--out", str(out)]
    if loader_file_format:
        command += ["--loader-file-format", loader_file_format]
    run, requests = bench.run(f"bare dlt ({name}), {tickets:,} tickets", command, sim, workspace)
    rows = verify_load(workspace, expected, f"the bare dlt pipeline ({name})")
    result = json.loads(out.read_text())
    default = "" if loader_file_format else ", dlt default"
    return Measurement(
        key="bare_dlt" if loader_file_format else "bare_dlt_default_loader",
        label=f"bare dlt: {name}{default}", tickets=tickets, rows=rows,
        requests=requests, wall_s=run.wall_s, work_s=result["work_s"],
        peak_rss_mb=run.peak_rss_mb, details={**result, "cpu_s": run.cpu_s},
    )


def measure_dagster(
    bench: Bench,
    sim: Simulator,
    workspace: Workspace,
    measurement: tuple[str, str, int],
    expected: Expected,
    config: dict[str, Any] | None = None,
) -> Measurement:
    """`dagster asset materialize -m svcdesk_dagster --select tickets`, as a user runs it.

    `measurement` is (key, label, tickets). Wall time and RSS are the CLI process's, start-up
    included; `work_s` is the time Dagster recorded for the run's steps.
    """
    key, label, tickets = measurement
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets",
    ]
    if config:
        command += ["--config-json", json.dumps(config)]
    run, requests = bench.run(f"{label}, {tickets:,} tickets", command, sim, workspace)
    rows = verify_load(workspace, expected, label)
    timings = dagster_timings(workspace.dagster_home)
    dlt = load_pipeline_trace(str(workspace.dlt_dir / "pipelines"), pipeline_name(SERVICE_DESK))
    return Measurement(
        key=key, label=label, tickets=tickets, rows=rows, requests=requests, wall_s=run.wall_s,
        work_s=timings.get("steps_total_s"), peak_rss_mb=run.peak_rss_mb,
        details={**timings, "cpu_s": run.cpu_s, "dlt": dlt, "command": " ".join(command[1:])},
    )


def dagster_timings(dagster_home: Path) -> dict[str, Any]:
    """The last run's duration and its steps' durations, as the Dagster instance recorded them.

    The CLI's wall time minus `run_s` is what the process spends outside the run: interpreter
    start-up, imports, loading the code location and the instance, shutting down.
    """
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_stats(run.run_id)
        steps = {
            step.step_key: round(step.end_time - step.start_time, 3)
            for step in instance.get_run_step_stats(run.run_id)
            if step.start_time and step.end_time
        }
    run_s = stats.end_time - stats.start_time if stats.start_time and stats.end_time else None
    return {
        "run_s": round(run_s, 3) if run_s is not None else None,
        "steps_s": steps,
        "steps_total_s": round(sum(steps.values()), 3) if steps else None,
    }


def best_of(runs: int, measure: Any) -> Measurement:
    """The fastest of `runs` repetitions of `measure()`, with every wall time in its details."""
    results = [measure() for _ in range(runs)]
    best = min(results, key=lambda m: m.wall_s)
    if runs > 1:
        best.details["walls_s"] = [m.wall_s for m in results]
    return best


def measure_at_n(bench: Bench, tickets: int) -> list[Measurement]:
    """Floor, bare dlt and the Dagster runs against one simulator of `tickets` tickets."""
    repeat = bench.args.repeat
    with bench.simulator(tickets) as sim:
        # The first read fills the simulator's record cache: later paths then all read it warm.
        warmup, expected = measure_plain_requests(bench, sim, tickets, "plain_requests_warmup")
        measured = [best_of(repeat, lambda: measure_plain_requests(bench, sim, tickets, "plain_requests")[0])]
        formats = [LOADER_FILE_FORMAT] + ([None] if bench.args.with_default_loader else [])
        for loader_file_format in formats:
            measured.append(best_of(
                repeat, lambda: measure_bare_dlt(bench, sim, tickets, expected, loader_file_format)
            ))
        workspaces: list[Workspace] = []

        def first_sync() -> Measurement:
            workspaces.append(bench.workspace("dagster"))
            return measure_dagster(
                bench, sim, workspaces[-1],
                ("dagster_first_sync", "Dagster: materialize tickets", tickets), expected,
            )

        measured.append(best_of(repeat, first_sync))
        incremental = measure_dagster(
            bench, sim, workspaces[-1],
            ("dagster_incremental_no_change", "Dagster: no-change incremental", tickets), expected,
        )
        incremental.throughput = False  # it reads (almost) nothing: rows/s would mean nothing
        measured.append(incremental)
        measured.append(measure_dagster(
            bench, sim, workspaces[-1],
            ("dagster_full_refresh", "Dagster: full refresh", tickets), expected,
            FULL_REFRESH_CONFIG,
        ))
    warmup.label = "plain requests, cold simulator cache (warm-up)"
    return [*measured, warmup]


def measure_fixed_cost(bench: Bench) -> Measurement:
    """The Dagster first sync of a 100-ticket simulator: what every run pays whatever its size."""
    with bench.simulator(FIXED_COST_TICKETS) as sim:
        _, expected = measure_plain_requests(bench, sim, FIXED_COST_TICKETS, "plain_requests_fixed_cost")

        def run() -> Measurement:
            return measure_dagster(
                bench, sim, bench.workspace("dagster-fixed-cost"),
                ("dagster_fixed_cost", "Dagster: materialize tickets (fixed cost)",
                 FIXED_COST_TICKETS),
                expected,
            )

        fixed = best_of(bench.args.repeat, run)
    fixed.throughput = False  # ~100 rows: its time is the fixed cost, not a rate
    return fixed


def measure_million(bench: Bench) -> list[Measurement]:
    """Floor and Dagster first sync at 1,000,000 tickets: how memory grows with size."""
    with bench.simulator(MILLION) as sim:
        plain, expected = measure_plain_requests(bench, sim, MILLION, "plain_requests_million")
        dagster = measure_dagster(
            bench, sim, bench.workspace("dagster-million"),
            ("dagster_first_sync_million", "Dagster: materialize tickets", MILLION), expected,
        )
    plain.label = "plain requests, cold simulator cache (warm-up)"
    return [plain, dagster]


def measure_imports(bench: Bench) -> dict[str, list[ProcessRun]]:
    bench.log(f"import times, best of {bench.args.import_runs} fresh interpreters each")
    log_dir = bench.scratch / "imports"
    return import_times(
        bench.launcher, IMPORT_STATEMENTS, bench.args.import_runs, bench.env, log_dir
    )


def run_benchmark(args: argparse.Namespace, launcher: Launcher) -> dict[str, Any]:
    """Every measurement, one after the other, so that no two measured commands overlap."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="svcdesk-bench-") as scratch:
        bench = Bench(args, Path(scratch), launcher)
        measurements = measure_at_n(bench, args.tickets)
        measurements.append(measure_fixed_cost(bench))
        million_s = None
        if args.million:
            started = time.perf_counter()
            measurements += measure_million(bench)
            million_s = round(time.perf_counter() - started, 1)
        # Last: by now every module is compiled and in the page cache, as on a deployed machine.
        imports = measure_imports(bench)
        bench.log("done")
    context = {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "launcher_baseline_rss_mb": kib_to_mb(launcher.baseline_rss_kib),
        # The simulator's share of the machine: not in any measured figure, but it was there.
        "benchmark_process_peak_rss_mb": kib_to_mb(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ),
        "million_measurement_took_s": million_s,
    }
    return build_report(args, measurements, imports, context)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Measure the sync path of tickets."
    )
    parser.add_argument("--tickets", type=int, default=DEFAULT_TICKETS,
                        help=f"tickets the simulator holds (default {DEFAULT_TICKETS:,})")
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure at 1,000,000 tickets (minutes; default on)")
    parser.add_argument("--with-default-loader", action="store_true",
                        help="also run the bare dlt pipeline with dlt's default loader "
                             "(insert_values: ~48 s and ~4.4 GB at 100,000 tickets)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each measurement at N and of the fixed cost; the fastest "
                             "is kept (default 1)")
    parser.add_argument("--import-runs", type=int, default=3,
                        help="fresh interpreters per import measurement (default 3)")
    parser.add_argument("--seed", type=int, default=42, help="the simulator's data seed")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds after which a measured command is killed (default 3600)")
    parser.add_argument("--json", type=Path, default=DEFAULT_RESULTS,
                        help="where to write the JSON results (default bench/results/latest.json)")
    return parser


def main(argv: list[str] | None = None, *, launcher: Launcher) -> int:
    """Runs the benchmark; `launcher` must have been started by a still-small process."""
    args = build_parser().parse_args(argv)
    if not FIXED_COST_TICKETS < args.tickets <= MILLION:
        print(f"--tickets must be from {FIXED_COST_TICKETS + 1} to {MILLION:,}", file=sys.stderr)
        return 2
    if args.repeat < 1 or args.import_runs < 1:
        print("--repeat and --import-runs must be at least 1", file=sys.stderr)
        return 2
    try:
        report = run_benchmark(args, launcher)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(render(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON: {args.json}")
    return 0
