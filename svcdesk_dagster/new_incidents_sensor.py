"""`new_incidents_sensor`: a cheap watch on the incident API between the scheduled syncs.

Once per tick it asks the incident API which incidents changed since its cursor (one request, the
first 100 changes), and asks for an `incidents` sync when one of them is a change it has not
already asked a run for, so an incident reaches the table within a minute instead of at the next
quarter-hour schedule, and one change brings one run.

Each check looks back a margin (`SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN`, 30 s) before the start of
the previous one. A change made while a check is answered, or stamped by a vendor clock a few
seconds behind ours, carries a time before that check's start: the next check still lists it
because its window starts this much earlier. The overlap costs no run: the cursor remembers which
changes inside it already asked for one, so a change asks for exactly one run however many checks
list it. Smaller than the syncs' 300 s margin on purpose: each check lists the overlap's changes
again in its one page of 100 and keeps them in its cursor, and a short overlap leaves that page to
new changes and the cursor small. The interval between checks is
`SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL` (60 s, read at load).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import requests
from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from svcdesk_dagster.jobs import AssetJob, sync_job

if TYPE_CHECKING:
    from svcdesk_dagster.sources import ApiRead
from svcdesk_dagster.settings import (
    MissingSettingError,
    RetrySettings,
    sensor_interval_seconds,
    sensor_margin,
)
from svcdesk_dagster.sources import (
    INCIDENT_MANAGEMENT,
    iso_timestamp,
    open_read,
    redact,
    vendor_message,
)

CHECK_PAGE_SIZE = 100
"""The most records the vendor lists in one answer: one request sees up to this many changes."""
CHECK_TIMEOUT_SECONDS = 10.0
"""A tick must stay short (the daemon evaluates sensors one after another): one attempt, no
retries, and at most this long; a failed check is simply repeated by the next tick."""

INCIDENTS = AssetKey("incidents")


class CheckFailed(Exception):
    """The change check could not get an answer; the message is safe to show (no key)."""


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


def list_changes(read: ApiRead, since: str) -> ChangeListing:
    """The incidents the vendor says changed at or after `since`: one request, the first 100.

    `total` counts every match, so a listing cut short by the page size still says how many
    changed; a vendor that leaves it out is taken to have listed them all.
    """
    try:
        response = read.first_changes(INCIDENTS.path[-1], since, CHECK_PAGE_SIZE)
    except requests.RequestException as error:
        raise CheckFailed(f"The incident management API could not be reached: {error}") from None
    finally:
        read.close()
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
        margin = sensor_margin()
        read = open_read(INCIDENT_MANAGEMENT, http=check_retry_settings())
    except (MissingSettingError, ValueError) as error:
        return skip(context, f"Not checking for incident changes: {error}")
    secrets = read.secrets
    next_since = iso_timestamp(started - margin)
    try:
        cursor = ChangeCursor.parse(context.cursor) if context.cursor else ChangeCursor(next_since)
    except CursorUnreadable as error:
        read.close()
        return skip(
            context,
            f"Not checking for incident changes: {error}. Delete it (`dagster sensor cursor "
            "new_incidents_sensor --delete`) or set an ISO 8601 timestamp to check from.",
            secrets,
        )
    since = cursor.since
    try:
        listing = list_changes(read, since)
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


def build_new_incidents_sensor(
    job: AssetJob | None = None,
) -> SensorDefinition:
    """The sensor, running `job` (the incident API's sync job, built anew when not given), with
    its interval read at load."""
    interval = sensor_interval_seconds()

    @sensor(
        name="new_incidents_sensor",
        job=job if job is not None else sync_job(INCIDENT_MANAGEMENT),
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

