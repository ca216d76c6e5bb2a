"""What dlt's own trace says about a run: seconds per step and rows normalized per table.

Shared by the bare-pipeline probe (its own `pipeline.last_trace`) and the parent (the trace file
the Dagster run left in its dlt data directory), so both kinds of run split the same way. Imports
nothing at module level: the probe's import cost and RSS stay dlt's.
"""

from __future__ import annotations

import os
from typing import Any


def summarise_trace(trace: Any) -> dict[str, Any]:
    """`{"steps_s": {"extract": s, "normalize": s, "load": s}, "rows_normalized": {table: n}}`.

    Empty when there is no trace (dlt writes it only after a run), so a missing breakdown never
    fails a measurement. `rows_normalized` counts what the run read, which for a first
    incremental sync includes soft-deleted tickets that the load then drops.
    """
    if trace is None:
        return {}
    steps: dict[str, float] = {}
    for step in getattr(trace, "steps", ()):
        # dlt's `run` step only encloses the others: it would count them twice.
        if step.step != "run" and step.started_at and step.finished_at:
            elapsed = (step.finished_at - step.started_at).total_seconds()
            steps[step.step] = round(steps.get(step.step, 0.0) + elapsed, 3)
    normalize_info = getattr(trace, "last_normalize_info", None)
    rows = dict(normalize_info.row_counts) if normalize_info is not None else {}
    return {"steps_s": steps, "rows_normalized": rows}


def load_pipeline_trace(pipelines_dir: str, pipeline_name: str) -> dict[str, Any]:
    """The summary of the last run of `pipeline_name` stored under `pipelines_dir`."""
    from dlt.pipeline.trace import get_trace_file_path, load_trace

    trace_dir = os.path.dirname(get_trace_file_path(pipelines_dir, pipeline_name))
    return summarise_trace(load_trace(trace_dir))
