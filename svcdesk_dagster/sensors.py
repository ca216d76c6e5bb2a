"""The sensors INTERFACE.md names: a cheap watch on the incident API, and an alert on failed syncs.

`new_incidents_sensor` asks the incident API, once per tick, whether any incident changed since its
cursor, and asks for an `incidents` sync when one did, so an incident reaches the table within a
minute instead of at the next quarter-hour schedule. `sync_failure_sensor` reports every failed run
of the code location in the sensor's log and, when `SVCDESK_ALERT_WEBHOOK_URL` is set, to a
Slack-compatible webhook.

Settings (environment only: they belong to the deployment, not to the dlt sources):

| environment variable | default | read | what |
| --- | --- | --- | --- |
| `SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL` | `60` | at load | seconds between two checks |
| `SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN` | `30` | each tick | seconds the cursor stays behind a check's start |
| `SVCDESK_ALERT_WEBHOOK_URL` | none | each failure | where failure alerts are POSTed |
| `SVCDESK_DAGSTER_BASE_URL` | `http://127.0.0.1:3000` | each failure | the web UI the alert links to |
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
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
"""API_CONTRACT.md: the vendor's clock "can be a few seconds off" ours. Smaller than the syncs'
300 s margin on purpose: a change stamped inside the margin is seen again by the next tick, and
each sighting costs a run; below the 60 s interval, a change asks for at most two."""
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


def count_changes(settings: ApiSettings, retry: RetrySettings, since: str) -> int:
    """How many incidents the vendor says changed at or after `since`: one request, limit 1.

    `total` counts every match, so the one record asked for is only a fallback for a vendor that
    leaves `total` out.
    """
    session = build_session(retry, secrets=(settings.api_key,))
    api = INCIDENT_MANAGEMENT
    try:
        response = session.get(
            f"{settings.base_url}{api.endpoint_path(INCIDENTS.path[-1])}",
            params={
                "limit": 1,
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
        return int(body.get("total") or 0) or len(body.get("data") or [])
    except (ValueError, TypeError, AttributeError):
        raise CheckFailed("The incident management API answered 200 with no JSON listing.") from None


def skip(context: SensorEvaluationContext, reason: str, secrets: tuple[str, ...] = ()) -> SensorResult:
    """A tick that could not check: the cursor stays, so the next good check covers the gap."""
    safe = redact(reason, secrets)
    context.log.warning(safe)
    return SensorResult(skip_reason=SkipReason(safe))


def evaluate_new_incidents(context: SensorEvaluationContext) -> SensorResult:
    """One tick: ask whether anything changed since the cursor, and move the cursor on success.

    The cursor is the start of the previous successful check, less the margin, as an ISO
    timestamp (window.py's reasoning: a change made while we check, or stamped by a vendor clock
    behind ours, still falls in the next window). The first tick has no cursor and checks from
    its own start less the margin: it proves the settings work, and asks for a run only for a
    change in that margin; older changes are the schedules' business.
    """
    started = datetime.now(timezone.utc)
    try:
        margin = check_margin()
        settings = resolve_api_settings(INCIDENT_MANAGEMENT.name)
        retry = check_retry_settings()
    except (MissingSettingError, ValueError) as error:
        return skip(context, f"Not checking for incident changes: {error}")
    next_cursor = iso_timestamp(started - margin)
    since = context.cursor or next_cursor
    try:
        changed = count_changes(settings, retry, since)
    except CheckFailed as error:
        return skip(context, f"{error} Will check again from {since}.", (settings.api_key,))
    if not changed:
        return SensorResult(
            skip_reason=SkipReason(f"No incident changed since {since}."), cursor=next_cursor
        )
    context.log.info(f"{changed} incident(s) changed since {since}: asking for an incidents sync.")
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
            f"Every {interval} s, asks the incident API whether an incident changed since the "
            "last check (one request, limit=1) and, if one did, syncs `incidents`."
        ),
    )
    def new_incidents_sensor(context: SensorEvaluationContext) -> SensorResult:
        return evaluate_new_incidents(context)

    return new_incidents_sensor


new_incidents_sensor = build_new_incidents_sensor()


# --- sync_failure_sensor ----------------------------------------------------------------------


@dataclass(frozen=True)
class FailureSummary:
    """What an operator needs from a failed run, with nothing secret in it."""

    job: str
    run_id: str
    assets: tuple[str, ...]
    error: str
    link: str

    @property
    def text(self) -> str:
        assets = ", ".join(self.assets) or "none recorded"
        return (
            f"Sync failed: job {self.job} (assets: {assets}).\n"
            f"Error: {self.error}\n"
            f"Run: {self.link}"
        )

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


def first_line(text: str) -> str:
    """The first non-blank line, with a qualified exception name shortened to its class name
    (`dagster._core.definitions.events.Failure: ...` reads `Failure: ...`)."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return _QUALIFIED_EXCEPTION.sub(r"\g<name>: ", line, count=1)


def error_line(error: SerializableErrorInfo) -> str:
    """The first line of a step's error; for a step that used up its retries, the first line of
    the error it kept failing with (Dagster's own line only says `Exceeded max_retries of 3`)."""
    wrapper = None
    while error.cause is not None and (
        error.cls_name in RETRY_WRAPPERS or error.message.startswith("Exceeded max_retries")
    ):
        wrapper = first_line(error.message)
        error = error.cause
    line = first_line(error.message)
    return f"{line} ({wrapper})" if wrapper and line else line or (wrapper or "")


def failure_error(context: RunFailureSensorContext) -> str:
    """The first line of the first failed step's error, else of the run's failure message."""
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        if error is not None and error_line(error):
            return error_line(error)
    return first_line(context.failure_event.message or "") or "no error message recorded"


def planned_assets(context: RunFailureSensorContext) -> tuple[str, ...]:
    """The assets the run set out to materialize, as its event log recorded them."""
    run = context.dagster_run
    if run.asset_selection:
        return tuple(sorted(key.to_user_string() for key in run.asset_selection))
    records = context.instance.get_records_for_run(
        run_id=run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    keys = {
        record.event_log_entry.dagster_event.asset_key
        for record in records
        if record.event_log_entry.dagster_event is not None
    }
    return tuple(sorted(key.to_user_string() for key in keys if key is not None))


def run_link(run_id: str) -> str:
    base = os.environ.get(DAGSTER_BASE_URL_ENV, "").strip() or DEFAULT_DAGSTER_BASE_URL
    return f"{base.rstrip('/')}/runs/{run_id}"


def summarize_failure(context: RunFailureSensorContext, secrets: Iterable[str] = ()) -> FailureSummary:
    run = context.dagster_run
    return FailureSummary(
        job=run.job_name,
        run_id=run.run_id,
        assets=planned_assets(context),
        error=redact(failure_error(context), tuple(secrets)),
        link=run_link(run.run_id),
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
