"""The project's two sensors: a cheap watch on the incident API, and an alert on failed syncs.

`new_incidents_sensor` asks the incident API, once per tick, which incidents changed since its
cursor (one request, the first 100 changes), and asks for an `incidents` sync when one of them is
a change it has not already asked a run for, so an incident reaches the table within a minute
instead of at the next quarter-hour schedule, and one change brings one run. `sync_failure_sensor`
reports every failed run of the code location (a failed sync, a failed blocking check, a run whose
process died), with its assets, why it failed and what to do, in the sensor's log and, when
`SVCDESK_ALERT_WEBHOOK_URL` is set, to a Slack-compatible webhook.

Settings (environment only: they belong to the deployment, not to the dlt sources):

| environment variable | default | read | what |
| --- | --- | --- | --- |
| `SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL` | `60` | at load | seconds between two checks |
| `SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN` | `30` | each tick | seconds a check looks back before the last check's start |
| `SVCDESK_ALERT_WEBHOOK_URL` | none | each failure | where failure alerts are POSTed |
| `SVCDESK_DAGSTER_BASE_URL` | `http://127.0.0.1:3000` | each failure | the web UI the alert links to |
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import dlt
import requests
from dagster import (
    AssetKey,
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from svcdesk_dagster.assets import op_name
from svcdesk_dagster.checks import MERGE_KEY_UNIQUE, SCHEMA_CONTRACT
from svcdesk_dagster.jobs import incident_management_sync
from svcdesk_dagster.sources import APIS, INCIDENT_MANAGEMENT
from svcdesk_dagster.sources.errors import vendor_message
from svcdesk_dagster.sources.http import RetrySettings, build_session, redact
from svcdesk_dagster.sources.settings import (
    ApiSettings,
    MissingSettingError,
    env_number,
    resolve_api_settings,
)
from svcdesk_dagster.sources.window import iso_timestamp

if TYPE_CHECKING:  # the step error's type, not exported by `dagster` itself
    from dagster._utils.error import SerializableErrorInfo

INTERVAL_ENV = "SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL"
DEFAULT_INTERVAL_SECONDS = 60
MARGIN_ENV = "SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN"
DEFAULT_MARGIN_SECONDS = 30.0
"""How far each check looks back before the start of the previous one. A change made while a check
is answered, or stamped by a vendor clock a few seconds behind ours, carries a time before that
check's start: the next check still lists it because its window starts this much earlier. The
overlap costs no run: the cursor remembers which changes inside it already asked for one, so a
change asks for exactly one run however many checks list it. Smaller than the syncs' 300 s margin
on purpose: each check lists the overlap's changes again in its one page of 100 and keeps them in
its cursor, and a short overlap leaves that page to new changes and the cursor small."""
CHECK_PAGE_SIZE = 100
"""The most records the vendor lists in one answer: one request sees up to this many changes."""
CHECK_TIMEOUT_SECONDS = 10.0
"""A tick must stay short (the daemon evaluates sensors one after another): one attempt, no
retries, and at most this long; a failed check is simply repeated by the next tick."""

WEBHOOK_ENV = "SVCDESK_ALERT_WEBHOOK_URL"
WEBHOOK_TIMEOUT_SECONDS = 5.0
DAGSTER_BASE_URL_ENV = "SVCDESK_DAGSTER_BASE_URL"
DEFAULT_DAGSTER_BASE_URL = "http://127.0.0.1:3000"

INCIDENTS = AssetKey("incidents")
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


class CheckFailed(Exception):
    """The change check could not get an answer; the message is safe to show (no key)."""


# --- new_incidents_sensor ---------------------------------------------------------------------


def check_margin() -> timedelta:
    return timedelta(seconds=env_number(MARGIN_ENV, DEFAULT_MARGIN_SECONDS, minimum=0))


def check_retry_settings() -> RetrySettings:
    """The project's HTTP settings, cut down for a tick: one attempt, at most 10 s."""
    configured = RetrySettings.from_config()
    return dataclasses.replace(
        configured,
        max_retries=0,
        request_timeout=min(configured.request_timeout, CHECK_TIMEOUT_SECONDS),
    )


class CursorUnreadable(Exception):
    """The sensor's cursor is neither a cursor this module wrote nor a bare timestamp."""


def instant(value: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (`Z` included); one without an offset is UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ChangeCursor:
    """Where the next check starts, and the changes inside the overlap that already asked for a run.

    `since` is sent as `updated_since`. `seen` maps an incident id to the `updated_at` it had when
    a check asked a run for it; it holds only pairs at or after `since`, because older ones are
    never listed again, so it stays as small as the changes of one margin. Serialised as
    `{"since": "<iso>", "seen": {"<id>": "<iso>", ...}}`; a bare timestamp (what the sensor kept
    before it remembered changes, and what an operator is likely to set by hand) means `since`
    with nothing seen.
    """

    since: str
    seen: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str) -> ChangeCursor:
        text = raw.strip()
        if not text.startswith("{"):
            return cls(since=text)
        try:
            document = json.loads(text)
            since, seen = document["since"], document.get("seen") or {}
            if not isinstance(since, str) or not isinstance(seen, dict):
                raise TypeError
            pairs = {str(key): value for key, value in seen.items()}
            for value in pairs.values():
                instant(value)  # a TypeError or ValueError for anything but a timestamp
        except (ValueError, TypeError, KeyError, AttributeError):
            raise CursorUnreadable(f"the sensor's cursor cannot be read: {raw[:200]!r}") from None
        return cls(since=since, seen=pairs)

    def serialise(self) -> str:
        return json.dumps({"since": self.since, "seen": dict(sorted(self.seen.items()))},
                          separators=(",", ":"))

    def is_new(self, incident_id: str, updated_at: str) -> bool:
        """A listed pair no check asked a run for yet: a new id, or a known id changed again."""
        known = self.seen.get(incident_id)
        return known is None or instant(known) != instant(updated_at)


@dataclass(frozen=True)
class ChangeListing:
    """What the one request of a tick answered."""

    changes: dict[str, str]
    """Incident id -> `updated_at`, for every listed record that has both."""
    unreadable: int
    """Listed records without a readable id or `updated_at`: each counts as a new change."""
    total: int
    """How many incidents match, listed or not (at least the number listed)."""

    @property
    def listed(self) -> int:
        return len(self.changes) + self.unreadable


def listed_pair(record: object) -> tuple[str, str] | None:
    """`(id, updated_at)` of one listed record, or None when either is missing or unreadable."""
    if not isinstance(record, dict):
        return None
    incident_id, updated_at = record.get("id"), record.get("updated_at")
    if incident_id in (None, "") or not isinstance(updated_at, str):
        return None
    try:
        instant(updated_at)
    except ValueError:
        return None
    return str(incident_id), updated_at


def list_changes(settings: ApiSettings, retry: RetrySettings, since: str) -> ChangeListing:
    """The incidents the vendor says changed at or after `since`: one request, the first 100.

    `total` counts every match, so a listing cut short by the page size still says how many
    changed; a vendor that leaves it out is taken to have listed them all.
    """
    session = build_session(retry, secrets=(settings.api_key,))
    api = INCIDENT_MANAGEMENT
    try:
        response = session.get(
            f"{settings.base_url}{api.endpoint_path(INCIDENTS.path[-1])}",
            params={
                "limit": CHECK_PAGE_SIZE,
                api.window_params[INCIDENTS.path[-1]]: since,
                "api_key": settings.api_key,
            },
        )
    except requests.RequestException as error:
        raise CheckFailed(f"The incident management API could not be reached: {error}") from None
    finally:
        session.close()
    if response.status_code != 200:
        raise CheckFailed(
            f"The incident management API answered {response.status_code}"
            f"{vendor_message(response)}."
        )
    try:
        body = response.json()
        records = body.get("data") or []
        if not isinstance(records, list):
            raise TypeError
        reported = body.get("total")
        total = int(reported) if reported is not None else len(records)
    except (ValueError, TypeError, AttributeError):
        raise CheckFailed("The incident management API answered 200 with no JSON listing.") from None
    changes: dict[str, str] = {}
    unreadable = 0
    for record in records:
        pair = listed_pair(record)
        if pair is None:
            unreadable += 1
        else:
            changes[pair[0]] = pair[1]
    return ChangeListing(changes=changes, unreadable=unreadable, total=max(total, len(records)))


def skip(context: SensorEvaluationContext, reason: str, secrets: tuple[str, ...] = ()) -> SensorResult:
    """A tick that could not check: the cursor stays, so the next good check covers the gap."""
    safe = redact(reason, secrets)
    context.log.warning(safe)
    return SensorResult(skip_reason=SkipReason(safe))


def why_run(listing: ChangeListing, new: Mapping[str, str], since: str) -> str | None:
    """Why this listing asks for a run, or None when every listed change already asked for one.

    Past the page the changes are unknown: when more incidents match than were listed, some
    may be new (certainly, if more match than the cursor remembers), and a missed change costs
    more than an extra run, which only re-merges.
    """
    reasons = []
    if new:
        shown = ", ".join(sorted(new)[:5]) + (", ..." if len(new) > 5 else "")
        reasons.append(
            f"{len(new)} incident change(s) since {since} not synced by a run yet ({shown})"
        )
    if listing.unreadable:
        reasons.append(
            f"{listing.unreadable} listed incident(s) without a readable id or updated_at"
        )
    if listing.total > listing.listed:
        reasons.append(
            f"{listing.total} incidents changed since {since}, more than the {listing.listed} "
            "one request lists"
        )
    return "; ".join(reasons) or None


def evaluate_new_incidents(context: SensorEvaluationContext) -> SensorResult:
    """One tick: list what changed since the cursor, ask one run for what is new, move the cursor.

    The next window starts at this check's start less the margin (window.py's reasoning: a change
    made while we check, or stamped by a vendor clock behind ours, still falls in it), so
    consecutive windows overlap. The cursor therefore also keeps the `(id, updated_at)` pairs
    listed inside the next window: the next check lists them again and asks no run for them,
    so each change asks for exactly one. A failed check keeps the cursor, so the next good one
    covers the gap. The first tick has no cursor and checks from its own start less the margin:
    it proves the settings work, and asks for a run only for a change in that margin; older
    changes are the schedules' business.
    """
    started = datetime.now(timezone.utc)
    try:
        margin = check_margin()
        settings = resolve_api_settings(INCIDENT_MANAGEMENT.name)
        retry = check_retry_settings()
    except (MissingSettingError, ValueError) as error:
        return skip(context, f"Not checking for incident changes: {error}")
    secrets = (settings.api_key,)
    next_since = iso_timestamp(started - margin)
    try:
        cursor = ChangeCursor.parse(context.cursor) if context.cursor else ChangeCursor(next_since)
    except CursorUnreadable as error:
        return skip(
            context,
            f"Not checking for incident changes: {error}. Delete it (`dagster sensor cursor "
            "new_incidents_sensor --delete`) or set an ISO 8601 timestamp to check from.",
            secrets,
        )
    since = cursor.since
    try:
        listing = list_changes(settings, retry, since)
    except CheckFailed as error:
        return skip(context, f"{error} Will check again from {since}.", secrets)
    new = {key: value for key, value in listing.changes.items() if cursor.is_new(key, value)}
    floor = instant(next_since)
    next_cursor = ChangeCursor(
        since=next_since,
        seen={key: value for key, value in listing.changes.items() if instant(value) >= floor},
    ).serialise()
    reason = why_run(listing, new, since)
    if reason is None:
        already = len(listing.changes)
        besides = f" besides {already} change(s) an earlier check already asked a run for"
        message = f"No incident changed since {since}{besides if already else ''}."
        return SensorResult(skip_reason=SkipReason(redact(message, secrets)), cursor=next_cursor)
    context.log.info(redact(f"{reason}: asking for an incidents sync.", secrets))
    return SensorResult(
        run_requests=[
            RunRequest(
                # One run per checked window: a tick evaluated again with the same cursor (its
                # result was lost) asks for the same run, which Dagster then does not repeat.
                run_key=f"incidents-changed-since-{since}",
                asset_selection=[INCIDENTS],
                tags={"svcdesk/changed_since": since},
            )
        ],
        cursor=next_cursor,
    )


def build_new_incidents_sensor() -> SensorDefinition:
    """The sensor, with its interval read from the environment at load."""
    interval = int(env_number(INTERVAL_ENV, DEFAULT_INTERVAL_SECONDS, minimum=1))

    @sensor(
        name="new_incidents_sensor",
        job=incident_management_sync,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            f"Every {interval} s, asks the incident API which incidents changed since the last "
            "check (one request, up to 100 records) and, if one changed in a way no earlier check "
            "already asked a run for, syncs `incidents`."
        ),
    )
    def new_incidents_sensor(context: SensorEvaluationContext) -> SensorResult:
        return evaluate_new_incidents(context)

    return new_incidents_sensor


new_incidents_sensor = build_new_incidents_sensor()


# --- sync_failure_sensor ----------------------------------------------------------------------


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
    secrets = [os.environ.get(WEBHOOK_ENV, "").strip()]
    for api in APIS:
        try:
            secrets.append(str(dlt.secrets.get(f"sources.{api.name}.api_key", str) or ""))
        except Exception:  # a broken secrets.toml must not stop the alert about a failure
            continue
    return tuple(secret for secret in secrets if secret)


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
    base = os.environ.get(DAGSTER_BASE_URL_ENV, "").strip() or DEFAULT_DAGSTER_BASE_URL
    return f"{base.rstrip('/')}/runs/{run_id}"


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
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
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


SENSORS: tuple[SensorDefinition, ...] = (new_incidents_sensor, sync_failure_sensor)
