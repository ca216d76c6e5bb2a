"""`sync_failure_sensor`: an alert for every failed run of the code location.

It reports each failed run (a failed sync, a failed blocking check, checks that could not run, a
run whose process died) with its assets, why it failed and what to do, in the sensor's log and,
when `SVCDESK_ALERT_WEBHOOK_URL` is set, to a Slack-compatible webhook; each alert links to the run
in the web UI at `SVCDESK_DAGSTER_BASE_URL` (both read at each failure, `settings.py`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from dagster import (
    AssetKey,
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

from svcdesk_dagster.checks import MERGE_KEY_UNIQUE, SCHEMA_CONTRACT
from svcdesk_dagster.naming import op_name
from svcdesk_dagster.settings import (
    WEBHOOK_ENV,
    alert_webhook_url,
    configured_secrets,
    dagster_base_url,
)
from svcdesk_dagster.sources import APIS, redact

if TYPE_CHECKING:  # the step error's type, not exported by `dagster` itself
    from dagster._utils.error import SerializableErrorInfo

WEBHOOK_TIMEOUT_SECONDS = 5.0

RETRY_WRAPPERS = ("RetryRequestedFromPolicy", "RetryRequested")
"""What Dagster raises around the last error of a step whose retry policy ran out."""
USER_CODE_WRAPPERS = (
    "DagsterExecutionStepExecutionError",
    "DagsterResourceFunctionError",
    "DagsterExecutionLoadInputError",
    "DagsterExecutionHandleOutputError",
    "DagsterUserCodeExecutionError",
)
"""What Dagster raises around an unexpected exception of the project's code: its own line only
says where (`Error occurred while executing op "...":`), the exception it wraps says what."""
_QUALIFIED_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?P<name>[A-Za-z_]\w*): ")


RESERVED_JOB_PREFIX = "__"
"""Dagster names the job behind every run of assets or checks picked in the UI or on the command
line `__ASSET_JOB`, and that of a schedule or sensor that targets assets directly
`__anonymous_asset_job...`: names that mean nothing to whoever reads the alert."""
UNNAMED_JOB_LABEL = "assets launched from the UI / CLI"
LAUNCHER_TAGS = (("dagster/schedule_name", "schedule"), ("dagster/sensor_name", "sensor"))
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"
"""The error of a step whose blocking check failed with ERROR. Its message names only the checks,
on lines after a colon, so the alert shows each failed check's own description instead."""
MAX_LINE_CHARS = 300
"""One failed check's line at most: a schema_contract description lists every difference."""
MAX_CHECK_LINES = 10
"""Failed checks listed at most; the run page has the rest."""
MAX_ERROR_CHARS = 1000
"""The error line at most: a vendor's message may quote a whole body."""
WORKER_DEATH_REASONS = frozenset({"UNEXPECTED_TERMINATION", "RUN_WORKER_RESTART", "START_TIMEOUT"})
"""Run failure reasons that mean the run's process stopped (or never started), not a step."""
CRASH_EXPLANATION_PREFIX = "Run execution process for "
"""How the code server's engine event begins when a run's process exits unexpectedly ("... was
terminated by signal 9 (SIGKILL)."); the run failure it reports next gives no reason of its own."""
WILL_RETRY_TAG = "dagster/will_retry"
SYNC_STEPS = frozenset(op_name(api) for api in APIS)
"""The steps that call a vendor and load a table; the project's other steps run the checks."""

# What to do, one line per kind of failure, each pointing at the README section that says more.
TODO_SYNC = (
    'Look the error up in README "When something goes wrong"; a failed sync leaves its tables '
    "and window as they were, so the next good run catches up."
)
TODO_CHECK_STEP = (
    'The checks could not run: fix what the error names (README "Asset checks"), then execute '
    "them again."
)
TODO_RUN = (
    "The run stopped outside its steps: the error and the run page say why (README \"When "
    'something goes wrong").'
)
TODO_WORKER = (
    "The run's process died before the run finished (killed, out of memory, machine restart): "
    'nothing to repair, the next run continues from the stored window (README "Operating it").'
)
TODO_CHECKS = {
    SCHEMA_CONTRACT: (
        "schema_contract: the vendor changed a field, or someone changed the table; "
        'README "schema_contract", "What to do when it fails".'
    ),
    MERGE_KEY_UNIQUE: (
        "merge_key_unique: something besides the sync wrote to the table; stop it, then run "
        'full_refresh (README "merge_key_unique").'
    ),
}


@dataclass(frozen=True)
class FailedCheck:
    """One check evaluation of the run that did not pass, as its event log recorded it."""

    asset: str
    check: str
    severity: str
    """`ERROR` (blocks, fails the run) or `WARN` (listed so a failure is seen with its context)."""
    description: str
    blocking: bool = True
    """Every check of this project blocks; one that does not cannot fail a run, even on ERROR."""

    @property
    def blocks(self) -> bool:
        return self.blocking and self.severity == "ERROR"

    @property
    def line(self) -> str:
        mark = "" if self.blocks else f" ({self.severity}, does not block)"
        return clip(f"{self.asset}.{self.check}{mark}: {self.description}")


@dataclass(frozen=True)
class FailureSummary:
    """What an operator needs from a failed run, with nothing secret in it.

    Every kind of failed run gets the same shape: what failed and where (`headline`, `job`,
    `assets`), why (`error`: a step's first error line, or what stopped the run; and each check
    that did not pass, with the differences its description lists), what to do (`todo`, one line
    per kind, pointing at the README section that says more) and the run's link.
    """

    headline: str
    job: str
    """The run's job name, as Dagster has it (`__ASSET_JOB` included)."""
    run_id: str
    assets: tuple[str, ...]
    error: str
    link: str
    failed_checks: tuple[FailedCheck, ...] = ()
    error_label: str = "Error"
    """`Error` for a step's or the run's error, `Cause` for why the run's process stopped."""
    todo: tuple[str, ...] = ()
    where: str = ""
    """The job as a person reads it (`job_label`); worked out from `job` when left empty."""

    @property
    def text(self) -> str:
        assets = ", ".join(self.assets) or "none recorded"
        where = self.where or job_label(self.job, {})
        lines = [f"{self.headline}: {where} (assets: {assets})."]
        if self.error:
            lines.append(f"{self.error_label}: {self.error}")
        if self.failed_checks:
            lines.append("Failed checks:")
            lines += [f"- {check.line}" for check in self.failed_checks[:MAX_CHECK_LINES]]
            if len(self.failed_checks) > MAX_CHECK_LINES:
                more = len(self.failed_checks) - MAX_CHECK_LINES
                lines.append(f"- and {more} more (see the run)")
        if self.todo:
            lines.append("What to do:")
            lines += [f"- {line}" for line in self.todo]
        lines.append(f"Run: {self.link}")
        return "\n".join(lines)

    def webhook_payload(self) -> dict[str, object]:
        """Slack's incoming-webhook shape; `text` alone is what most compatible receivers read."""
        return {"text": self.text}


def known_secrets() -> tuple[str, ...]:
    """The configured API keys and the webhook URL, to take out of any text we pass on.

    Errors are already redacted where they are raised; this is the second belt, for a key that
    a vendor echoes back in a message, say.
    """
    return configured_secrets([api.name for api in APIS])


def clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """One line of at most `limit` characters: a long description must not bury the rest."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def first_line(text: str) -> str:
    """The first non-blank line, with a qualified exception name shortened to its class name
    (`dagster._core.definitions.events.Failure: ...` reads `Failure: ...`). A line that ends
    with a colon announces the lines after it, so those are joined to it rather than cut off."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if line.endswith(":") and len(lines) > 1:
        line = " ".join(lines)
    return _QUALIFIED_EXCEPTION.sub(r"\g<name>: ", line, count=1)


def error_line(error: SerializableErrorInfo) -> str:
    """The first line of a step's error; for a step that used up its retries, the first line of
    the error it kept failing with (Dagster's own line only says `Exceeded max_retries of 3`);
    for an unexpected exception, which Dagster wraps in one that only names the step, the first
    line of that exception."""
    wrapper = None
    while error.cause is not None:
        if error.cls_name in RETRY_WRAPPERS or error.message.startswith("Exceeded max_retries"):
            wrapper = first_line(error.message)
        elif error.cls_name not in USER_CODE_WRAPPERS:
            break
        error = error.cause
    line = first_line(error.message)
    return f"{line} ({wrapper})" if wrapper and line else line or (wrapper or "")


def is_check_failure(error: SerializableErrorInfo) -> bool:
    """A step failed because a blocking check failed with ERROR (the checks themselves say why)."""
    return error.cls_name == CHECK_FAILED_ERROR or first_line(error.message).startswith(
        f"{CHECK_FAILED_ERROR}:"
    )


def failed_checks(context: RunFailureSensorContext) -> tuple[FailedCheck, ...]:
    """Every check evaluation of the run that did not pass, ERROR before WARN, by asset and check.

    Read from the run's event log, where the checks' step recorded them before the step failed:
    the step's error only names the checks, their descriptions say what differs.
    """
    records = context.instance.get_records_for_run(
        run_id=context.dagster_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    found: dict[tuple[str, str], FailedCheck] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event is not None else None
        if evaluation is None or getattr(evaluation, "passed", True):
            continue
        severity = getattr(evaluation.severity, "value", str(evaluation.severity))
        asset = evaluation.asset_key.to_user_string()
        found[(asset, evaluation.check_name)] = FailedCheck(
            asset=asset,
            check=evaluation.check_name,
            severity=severity,
            description=evaluation.description or "no description recorded",
            blocking=getattr(evaluation, "blocking", None) is not False,
        )
    return tuple(sorted(found.values(), key=lambda c: (not c.blocks, c.asset, c.check)))


def logged_asset_keys(
    context: RunFailureSensorContext, event_type: DagsterEventType
) -> set[AssetKey]:
    """The asset keys of the run's events of one type (planned materializations or checks)."""
    records = context.instance.get_records_for_run(
        run_id=context.dagster_run.run_id, of_type=event_type
    ).records
    keys = set()
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        key = getattr(event.event_specific_data, "asset_key", None) or event.asset_key
        if key is not None:
            keys.add(key)
    return keys


def planned_assets(
    context: RunFailureSensorContext, checks: Iterable[FailedCheck] = ()
) -> tuple[str, ...]:
    """The assets the run was about: the ones it set out to materialize, else, for a run of
    checks alone (the UI's "Execute" on the Checks tab), the assets of the checks it ran."""
    run = context.dagster_run
    keys = set(run.asset_selection or ()) or logged_asset_keys(
        context, DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    )
    if not keys:
        keys = {check.asset_key for check in run.asset_check_selection or ()}
    if not keys:
        keys = logged_asset_keys(
            context, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        ) | logged_asset_keys(context, DagsterEventType.ASSET_CHECK_EVALUATION)
    names = {key.to_user_string() for key in keys} | {check.asset for check in checks}
    return tuple(sorted(names))


def failure_error(context: RunFailureSensorContext) -> str:
    """The first line of the first failed step's error, else of the run's failure message."""
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        if error is not None and error_line(error):
            return error_line(error)
    return first_line(context.failure_event.message or "") or "no error message recorded"


def failure_reason(context: RunFailureSensorContext) -> str | None:
    """Why Dagster says the run failed (`STEP_FAILURE`, `RUN_EXCEPTION`, ...), when it says."""
    reason = getattr(context.failure_event.event_specific_data, "failure_reason", None)
    return getattr(reason, "value", None)


def crash_explanation(context: RunFailureSensorContext) -> str:
    """Why the run's process stopped: the code server's account of its exit when there is one,
    else the failure's own message (run monitoring puts the worker's status there)."""
    records = context.instance.get_records_for_run(
        run_id=context.dagster_run.run_id,
        of_type=DagsterEventType.ENGINE_EVENT,
        ascending=False,
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        message = (event.message if event is not None else None) or ""
        if message.startswith(CRASH_EXPLANATION_PREFIX):
            return first_line(message)
    return first_line(context.failure_event.message or "") or "no message recorded"


def job_label(job_name: str, tags: Mapping[str, str]) -> str:
    """`job <name>` for a named job; for Dagster's unnamed asset jobs, who launched the run."""
    if not job_name.startswith(RESERVED_JOB_PREFIX):
        return f"job {job_name}"
    for tag, kind in LAUNCHER_TAGS:
        if tags.get(tag):
            return f"assets launched by {kind} {tags[tag]}"
    return UNNAMED_JOB_LABEL


def run_link(run_id: str) -> str:
    return f"{dagster_base_url().rstrip('/')}/runs/{run_id}"


def will_retry(context: RunFailureSensorContext) -> bool:
    """Whether the instance launches a retry of this run (it tags the run when it fails)."""
    run = context.instance.get_run_by_id(context.dagster_run.run_id) or context.dagster_run
    return run.tags.get(WILL_RETRY_TAG, "").lower() == "true"


def summarize_failure(context: RunFailureSensorContext, secrets: Iterable[str] = ()) -> FailureSummary:
    """Sorts the failure into its kinds, which decide the headline and what to do.

    A failed step is a sync failure (a sync step: a wrong key, a vendor outage, ...), a blocking
    check (its error is the check's, the evaluations say why), or a check step that could not
    run. With no failed step, the run either stopped on an error of its own, or its process
    died: Dagster then fails it from outside (run monitoring, the code server) with no error.
    """
    secrets = tuple(secrets)
    run = context.dagster_run
    checks = failed_checks(context)
    step_errors = [
        (event.step_key, error)
        for event in context.get_step_failure_events()
        if (error := getattr(event.event_specific_data, "error", None)) is not None
    ]
    other_errors = [(step, error) for step, error in step_errors if not is_check_failure(error)]
    check_failed = any(check.blocks for check in checks) or len(other_errors) < len(step_errors)
    headlines: list[str] = []
    todo: list[str] = []
    error, label = "", "Error"
    if other_errors:
        step, first = other_errors[0]
        sync = step in SYNC_STEPS
        headlines.append("Sync failed" if sync else "Checks could not run")
        todo.append(TODO_SYNC if sync else TODO_CHECK_STEP)
        error = error_line(first) or "no error message recorded"
        if len(other_errors) > 1:
            error += f" (and {len(other_errors) - 1} more failed step(s): see the run)"
    if check_failed:
        blocking = sum(check.blocks for check in checks)
        headlines.append("Blocking checks failed" if blocking > 1 else "Blocking check failed")
        if not checks and not other_errors:  # no evaluation recorded: the step's error names them
            error = failure_error(context)
    for name in dict.fromkeys(check.check for check in checks):
        todo.append(TODO_CHECKS.get(name, f'{name}: README "Asset checks".'))
    if not step_errors:
        run_error = getattr(context.failure_event.event_specific_data, "error", None)
        if failure_reason(context) in WORKER_DEATH_REASONS or run_error is None:
            headlines.append("Run process died")
            error, label = crash_explanation(context), "Cause"
            retry = " Dagster retries the run." if will_retry(context) else ""
            todo.append(TODO_WORKER + retry)
        else:
            headlines.append("Run failed")
            error = first_line(run_error.message) or failure_error(context)
            todo.append(TODO_RUN)
    headline = " and ".join(
        [headlines[0], *(part[0].lower() + part[1:] for part in headlines[1:])]
    )
    return FailureSummary(
        headline=headline,
        job=run.job_name,
        where=job_label(run.job_name, run.tags),
        run_id=run.run_id,
        assets=planned_assets(context, checks),
        error=clip(redact(error, secrets), MAX_ERROR_CHARS) if error else "",
        error_label=label,
        link=run_link(run.run_id),
        failed_checks=tuple(
            dataclasses.replace(check, description=redact(check.description, secrets))
            for check in checks
        ),
        todo=tuple(todo),
    )


def post_alert(context: RunFailureSensorContext, summary: FailureSummary) -> bool:
    """POSTs the alert when a webhook is configured; a failure is a warning, never an error.

    The URL itself is a credential (Slack's carry a token), so no message here shows it.
    """
    url = alert_webhook_url()
    if url is None:
        return False
    try:
        response = requests.post(url, json=summary.webhook_payload(), timeout=WEBHOOK_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        context.log.warning(
            f"The alert webhook ({WEBHOOK_ENV}) could not be reached ({type(error).__name__}); "
            f"the failure of run {summary.run_id} is reported in this log only."
        )
        return False
    if response.status_code >= 300:
        context.log.warning(
            f"The alert webhook ({WEBHOOK_ENV}) answered {response.status_code}; "
            f"the failure of run {summary.run_id} is reported in this log only."
        )
        return False
    return True


@run_failure_sensor(
    name="sync_failure_sensor",
    # Every job of this code location: the three syncs and the asset jobs the UI launches.
    monitored_jobs=None,
    # On by default, unlike the schedules: it calls no vendor and launches nothing, it only reads
    # the event log, and an alert that must first be switched on is the one nobody gets. It
    # starts from the moment it is first evaluated, so old failures are not replayed.
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Reports each failed run of this code location in its log and, when "
        f"{WEBHOOK_ENV} is set, to that Slack-compatible webhook."
    ),
)
def sync_failure_sensor(context: RunFailureSensorContext) -> None:
    secrets = known_secrets()
    summary = summarize_failure(context, secrets)
    context.log.error(summary.text)
    post_alert(context, summary)
