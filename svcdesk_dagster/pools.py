"""Pool slots that no live run holds: found and freed when a run starts, and a bounded wait.

Each sync and check step runs in a concurrency pool with one slot (`dagster.yaml`). A run whose
worker is killed (SIGKILL, the OOM killer, a reboot, an evicted pod) keeps its slot: nothing marks
it failed, and Dagster's run monitoring frees the slots only of runs that have ended, so every later
run of that pool waited forever, silently ("Step still blocked by limit for pool duckdb"). And the
CLI (`dagster asset materialize`) has no daemon at all.

So every run, before its steps ask for their pools, looks at who holds them:
- a run that has ended (or was deleted) and still holds a slot: the slot is freed;
- a run whose worker ran on this machine and is gone (its process is not alive, or the PID now
  belongs to another process): the run is marked failed, its slot freed, and the log says which;
- a run whose worker is alive on this machine: left to Dagster, whose executor queues the step
  until the slot is released ("Step still blocked by limit for pool ...");
- any other holder (a worker on another machine, or a run that recorded no worker), which cannot
  be checked from here: the run waits for the slot, saying who holds it, and fails after
  `SVCDESK_POOL_WAIT_SECONDS` with an error that names the holding run and how to free it.

Every run records where its worker runs (host, PID and the process's start time) in its tags, so
that a later run can tell a dead worker from a live one.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dagster import (
    ConfigurableResource,
    DagsterInstance,
    DagsterRun,
    Failure,
    InitResourceContext,
)

from svcdesk_dagster.settings import POOL_WAIT_ENV, pool_wait_seconds

WORKER_HOST_TAG = "svcdesk/worker_host"
WORKER_PID_TAG = "svcdesk/worker_pid"
WORKER_STARTED_TAG = "svcdesk/worker_started"
"""The worker process's start time (clock ticks since boot, from /proc): a PID the kernel gave
to another process since does not pass for the dead worker."""

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Worker:
    """Where a run's steps execute (the project runs them in the run's own process)."""

    host: str
    pid: int
    started: str | None

    @classmethod
    def this_process(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    @classmethod
    def of_run(cls, run: DagsterRun) -> Worker | None:
        tags = run.tags or {}
        if WORKER_HOST_TAG not in tags or not tags.get(WORKER_PID_TAG, "").isdigit():
            return None
        return cls(tags[WORKER_HOST_TAG], int(tags[WORKER_PID_TAG]), tags.get(WORKER_STARTED_TAG))

    def tags(self) -> dict[str, str]:
        return {
            WORKER_HOST_TAG: self.host,
            WORKER_PID_TAG: str(self.pid),
            **({WORKER_STARTED_TAG: self.started} if self.started else {}),
        }

    def is_here(self) -> bool:
        return self.host == socket.gethostname()

    def is_gone(self) -> bool:
        """True only when it can be known: same host, and no such process any more."""
        if not self.is_here():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return self.started is not None and process_start(self.pid) not in (None, self.started)

    def __str__(self) -> str:
        return f"PID {self.pid} on {self.host}"


def process_start(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat, the start time; None where /proc has no such file."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The command name (field 2) is in parentheses and may hold spaces: split after it.
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class PoolGuard(ConfigurableResource):
    """Run-start housekeeping of the concurrency pools (module docstring). Required by every sync
    and check step, so it runs before any of them asks for its pool."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        instance, run = context.instance, context.run
        if instance is None or run is None:
            return
        worker = Worker.this_process()
        instance.add_run_tags(run.run_id, worker.tags())
        wait = pool_wait_seconds()
        wait_for_pools(instance, run, pools_of(instance, run), wait, context.log)


def pools_of(instance: DagsterInstance, run: DagsterRun) -> set[str]:
    """The pools of the steps this run will execute, from its execution plan."""
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id or "")
    selected = set(run.step_keys_to_execute or ())
    return {
        step.pool
        for step in snapshot.steps
        if step.pool and (not selected or step.key in selected)
    }


def wait_for_pools(
    instance: DagsterInstance, run: DagsterRun, pools: Iterable[str], wait: float, log: Any
) -> None:
    """Frees what dead runs hold, then waits until each pool has a free slot, at most `wait` s."""
    deadline = time.monotonic() + wait
    announced: set[str] = set()
    while True:
        holders = {pool: live_holders(instance, run, pool, log) for pool in pools}
        busy = {pool: runs for pool, runs in holders.items() if runs is not None}
        if not busy:
            return
        for pool, runs in busy.items():
            for holder in runs:
                if holder.run_id not in announced:
                    announced.add(holder.run_id)
                    log.info(
                        f"Pool `{pool}` is held by {describe(holder)}: waiting for it, at most "
                        f"{wait:g} s ({POOL_WAIT_ENV})."
                    )
        if time.monotonic() >= deadline:
            raise Failure(description=stuck_message(busy, wait), allow_retries=False)
        time.sleep(POLL_SECONDS)


def live_holders(
    instance: DagsterInstance, run: DagsterRun, pool: str, log: Any
) -> list[DagsterRun] | None:
    """The runs holding `pool`'s slots once stale claims are freed, when no slot is free and one
    of them cannot be checked from here; else None (a slot is free, or Dagster's own queue waits
    for a worker known to be alive)."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    limit = info.limit if info.limit is not None else info.slot_count
    claiming = {slot.run_id for slot in info.claimed_slots}
    # A dead run's step still queued for the slot would be handed it, and keep it, in its turn.
    queued = {step.run_id for step in info.pending_steps}
    holders = []
    for run_id in sorted((claiming | queued) - {run.run_id}):
        holder = instance.get_run_by_id(run_id)
        reason = stale_reason(holder)
        if reason is None:
            if run_id in claiming:
                holders.append(holder)
            continue
        if holder is not None and not holder.is_finished:
            instance.report_run_failed(
                holder,
                f"The run's worker ({Worker.of_run(holder)}) is gone: it was killed or its machine "
                f"restarted. Marked failed by run {run.run_id} to free its pool slot.",
            )
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        what = "the slot" if run_id in claiming else "the place in the queue"
        log.warning(f"Freed {what} of pool `{pool}` held by run {run_id}: {reason}.")
    claimed = len(instance.event_log_storage.get_concurrency_info(pool).claimed_slots)
    if claimed < max(limit or 1, 1) or any(alive_here(holder) for holder in holders):
        return None
    return holders or None


def alive_here(run: DagsterRun) -> bool:
    """The run's worker is a live process on this machine (so it will release its slot)."""
    worker = Worker.of_run(run)
    return worker is not None and worker.is_here() and not worker.is_gone()


def stale_reason(holder: DagsterRun | None) -> str | None:
    """Why a run's claim on a slot is stale, or None when the run may still be using it."""
    if holder is None:
        return "the run no longer exists"
    if holder.is_finished:
        return f"the run ended ({holder.status.value}) without releasing it"
    worker = Worker.of_run(holder)
    if worker is not None and worker.is_gone():
        return f"its worker ({worker}) is gone, so the run was marked failed"
    return None


def describe(run: DagsterRun) -> str:
    worker = Worker.of_run(run)
    where = f", worker {worker}" if worker else ""
    return f"run {run.run_id} (job {run.job_name}, {run.status.value}{where})"


def stuck_message(busy: dict[str, list[DagsterRun]], wait: float) -> str:
    held = "; ".join(
        f"pool `{pool}` by {', '.join(describe(run) for run in runs)}" for pool, runs in busy.items()
    )
    return (
        f"Waited {wait:g} s ({POOL_WAIT_ENV}) for a concurrency pool that is still held: {held}. If that "
        "run is really running, let it finish and run this again. If its worker is gone (killed, "
        "evicted, or on a machine that restarted), terminate it in the web UI (Runs, the run, "
        "Terminate, then Force termination): the next run frees its slot."
    )
