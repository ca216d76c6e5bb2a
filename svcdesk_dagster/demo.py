"""`svcdesk demo`: the whole main path on the embedded default, in one command.

It starts the bundled simulator on a free loopback port, points the configuration at it, runs the
`full_refresh` job from the very `Definitions` the CLI and the web UI load (no side path), and
prints what landed in DuckDB next to what the simulator holds.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from svcdesk_simulator import Simulator, VendorSize, settings_for

DEMO_JOB = "full_refresh"
QUIET_CONSOLE = {"console": {"config": {"log_level": "INFO"}}}


@dataclass(frozen=True)
class DemoKeys:
    """Fresh random keys for each demo: nothing to leak, nothing to configure."""

    service_desk: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    incident_management: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)


@contextmanager
def simulator_environment(sim: Simulator) -> Iterator[None]:
    """Points the API settings (README, Configuration) at the simulator for the demo's duration."""
    settings = settings_for(sim)
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(size: VendorSize = VendorSize()) -> int:
    """Runs the demo and returns the process exit code."""
    from svcdesk_dagster.definitions import defs
    from svcdesk_dagster.jobs import FULL_REFRESH_RUN_CONFIG
    from svcdesk_dagster.row_counts import table_counts
    from svcdesk_dagster.settings import duckdb_file

    keys = DemoKeys()
    simulator = Simulator(
        size,
        service_desk_api_key=keys.service_desk,
        incident_management_api_key=keys.incident_management,
    )
    with simulator as sim, simulator_environment(sim):
        print(f"Simulator serving on 127.0.0.1:{sim.port}")
        print(f"Running job `{DEMO_JOB}` into {duckdb_file()} ...")
        with _instance() as instance:
            result = defs.resolve_job_def(DEMO_JOB).execute_in_process(
                instance=instance,
                raise_on_error=False,
                # The job's own config, with Dagster's console log at INFO rather than DEBUG.
                run_config={**FULL_REFRESH_RUN_CONFIG, "loggers": QUIET_CONSOLE},
            )
        if not result.success:
            print(f"Job `{DEMO_JOB}` failed; see the log above.", file=sys.stderr)
            return 1
        expected = expected_counts(sim)
        counts = table_counts(duckdb_file())
    print(_report(counts, expected))
    checks = [
        (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.passed)
        for evaluation in result.get_asset_check_evaluations()
    ]
    for asset, check, passed in sorted(checks):
        print(f"check {asset}.{check}: {'passed' if passed else 'FAILED'}")
    mismatched = [name for name, rows in expected.items() if counts.get(name) != rows]
    if mismatched:
        print(f"Row counts differ from the simulator for: {', '.join(mismatched)}", file=sys.stderr)
    failed_checks = [f"{asset}.{check}" for asset, check, passed in checks if not passed]
    if failed_checks:
        print(f"Checks failed: {', '.join(failed_checks)}", file=sys.stderr)
    return 1 if mismatched or failed_checks else 0


def expected_counts(sim: Simulator) -> dict[str, int]:
    """What each table must hold: one row per live record, one child row per list item."""
    tickets, incidents = sim.live_tickets(), sim.live_incidents()
    return {
        "service_desk.tickets": len(tickets),
        "service_desk.tickets__tags": sum(len(ticket["tags"]) for ticket in tickets),
        "incident_management.incidents": len(incidents),
        "incident_management.incidents__assignees": sum(
            len(incident["assignees"]) for incident in incidents
        ),
        "incident_management.services": len(sim.live_services()),
    }


@contextmanager
def _instance() -> Iterator[object]:
    """The instance of `DAGSTER_HOME` when set (the run then shows in the UI), else a throwaway."""
    from dagster import DagsterInstance

    from svcdesk_dagster.settings import dagster_home

    if dagster_home() is not None:
        with DagsterInstance.get() as instance:
            yield instance
    else:
        with DagsterInstance.ephemeral() as instance:
            yield instance


def _report(counts: dict[str, int], expected: dict[str, int]) -> str:
    width = max(len(name) for name in counts) if counts else 10
    lines = [f"{'table'.ljust(width)}  {'rows':>9}  {'simulator':>9}"]
    for name, rows in sorted(counts.items()):
        truth = expected.get(name)
        lines.append(f"{name.ljust(width)}  {rows:>9}  {'' if truth is None else truth:>9}")
    return "\n".join(lines)
