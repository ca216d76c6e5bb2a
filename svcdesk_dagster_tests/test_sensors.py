"""The two sensors against the simulator: the cheap change check, and the failure alert.

`new_incidents_sensor` is evaluated tick by tick with the cursor each tick returned, as the daemon
does; `sync_failure_sensor` is given a real failed run, executed in process, and posts to a webhook
receiver on 127.0.0.1 that this module serves.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
import yaml
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    ExecuteInProcessResult,
    RunRequest,
    SensorDefinition,
    build_run_status_sensor_context,
    build_sensor_context,
)

from svcdesk_dagster.checks import CHECKS
from svcdesk_dagster.definitions import defs
from svcdesk_dagster.failure_alerts import (
    MAX_CHECK_LINES,
    MAX_LINE_CHARS,
    FailedCheck,
    FailureSummary,
    error_line,
)
from svcdesk_dagster.new_incidents_sensor import build_new_incidents_sensor
from svcdesk_dagster.sources.window import iso_timestamp
from svcdesk_dagster_tests.conftest import (
    INCIDENT_MANAGEMENT_KEY,
    SERVICE_DESK_KEY,
    Project,
    unused_port,
)
from svcdesk_simulator import Simulator

if TYPE_CHECKING:
    from dagster._core.definitions.sensor_definition import SensorExecutionData

WRONG_KEY = "im-wrong-key-5555555555"


def sensor_def(name: str) -> SensorDefinition:
    return next(sensor for sensor in defs.sensors or [] if sensor.name == name)


def tick(cursor: str | None) -> SensorExecutionData:
    """One evaluation of `new_incidents_sensor`, as the daemon runs it, from `cursor`."""
    context = build_sensor_context(cursor=cursor, definitions=defs)
    return sensor_def("new_incidents_sensor").evaluate_tick(context)


def incident_checks(simulator: Simulator) -> list[dict[str, str]]:
    return [info.params for info in simulator.requests if info.resource == "incidents"]


def since_of(cursor: str | None) -> str:
    """Where the next check starts, from a cursor the sensor returned."""
    assert cursor is not None
    return json.loads(cursor)["since"]


def seen_of(cursor: str | None) -> dict[str, str]:
    """The changes a cursor remembers as already asked a run for."""
    assert cursor is not None
    return json.loads(cursor)["seen"]


def run_ticks(cursor: str | None, count: int) -> list[SensorExecutionData]:
    """`count` consecutive ticks, each from the cursor the previous one returned."""
    results = []
    for _ in range(count):
        results.append(tick(cursor))
        cursor = results[-1].cursor
    return results


def run_requests(results: list[SensorExecutionData]) -> list[RunRequest]:
    return [request for result in results for request in result.run_requests]


# --- new_incidents_sensor ---------------------------------------------------------------------


def test_the_sensor_targets_incidents_through_the_incident_sync_and_starts_stopped() -> None:
    sensor = sensor_def("new_incidents_sensor")

    assert sensor.job_name == "incident_management_sync"
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == 60


def test_first_tick_starts_the_cursor_with_one_request(
    simulator: Simulator, project: Project
) -> None:
    before = datetime.now(timezone.utc)
    result = tick(None)
    after = datetime.now(timezone.utc)

    assert result.run_requests == []
    assert "No incident changed" in (result.skip_message or "")
    # The cursor starts at the check's start less the 30 s margin, in the contract's timestamp
    # shape, and remembers nothing: nothing changed in that margin.
    margin = timedelta(seconds=30)
    since = since_of(result.cursor)
    assert iso_timestamp(before - margin) <= since <= iso_timestamp(after - margin)
    assert seen_of(result.cursor) == {}
    assert incident_checks(simulator) == [{"limit": "100", "updated_since": since}]
    assert simulator.request_count() == 1


def test_no_change_means_no_run(simulator: Simulator, project: Project) -> None:
    first = tick(None)
    simulator.reset_request_log()

    second = tick(first.cursor)

    assert second.run_requests == []
    assert incident_checks(simulator) == [{"limit": "100", "updated_since": since_of(first.cursor)}]
    assert since_of(second.cursor) > since_of(first.cursor)


@pytest.mark.parametrize("change", ["create", "update"])
def test_a_change_asks_for_one_incidents_run(
    simulator: Simulator, project: Project, change: str
) -> None:
    first = tick(None)
    if change == "create":
        changed = simulator.create_incident(title="Checkout is down")
    else:
        changed = simulator.update_incident(simulator.live_incidents()[17]["id"], status="resolved")
    simulator.reset_request_log()

    second = tick(first.cursor)

    assert len(second.run_requests) == 1
    request = second.run_requests[0]
    assert request.asset_selection == [AssetKey("incidents")]
    assert request.run_key == f"incidents-changed-since-{since_of(first.cursor)}"
    assert request.tags["svcdesk/changed_since"] == since_of(first.cursor)
    assert incident_checks(simulator) == [{"limit": "100", "updated_since": since_of(first.cursor)}]
    assert since_of(second.cursor) > since_of(first.cursor)
    # Inside the next window: remembered, so the next check does not ask for it again.
    assert seen_of(second.cursor) == {changed["id"]: changed["updated_at"]}


def test_a_tick_evaluated_again_with_the_same_cursor_asks_for_the_same_run(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    simulator.create_incident(title="Checkout is down")

    lost = tick(first.cursor)
    again = tick(first.cursor)

    assert [request.run_key for request in lost.run_requests] == [
        request.run_key for request in again.run_requests
    ]


def test_one_change_seen_by_three_ticks_asks_for_one_run(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    changed = simulator.update_incident(simulator.live_incidents()[5]["id"], status="acknowledged")

    results = run_ticks(first.cursor, 3)

    # Every one of the three windows still holds the change (it is younger than the margin) ...
    for result in results:
        assert since_of(result.cursor) <= changed["updated_at"]
    # ... but only the first check that lists it asks for a run.
    requests = run_requests(results)
    assert len(requests) == 1
    assert requests[0].asset_selection == [AssetKey("incidents")]
    assert len(results[0].run_requests) == 1
    assert "already asked a run for" in (results[1].skip_message or "")
    assert "already asked a run for" in (results[2].skip_message or "")


def test_a_change_made_during_a_check_asks_for_one_run(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    incidents = simulator.live_incidents()
    # While the vendor answers the next check, before the answer is built: that check lists it.
    while_checking = incidents[7]["id"]
    hook = simulator.on_request(
        lambda info: simulator.update_incident(while_checking, status="acknowledged")
    )
    started = datetime.now(timezone.utc)
    during = tick(first.cursor)
    hook.remove()
    # After that answer, but stamped before the check started (the vendor wrote the change a
    # moment before it answered the next query): only the next check can list it.
    after_answer = incidents[8]["id"]
    simulator.update_incident(
        after_answer, status="resolved", updated_at=iso_timestamp(started - timedelta(seconds=5))
    )

    results = [during, *run_ticks(during.cursor, 2)]

    assert [len(result.run_requests) for result in results] == [1, 1, 0]
    assert set(seen_of(results[0].cursor)) == {while_checking}
    assert set(seen_of(results[1].cursor)) == {while_checking, after_answer}


def test_the_same_incident_changed_in_two_ticks_asks_for_two_runs(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    incident = simulator.live_incidents()[11]["id"]
    simulator.update_incident(incident, status="acknowledged")
    after_first_change = tick(first.cursor)
    simulator.update_incident(incident, status="resolved")

    after_second_change, quiet = run_ticks(after_first_change.cursor, 2)

    assert len(after_first_change.run_requests) == 1
    assert len(after_second_change.run_requests) == 1
    assert quiet.run_requests == []
    assert after_first_change.run_requests[0].run_key != after_second_change.run_requests[0].run_key
    assert seen_of(after_second_change.cursor) == {
        incident: simulator.get("incidents", incident)["updated_at"]
    }


def test_a_bare_timestamp_cursor_is_read_as_where_to_check_from(
    simulator: Simulator, project: Project
) -> None:
    # What the sensor kept before it remembered changes: a deployment's running sensor has one.
    old_cursor = iso_timestamp(datetime.now(timezone.utc) - timedelta(seconds=30))
    changed = simulator.create_incident(title="Raised across the upgrade")
    simulator.reset_request_log()

    upgraded, after = run_ticks(old_cursor, 2)

    assert incident_checks(simulator)[0] == {"limit": "100", "updated_since": old_cursor}
    assert len(upgraded.run_requests) == 1
    assert upgraded.run_requests[0].run_key == f"incidents-changed-since-{old_cursor}"
    assert seen_of(upgraded.cursor) == {changed["id"]: changed["updated_at"]}
    assert after.run_requests == []


def test_more_changes_than_one_request_lists_ask_for_a_run(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    for number in range(101):
        simulator.create_incident(title=f"Storm {number}")
    simulator.reset_request_log()

    storm, still_storm = run_ticks(first.cursor, 2)

    assert len(storm.run_requests) == 1
    assert storm.run_requests[0].asset_selection == [AssetKey("incidents")]
    assert len(seen_of(storm.cursor)) == 100  # what the one request listed
    # The next check cannot tell whether the 101st record is new either: it asks again rather
    # than risk missing a change (the extra run only re-merges).
    assert len(still_storm.run_requests) == 1
    assert [params["limit"] for params in incident_checks(simulator)] == ["100", "100"]


def test_the_cursor_moves_past_a_change_once_its_window_is_checked(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    # Stamped at the very start of the next window (`updated_since` is inclusive), as a vendor
    # clock behind ours would stamp a change made just after the first check.
    incident = simulator.live_incidents()[3]["id"]
    simulator.update_incident(incident, status="acknowledged", updated_at=since_of(first.cursor))

    with_change = tick(first.cursor)
    after_change = tick(with_change.cursor)

    assert len(with_change.run_requests) == 1
    assert after_change.run_requests == []
    assert "No incident changed" in (after_change.skip_message or "")
    assert since_of(first.cursor) < since_of(with_change.cursor) < since_of(after_change.cursor)


def test_the_cursor_forgets_changes_older_than_its_window(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    incidents = simulator.live_incidents()
    # One change at the start of the next window, one now: both asked for by the next check.
    old = simulator.update_incident(
        incidents[3]["id"], status="acknowledged", updated_at=since_of(first.cursor)
    )
    recent = simulator.update_incident(incidents[4]["id"], status="acknowledged")

    result = tick(first.cursor)

    assert len(result.run_requests) == 1
    # The old one is before the next window: never listed again, so not kept.
    assert since_of(result.cursor) > old["updated_at"]
    assert seen_of(result.cursor) == {recent["id"]: recent["updated_at"]}


def test_the_margin_catches_a_change_stamped_by_a_vendor_clock_behind_ours(
    simulator: Simulator, project: Project
) -> None:
    # Changed after the check started, but stamped 10 s earlier by the vendor's clock: a cursor at
    # the check's start would miss it; the default 30 s margin does not, and the change asks for
    # one run even though the next window holds it too.
    first = tick(None)
    simulator.clock_offset = -timedelta(seconds=10)
    simulator.create_incident(title="Stamped in the past")

    results = run_ticks(first.cursor, 2)

    assert [len(result.run_requests) for result in results] == [1, 0]


def test_an_unreadable_cursor_skips_and_stays(simulator: Simulator, project: Project) -> None:
    result = tick('{"seen": {}}')

    assert result.run_requests == []
    assert "cursor cannot be read" in (result.skip_message or "")
    assert result.cursor == '{"seen": {}}'
    assert simulator.request_count() == 0


def test_an_outage_skips_and_keeps_the_cursor_until_a_good_check(
    simulator: Simulator, project: Project
) -> None:
    first = tick(None)
    simulator.faults.outage(status=500, resource="incidents")
    simulator.create_incident(title="Raised during the outage")
    simulator.reset_request_log()

    failed = tick(first.cursor)

    assert failed.run_requests == []
    assert "answered 500" in (failed.skip_message or "")
    assert failed.cursor == first.cursor  # unchanged: the next good check still covers the gap
    assert simulator.request_count(resource="incidents") == 1  # no retries inside a tick

    simulator.faults.clear()
    recovered = tick(failed.cursor)

    assert len(recovered.run_requests) == 1
    assert since_of(recovered.cursor) > since_of(first.cursor)


def test_a_wrong_key_skips_without_showing_it(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tick(None)
    monkeypatch.setenv("SOURCES__INCIDENT_MANAGEMENT__API_KEY", WRONG_KEY)

    result = tick(first.cursor)

    assert result.run_requests == []
    assert "answered 401" in (result.skip_message or "")
    assert WRONG_KEY not in (result.skip_message or "")
    assert result.cursor == first.cursor


def test_an_unreachable_api_skips_without_showing_the_key(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__INCIDENT_MANAGEMENT__BASE_URL", f"http://127.0.0.1:{unused_port()}")

    result = tick("2026-11-20T08:15:02.517Z")

    assert result.run_requests == []
    assert "could not be reached" in (result.skip_message or "")
    assert INCIDENT_MANAGEMENT_KEY not in (result.skip_message or "")
    assert result.cursor == "2026-11-20T08:15:02.517Z"


def test_missing_configuration_skips_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCES__INCIDENT_MANAGEMENT__BASE_URL", raising=False)
    monkeypatch.delenv("SOURCES__INCIDENT_MANAGEMENT__API_KEY", raising=False)

    result = tick(None)

    assert result.run_requests == []
    assert "SOURCES__INCIDENT_MANAGEMENT__BASE_URL" in (result.skip_message or "")
    assert "SOURCES__INCIDENT_MANAGEMENT__API_KEY" in (result.skip_message or "")
    assert result.cursor is None


def test_a_malformed_margin_skips_naming_the_setting(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN", "half a minute")

    result = tick(None)

    assert "SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN" in (result.skip_message or "")
    assert simulator.request_count() == 0


def test_the_check_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL", "15")

    assert build_new_incidents_sensor().minimum_interval_seconds == 15

    monkeypatch.setenv("SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL", "every minute")
    with pytest.raises(ValueError, match="SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL"):
        build_new_incidents_sensor()


def test_a_malformed_http_setting_skips_naming_it(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__HTTP__REQUEST_TIMEOUT", "soon")

    result = tick(None)

    assert "SOURCES__HTTP__REQUEST_TIMEOUT" in (result.skip_message or "")
    assert simulator.request_count() == 0


# --- sync_failure_sensor ----------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """A Slack-like webhook on 127.0.0.1 that records what it is sent and answers `status`."""

    status: int = 200
    posts: list[dict[str, object]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.posts.append(json.loads(body))
            self.send_response(receiver.status)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 (readiness probe)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret-token"
    wait_until_answering(receiver.url)
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_until_answering(url: str, attempts: int = 100) -> None:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            continue
    raise AssertionError(f"nothing answered at {url}")


@pytest.fixture
def failed_run(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DagsterInstance, ExecuteInProcessResult]]:
    """A real failed `service_desk_sync`: a wrong key, rejected by the simulator with 401."""
    monkeypatch.setenv("SOURCES__SERVICE_DESK__API_KEY", WRONG_KEY)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("service_desk_sync").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        assert simulator.request_count(resource="tickets", status=401) >= 1
        # The alert is sent from the daemon's environment, where the right key may well be set.
        monkeypatch.setenv("SOURCES__SERVICE_DESK__API_KEY", SERVICE_DESK_KEY)
        yield instance, result


def evaluate_failure_sensor(instance: DagsterInstance, result: ExecuteInProcessResult) -> None:
    evaluate_failure_sensor_on(instance, result.dagster_run, result.get_run_failure_event())


def evaluate_failure_sensor_on(
    instance: DagsterInstance, run: DagsterRun, failure: DagsterEvent
) -> None:
    """The sensor's evaluation for one failed run, as the daemon makes it."""
    context = build_run_status_sensor_context(
        sensor_name="sync_failure_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
    )
    sensor_def("sync_failure_sensor")(context)


def posted_text(webhook: WebhookReceiver) -> str:
    """The one alert the webhook received: Slack's shape, `text` and nothing else."""
    assert len(webhook.posts) == 1
    assert set(webhook.posts[0]) == {"text"}
    return str(webhook.posts[0]["text"])


def assert_lines_complete(text: str) -> None:
    """No line of the alert stops at a colon, except the two that announce a list."""
    for line in text.splitlines():
        assert line in ("Failed checks:", "What to do:") or not line.rstrip().endswith(":"), line


def assert_no_secret(text: str, receiver_url: str = "") -> None:
    for secret in (WRONG_KEY, SERVICE_DESK_KEY, INCIDENT_MANAGEMENT_KEY):
        assert secret not in text
    if receiver_url:
        assert "secret-token" not in text


def test_the_failure_sensor_is_on_by_default() -> None:
    sensor = sensor_def("sync_failure_sensor")

    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_a_failed_sync_is_posted_to_the_webhook(
    failed_run: tuple[DagsterInstance, ExecuteInProcessResult],
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    instance, result = failed_run
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("SVCDESK_DAGSTER_BASE_URL", "http://dagster.example.internal:3000/")
    run_id = result.dagster_run.run_id

    evaluate_failure_sensor(instance, result)

    assert len(webhook.posts) == 1
    text = str(webhook.posts[0]["text"])
    assert set(webhook.posts[0]) == {"text"}
    assert "job service_desk_sync" in text
    assert "assets: tickets" in text
    # (the message may name the base URL the API was called at)
    assert re.search(r"Authentication failed for the service desk API( at \S+)? \(401", text)
    assert "SOURCES__SERVICE_DESK__API_KEY" in text  # the setting's name, never its value
    assert f"http://dagster.example.internal:3000/runs/{run_id}" in text
    assert 'What to do:\n- Look the error up in README "When something goes wrong"' in text
    assert "Failed checks" not in text
    assert_lines_complete(text)
    assert_no_secret(text, webhook.url)
    logged = capfd.readouterr()
    assert "Sync failed: job service_desk_sync" in logged.err + logged.out
    assert_no_secret(logged.err + logged.out, webhook.url)


def test_without_a_webhook_the_failure_is_logged_only(
    failed_run: tuple[DagsterInstance, ExecuteInProcessResult],
    capfd: pytest.CaptureFixture[str],
) -> None:
    instance, result = failed_run

    evaluate_failure_sensor(instance, result)

    logged = capfd.readouterr()
    output = logged.err + logged.out
    assert "Sync failed: job service_desk_sync (assets: tickets)" in output
    assert f"http://127.0.0.1:3000/runs/{result.dagster_run.run_id}" in output
    assert_no_secret(output)


def test_a_webhook_answering_500_does_not_fail_the_sensor(
    failed_run: tuple[DagsterInstance, ExecuteInProcessResult],
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    instance, result = failed_run
    webhook.status = 500
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)

    evaluate_failure_sensor(instance, result)

    assert len(webhook.posts) == 1
    logged = capfd.readouterr()
    output = logged.err + logged.out
    assert "webhook (SVCDESK_ALERT_WEBHOOK_URL) answered 500" in output
    assert_no_secret(output, webhook.url)


def test_an_unreachable_webhook_does_not_fail_the_sensor(
    failed_run: tuple[DagsterInstance, ExecuteInProcessResult],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    instance, result = failed_run
    url = f"http://127.0.0.1:{unused_port()}/services/T000/B000/secret-token"
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", url)

    evaluate_failure_sensor(instance, result)

    logged = capfd.readouterr()
    output = logged.err + logged.out
    assert "webhook (SVCDESK_ALERT_WEBHOOK_URL) could not be reached" in output
    assert_no_secret(output, url)



def test_a_step_that_used_up_its_retries_is_reported_by_the_error_it_kept_failing_with() -> None:
    # The shape Dagster records when a step's RetryPolicy runs out (execute_plan.py): its own line
    # says only how many retries there were; the real error is the cause.
    from dagster._utils.error import SerializableErrorInfo

    kept_failing = SerializableErrorInfo(
        message=(
            "dagster._core.definitions.events.Failure: The service desk API kept failing at GET "
            "/v1/tickets: it answered 503\nmore detail\n"
        ),
        stack=[],
        cls_name="Failure",
    )
    exhausted = SerializableErrorInfo(
        message="Exceeded max_retries of 3\n",
        stack=[],
        cls_name="RetryRequestedFromPolicy",
        cause=kept_failing,
    )

    line = error_line(exhausted)

    assert line.startswith("Failure: The service desk API kept failing at GET /v1/tickets")
    assert line.endswith("it answered 503 (Exceeded max_retries of 3)")


def test_a_lasting_vendor_outage_is_reported_by_the_error_the_sync_kept_failing_with(
    simulator: Simulator,
    project: Project,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulator.faults.outage(status=503, resource="tickets")
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)

    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("service_desk_sync").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        evaluate_failure_sensor(instance, result)

    text = posted_text(webhook)
    lines = text.splitlines()
    assert lines[0] == "Sync failed: job service_desk_sync (assets: tickets)."
    assert re.match(
        r"Error: Failure: The service desk API .*kept failing at GET \S*/v1/tickets", lines[1]
    )
    assert lines[1].endswith("(Exceeded max_retries of 3)")
    assert 'README "When something goes wrong"' in text
    assert_lines_complete(text)
    assert_no_secret(text, webhook.url)


# --- sync_failure_sensor: blocking checks and dead workers ------------------------------------


def tickets_checks_alone(instance: DagsterInstance) -> ExecuteInProcessResult:
    """Both checks of `tickets` and no materialization: what the UI's Checks tab "Execute" runs."""
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(),
        asset_check_selection={AssetCheckKey(AssetKey("tickets"), name) for name in CHECKS},
    )
    return job.execute_in_process(instance=instance, raise_on_error=False)


def test_blocking_checks_run_alone_name_the_asset_each_check_and_what_differs(
    simulator: Simulator,
    project: Project,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with DagsterInstance.ephemeral() as loading:
        assert defs.resolve_job_def("service_desk_sync").execute_in_process(instance=loading).success
    # A row copied by hand and a column dropped by hand: both checks of `tickets` fail with ERROR.
    with duckdb.connect(str(project.duckdb_file)) as con:
        con.execute("INSERT INTO service_desk.tickets SELECT * FROM service_desk.tickets WHERE id = 42")
        con.execute("ALTER TABLE service_desk.tickets DROP COLUMN priority")
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)

    with DagsterInstance.ephemeral() as instance:
        result = tickets_checks_alone(instance)
        assert not result.success
        assert result.dagster_run.job_name == "__ASSET_JOB"
        evaluate_failure_sensor(instance, result)

    text = posted_text(webhook)
    lines = text.splitlines()
    rows = len(simulator.live_tickets()) + 1
    assert lines[0] == "Blocking checks failed: assets launched from the UI / CLI (assets: tickets)."
    assert lines[1:3] == [
        "Failed checks:",
        f"- tickets.merge_key_unique: {rows} rows, 0 null keys, 1 repeated keys, 0 child rows "
        "with a broken link to their parent.",
    ]
    assert lines[3].startswith("- tickets.schema_contract: ERROR tickets.priority: declared column")
    assert lines[4] == "What to do:"
    assert any('README "merge_key_unique"' in line for line in lines[5:])
    assert any('README "schema_contract"' in line for line in lines[5:])
    assert lines[-1] == f"Run: http://127.0.0.1:3000/runs/{result.dagster_run.run_id}"
    assert "__ASSET_JOB" not in text
    assert "DagsterAssetCheckFailedError" not in text
    assert "none recorded" not in text
    assert_lines_complete(text)
    assert_no_secret(text, webhook.url)
    logged = capfd.readouterr()
    assert "Blocking checks failed: assets launched from the UI / CLI" in logged.err + logged.out


def test_a_blocking_check_failed_by_a_vendor_type_change_names_the_column_and_records(
    simulator: Simulator,
    project: Project,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The vendor starts sending `assignee_id` (an integer) as text: the load goes on, the values
    # move to a variant column, and schema_contract fails with ERROR after the materialization.
    # The other vendor adds a field to incidents: a WARN in the same run, listed after the ERROR.
    simulator.set_field_transform("tickets", "assignee_id", lambda v: None if v is None else f"U-{v}")
    simulator.add_extra_field("incidents", "impact_score", 3)
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)

    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("full_refresh").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        assert result.get_asset_materialization_events()  # the tables were loaded
        evaluate_failure_sensor(instance, result)

    text = posted_text(webhook)
    lines = text.splitlines()
    assert lines[0] == (
        "Blocking check failed: job full_refresh (assets: incidents, services, tickets)."
    )
    assert lines[1] == "Failed checks:"
    check = lines[2]
    assert check.startswith(
        "- tickets.schema_contract: ERROR tickets.assignee_id__v_text: "
    ), check
    assert "(expected bigint, found text; records " in check
    assert len(check) <= len("- ") + MAX_LINE_CHARS
    assert lines[3].startswith(
        "- incidents.schema_contract (WARN, does not block): WARN incidents.impact_score: new column"
    ), lines[3]
    assert lines[4:6] == [
        "What to do:",
        "- schema_contract: the vendor changed a field, or someone changed the table; "
        'README "schema_contract", "What to do when it fails".',
    ]
    assert lines[6] == f"Run: http://127.0.0.1:3000/runs/{result.dagster_run.run_id}"
    assert "Error:" not in text and "DagsterAssetCheckFailedError" not in text
    assert_lines_complete(text)
    assert_no_secret(text, webhook.url)


def start_run(instance: DagsterInstance, job_name: str, **options: object) -> DagsterRun:
    """A run of `job_name` created in `instance` and started, as a launched run worker does."""
    run = instance.create_run_for_job(job_def=defs.resolve_job_def(job_name), **options)
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name),
        run_id=run.run_id,
    )
    return run


def project_run_retries() -> dict[str, object]:
    """The `run_retries` of the project's dagster.yaml: a run whose worker died is retried."""
    settings = yaml.safe_load((Path(__file__).parents[1] / "dagster.yaml").read_text())
    return settings["run_retries"]


@pytest.mark.parametrize("who", ["code server", "run monitoring"])
def test_a_run_whose_process_died_says_so_and_names_its_assets(
    project: Project, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)
    # With the project's instance settings the dead run is retried; without them it is not.
    retries = who == "code server"
    settings = {"run_retries": project_run_retries()} if retries else None

    with DagsterInstance.ephemeral(settings=settings) as instance:
        if who == "code server":
            # What the code server records when a run's process exits before the run finished
            # (dagster/_grpc/server.py): its exit, then a run failure with no error of its own.
            from dagster._utils import get_run_crash_explanation

            run = start_run(instance, "service_desk_sync")
            cause = get_run_crash_explanation(f"Run execution process for {run.run_id}", -9)
            assert "was terminated by signal 9 (SIGKILL)." in cause
            instance.report_engine_event(cause, run)
            failure = instance.report_run_failed(run)
            assets = "tickets"
        else:
            # What run monitoring records for a worker it found dead (a killed pod, say).
            run = start_run(
                instance, "incident_management_sync", asset_selection={AssetKey("incidents")}
            )
            cause = f"Detected run worker status FAILED. Marking run {run.run_id} as failed."
            failure = instance.report_run_failed(run, cause)
            assets = "incidents"
        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.is_failure
        evaluate_failure_sensor_on(instance, failed, failure)

    text = posted_text(webhook)
    lines = text.splitlines()
    assert lines[0] == f"Run process died: job {run.job_name} (assets: {assets})."
    assert lines[1].startswith(f"Cause: {cause}")
    assert lines[2:4] == [
        "What to do:",
        "- The run's process died before the run finished (killed, out of memory, machine "
        "restart): nothing to repair, the next run continues from the stored window "
        '(README "Operating it").' + (" Dagster retries the run." if retries else ""),
    ]
    assert lines[4] == f"Run: http://127.0.0.1:3000/runs/{run.run_id}"
    assert_lines_complete(text)


def test_checks_that_could_not_read_the_destination_say_why(
    project: Project,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    unusable = tmp_path / "a-directory-not-a-database"
    unusable.mkdir()
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(unusable))
    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)

    with DagsterInstance.ephemeral() as instance:
        result = tickets_checks_alone(instance)
        assert not result.success
        evaluate_failure_sensor(instance, result)

    lines = posted_text(webhook).splitlines()
    assert lines[0] == "Checks could not run: assets launched from the UI / CLI (assets: tickets)."
    # The checks' own message, or the exception of the database driver that Dagster wrapped in
    # an error of its own: either way what went wrong, not where Dagster caught it.
    assert lines[1].startswith("Error: "), lines[1]
    assert "Error occurred while executing op" not in lines[1]
    assert (
        "could not open the destination `duckdb`" in lines[1]
        or "a-directory-not-a-database" in lines[1]
    ), lines[1]
    assert lines[2:4] == [
        "What to do:",
        '- The checks could not run: fix what the error names (README "Asset checks"), then '
        "execute them again.",
    ]


def test_a_run_that_failed_outside_its_steps_shows_its_error(
    project: Project, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Dagster records when a run fails before or between its steps (its resources could not
    # be set up, say): a run failure carrying the error, and no failed step.
    from dagster._core.events import JobFailureData, RunFailureReason
    from dagster._utils.error import SerializableErrorInfo

    monkeypatch.setenv("SVCDESK_ALERT_WEBHOOK_URL", webhook.url)
    error = SerializableErrorInfo(
        message=(
            "dagster._core.errors.DagsterResourceFunctionError: resource dlt failed: "
            f"key {SERVICE_DESK_KEY}\n"
        ),
        stack=[],
        cls_name="DagsterResourceFunctionError",
    )
    with DagsterInstance.ephemeral() as instance:
        run = start_run(instance, "service_desk_sync")
        failure = instance.report_run_failed(
            run,
            "An exception was thrown during execution.",
            JobFailureData(error=error, failure_reason=RunFailureReason.RUN_EXCEPTION),
        )
        evaluate_failure_sensor_on(instance, instance.get_run_by_id(run.run_id), failure)

    text = posted_text(webhook)
    lines = text.splitlines()
    assert lines[0] == "Run failed: job service_desk_sync (assets: tickets)."
    assert lines[1] == "Error: DagsterResourceFunctionError: resource dlt failed: key ***"
    assert "README \"When something goes wrong\"" in lines[3]
    assert_no_secret(text, webhook.url)


def test_a_long_list_of_failed_checks_is_capped() -> None:
    checks = tuple(
        FailedCheck(asset=f"asset{n:02}", check="schema_contract", severity=severity,
                    description="x" * 1000)
        for n, severity in enumerate(["ERROR"] * 11 + ["WARN"])
    )
    summary = FailureSummary(
        headline="Blocking checks failed",
        job="__ASSET_JOB",
        run_id="r1",
        assets=tuple(check.asset for check in checks),
        error="",
        link="http://127.0.0.1:3000/runs/r1",
        failed_checks=checks,
    )

    listed = [line for line in summary.text.splitlines() if line.startswith("- asset")]

    assert summary.text.startswith(
        "Blocking checks failed: assets launched from the UI / CLI (assets: asset00, "
    )
    assert len(listed) == MAX_CHECK_LINES
    assert all(len(line) <= len("- ") + MAX_LINE_CHARS and line.endswith("...") for line in listed)
    assert "- and 2 more (see the run)" in summary.text
    assert checks[-1].line.startswith("asset11.schema_contract (WARN, does not block): xxx")


def test_an_unexpected_exception_is_reported_by_itself_not_by_dagsters_wrapper() -> None:
    # What Dagster records for an exception raised by the project's code that is not a Failure:
    # its own error says only which op it was running, ending with a colon; the cause says what.
    from dagster._utils.error import SerializableErrorInfo

    raised = SerializableErrorInfo(
        message='_duckdb.IOException: IO Error: Could not read from file "/data/x": Is a directory\n',
        stack=[],
        cls_name="IOException",
    )
    wrapped = SerializableErrorInfo(
        message='Error occurred while executing op "service_desk_checks":\n',
        stack=[],
        cls_name="DagsterExecutionStepExecutionError",
        cause=raised,
    )
    exhausted = SerializableErrorInfo(
        message="Exceeded max_retries of 3\n",
        stack=[],
        cls_name="RetryRequestedFromPolicy",
        cause=wrapped,
    )

    assert error_line(wrapped) == 'IOException: IO Error: Could not read from file "/data/x": Is a directory'
    assert error_line(exhausted) == (
        'IOException: IO Error: Could not read from file "/data/x": Is a directory '
        "(Exceeded max_retries of 3)"
    )
