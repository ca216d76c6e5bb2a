"""Bad settings: every one is refused with an error that names it (its environment variable, and
its toml key where dlt reads one) and the values it accepts.

Settings a run reads are checked when the run starts: the run fails once, without Dagster's
retries (a bad setting does not fix itself), before any request and before anything is written.
Settings that shape the definitions are checked when the code location loads, which then fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcdesk_dagster.settings import SETTINGS, RetrySettings
from svcdesk_dagster.sources import APIS
from svcdesk_dagster_tests.conftest import Project
from svcdesk_dagster_tests.dagster_runs import materialize
from svcdesk_simulator import Simulator

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BadSetting:
    """A bad value for `variable`, and what its error must say besides the variable's name."""

    variable: str
    value: str
    says: tuple[str, ...]
    """The accepted values (and the toml key, for a setting dlt reads), as the error words them."""

    def __str__(self) -> str:  # the test id
        return f"{self.variable}={self.value}"


# -- checked when a run starts ------------------------------------------------------------------

HTTP = "under [sources.http]"
SERVICE_DESK = "under [sources.service_desk]"
RUN_TIME = [
    BadSetting("SOURCES__HTTP__RETRY_STATUSES", "429,5xx",
               ("`retry_statuses`", HTTP, "HTTP status codes from 100 to 599",
                "429,500,502,503,504")),
    BadSetting("SOURCES__HTTP__RETRY_STATUSES", "429,600",
               ("`retry_statuses`", HTTP, "HTTP status codes from 100 to 599")),
    BadSetting("SOURCES__HTTP__REQUEST_TIMEOUT", "0",
               ("`request_timeout`", HTTP, "a number of seconds, greater than 0")),
    BadSetting("SOURCES__HTTP__MAX_RETRIES", "-1",
               ("`max_retries`", HTTP, "a whole number of retries, 0 or more")),
    BadSetting("SOURCES__HTTP__MAX_RETRIES", "2.5",
               ("`max_retries`", HTTP, "a whole number of retries, 0 or more")),
    BadSetting("SOURCES__HTTP__BACKOFF_FACTOR", "fast",
               ("`backoff_factor`", HTTP, "a number, 0 or more")),
    BadSetting("SOURCES__HTTP__MAX_RETRY_DELAY", "-5",
               ("`max_retry_delay`", HTTP, "a number of seconds, 0 or more")),
    BadSetting("SOURCES__HTTP__RETRY_AFTER_FLOOR", "nan",
               ("`retry_after_floor`", HTTP, "a number of seconds, 0 or more")),
    BadSetting("SOURCES__HTTP__RETRY_AFTER_FLOOR", "90",
               ("`retry_after_floor`", HTTP, "up to the longest wait between retries",
                "SOURCES__HTTP__MAX_RETRY_DELAY")),
    BadSetting("SOURCES__SERVICE_DESK__CLOCK_SKEW_MARGIN", "-1",
               ("`clock_skew_margin`", SERVICE_DESK, "a number of seconds, 0 or more")),
    BadSetting("SOURCES__SERVICE_DESK__BASE_URL", "{url}?region=eu",
               ("`base_url`", SERVICE_DESK, "with no query string (`?...`) or fragment (`#...`)")),
    BadSetting("SOURCES__SERVICE_DESK__BASE_URL", "{url}#tickets",
               ("`base_url`", SERVICE_DESK, "with no query string (`?...`) or fragment (`#...`)")),
    BadSetting("SOURCES__SERVICE_DESK__BASE_URL", "127.0.0.1/service-desk",
               ("`base_url`", SERVICE_DESK, "an https:// URL", "with a scheme and a host")),
    BadSetting("SOURCES__SERVICE_DESK__ALLOW_PLAIN_HTTP", "maybe",
               ("`allow_plain_http`", SERVICE_DESK, "true or false")),
    # Checked at load too (below); a run checks it again, in the environment it runs in.
    BadSetting("SVCDESK_DESTINATION", "duckdbx",
               ("duckdb", "postgres", "snowflake", "bigquery", "motherduck")),
]


def failure_message(result) -> str:
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


def retries(result) -> list:
    return [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]


@pytest.mark.parametrize("bad", RUN_TIME, ids=str)
def test_a_bad_run_setting_fails_the_run_before_anything_happens(
    bad: BadSetting, simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(bad.variable, bad.value.format(url=simulator.service_desk_url))

    result = materialize("tickets", raise_on_error=False)

    assert not result.success
    message = failure_message(result)  # exactly one step failure ...
    assert retries(result) == []  # ... and no retry of it
    assert bad.variable in message
    for words in bad.says:
        assert words in message
    assert simulator.request_count() == 0
    assert not project.duckdb_file.exists()
    assert list(Path(project.env["DLT_DATA_DIR"]).rglob("svcdesk_*")) == []


def test_the_run_error_for_statuses_shows_the_value_given(
    simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__HTTP__RETRY_STATUSES", "429,5xx")

    message = failure_message(materialize("tickets", raise_on_error=False))

    assert message == (
        "Setting SOURCES__HTTP__RETRY_STATUSES (`retry_statuses` under [sources.http] in "
        ".dlt/config.toml) must be HTTP status codes from 100 to 599, comma-separated, such as "
        "429,500,502,503,504, got '429,5xx'."
    )


@pytest.mark.parametrize(
    ("value", "statuses"),
    [
        ("429, 503", (429, 503)),
        ("[429,503]", (429, 503)),
        ("[]", ()),  # retries no status
        ("  ", (429, 500, 502, 503, 504)),  # blank: the default
    ],
)
def test_good_retry_statuses_are_read(
    value: str, statuses: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__HTTP__RETRY_STATUSES", value)

    assert RetrySettings.from_config().retry_statuses == statuses


# -- checked when the code location loads -------------------------------------------------------

CRON = ("a cron expression of five fields such as",)
LOAD_TIME = [
    BadSetting("SVCDESK_DESTINATION", "duckdbx",
               ("duckdb", "postgres", "snowflake", "bigquery", "motherduck")),
    BadSetting("SVCDESK_OWNERS", "data@example.com,alice",
               ("an email address", "`team:<name>`", "'alice'")),
    BadSetting("SVCDESK_SERVICE_DESK_CRON", "every hour", (*CRON, "'0 * * * *'")),
    BadSetting("SVCDESK_INCIDENT_MANAGEMENT_CRON", "*/15 * * *", (*CRON, "'*/15 * * * *'")),
    BadSetting("SVCDESK_FULL_REFRESH_CRON", "61 3 * * 0", (*CRON, "'0 3 * * 0'")),
    BadSetting("SVCDESK_SCHEDULE_TIMEZONE", "Mars/Olympus_Mons",
               ("an IANA time zone such as UTC or Europe/Berlin",)),
    BadSetting("SVCDESK_STEP_RETRIES", "-1", ("a whole number of retries, 0 or more",)),
    BadSetting("SVCDESK_STEP_RETRY_DELAY_SECONDS", "soon", ("a number of seconds, 0 or more",)),
    BadSetting("SVCDESK_FRESHNESS_TICKETS_MINUTES", "0", ("a number of minutes, 1 or more",)),
    BadSetting("SVCDESK_FRESHNESS_INCIDENTS_MINUTES", "half an hour",
               ("a number of minutes, 1 or more",)),
    BadSetting("SVCDESK_FRESHNESS_SERVICES_MINUTES", "inf", ("a number of minutes, 1 or more",)),
]


@pytest.mark.parametrize("bad", LOAD_TIME, ids=str)
def test_a_bad_load_setting_stops_the_code_location_from_loading(bad: BadSetting) -> None:
    """What an operator sees: `dagster definitions validate` (and the UI's load error)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SVCDESK_")}
    env[bad.variable] = bad.value

    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "svcdesk_dagster"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )

    said = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert f"Setting {bad.variable} must be" in said
    for words in bad.says:
        assert words in said


# -- the README's configuration tables against the settings module --------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
SETTING_NAME = re.compile(r"\b(?:SVCDESK_[A-Z_]+[A-Z]|SOURCES__[A-Z_<>]+[A-Z]|DLT_DATA_DIR)\b")


README_PATTERNS = {"SVCDESK_NEW_INCIDENTS_SENSOR"}
"""Prefixes the README's summary rows name (`SVCDESK_NEW_INCIDENTS_SENSOR_*`)."""


def as_listed(variable: str) -> str:
    """`SOURCES__SERVICE_DESK__BASE_URL` -> `SOURCES__<API>__BASE_URL`, as `SETTINGS` lists it."""
    for api in APIS:
        variable = variable.replace(f"SOURCES__{api.name.upper()}__", "SOURCES__<API>__")
    return variable


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    lines = README.read_text().splitlines()
    for setting in SETTINGS:
        names = (
            [setting.variable.replace("<API>", api.name.upper()) for api in APIS]
            if setting.variable.startswith("SOURCES__<API>__BASE_URL")
            or setting.variable.startswith("SOURCES__<API>__API_KEY")
            else [setting.variable]
        )
        for name in names:
            rows = [line for line in lines if line.startswith("|") and name in line]
            assert rows, f"{name} is in no table of the README"
            assert any(setting.default in row for row in rows), (
                f"no README row of {name} gives its default {setting.default!r}"
            )


def test_every_setting_the_readme_names_is_in_the_settings_module() -> None:
    listed = {setting.variable for setting in SETTINGS}
    named = {as_listed(name) for name in SETTING_NAME.findall(README.read_text())}
    assert named - listed - README_PATTERNS == set(), "named in the README, not in settings.SETTINGS"
