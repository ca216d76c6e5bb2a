"""Every setting the project reads: defined, typed, defaulted, checked and documented here.

Nothing else in the project reads the environment or dlt's configuration: it asks this module,
at one of two moments.

- **At load**, what shapes the definitions: the destination (it picks the sync steps' pools), the
  assets' owners and freshness, Dagster's step retries, the schedules' crons and time zone, the
  sensor's interval. A bad value stops the code location's load with an error naming it.
- **At run (or tick) start**, everything else: the APIs' addresses and keys, the HTTP policy, the
  waits, the alert webhook. Resolved at run time, never at import, so the code location loads
  with no configuration at all, and a run that lacks a setting fails at once naming it, before
  any request is sent and before anything is written.

Every value is checked before it is used: a bad one is an error that names the setting (its
environment variable, and its toml key where dlt reads one) and the values it accepts, instead of
a `ValueError` from deep inside dlt, urllib3 or Dagster that names neither. `SETTINGS` lists them
all with their defaults; the README's configuration tables are tested against it.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Optional
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.destination.exceptions import (
    InvalidDestinationReference,
    UnknownDestinationModule,
)
from dlt.common.destination.reference import DestinationReference
from dlt.common.typing import TSecretStrValue

# -- the list of every setting -------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting as a user sets it: `<API>` stands for each API's name in capitals."""

    variable: str
    default: str
    """As the README's configuration tables give it."""
    read: Literal["load", "run"]
    what: str


SETTINGS: tuple[Setting, ...] = (
    # The APIs (dlt's configuration: also `[sources.<api>] <key>` in .dlt/config.toml or secrets.toml)
    Setting("SOURCES__<API>__BASE_URL", "required", "run", "where the API lives"),
    Setting("SOURCES__<API>__API_KEY", "required", "run", "the key the vendor issued"),
    Setting("SOURCES__<API>__ALLOW_PLAIN_HTTP", "false", "run", "plain http:// to another machine"),
    Setting("SOURCES__<API>__CLOCK_SKEW_MARGIN", "300", "run", "seconds the vendor's clock may be off"),
    Setting("SOURCES__<API>__REQUESTS_PER_MINUTE", "none", "run", "budget when none is announced"),
    Setting("SOURCES__<API>__MAX_CONCURRENCY", "8", "run", "pages of one listing read at once"),
    Setting("SOURCES__<API>__RATE_LIMIT_HEADERS", "ietf", "run", "headers announcing the budget"),
    # The HTTP policy (`[sources.http]`)
    Setting("SOURCES__HTTP__MAX_RETRIES", "3", "run", "retries after the first attempt"),
    Setting("SOURCES__HTTP__BACKOFF_FACTOR", "2", "run", "backoff factor between retries"),
    Setting("SOURCES__HTTP__MAX_RETRY_DELAY", "60", "run", "longest wait between retries"),
    Setting("SOURCES__HTTP__RETRY_AFTER_FLOOR", "1", "run", "shortest wait after a 429"),
    Setting("SOURCES__HTTP__REQUEST_TIMEOUT", "60", "run", "seconds an answer may take"),
    Setting("SOURCES__HTTP__RETRY_STATUSES", "429,500,502,503,504", "run", "statuses retried"),
    # Where the data goes
    Setting("SVCDESK_DESTINATION", "duckdb", "load", "the dlt destination"),
    Setting("DESTINATION__DUCKDB__CREDENTIALS", "data/svcdesk.duckdb", "run", "the DuckDB file"),
    Setting("DLT_DATA_DIR", "dlt/", "run", "dlt's pipeline folders"),
    Setting("SVCDESK_DUCKDB_WAIT_SECONDS", "300", "run", "longest wait for a held DuckDB file"),
    # Dagster
    Setting("SVCDESK_OWNERS", "none", "load", "the assets' owners"),
    Setting("SVCDESK_FRESHNESS_TICKETS_MINUTES", "120", "load", "freshness of tickets"),
    Setting("SVCDESK_FRESHNESS_INCIDENTS_MINUTES", "30", "load", "freshness of incidents"),
    Setting("SVCDESK_FRESHNESS_SERVICES_MINUTES", "1440", "load", "freshness of services"),
    Setting("SVCDESK_STEP_RETRIES", "3", "load", "Dagster's retries of a failed sync step"),
    Setting("SVCDESK_STEP_RETRY_DELAY_SECONDS", "10", "load", "first wait before such a retry"),
    Setting("SVCDESK_POOL_WAIT_SECONDS", "3600", "run", "longest wait for a pool another run holds"),
    Setting("SVCDESK_PROGRESS_INTERVAL_SECONDS", "10", "run", "seconds between progress lines"),
    Setting("SVCDESK_SERVICE_DESK_CRON", "0 * * * *", "load", "cron of service_desk_schedule"),
    Setting("SVCDESK_INCIDENT_MANAGEMENT_CRON", "*/15 * * * *", "load",
            "cron of incident_management_schedule"),
    Setting("SVCDESK_FULL_REFRESH_CRON", "0 3 * * 0", "load", "cron of full_refresh_schedule"),
    Setting("SVCDESK_SCHEDULE_TIMEZONE", "UTC", "load", "time zone of the crons"),
    Setting("SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL", "60", "load", "seconds between two checks"),
    Setting("SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN", "30", "run", "seconds a check looks back"),
    Setting("SVCDESK_ALERT_WEBHOOK_URL", "unset", "run", "where failure alerts are POSTed"),
    Setting("SVCDESK_DAGSTER_BASE_URL", "http://127.0.0.1:3000", "run", "the web UI alerts link to"),
)


# -- errors --------------------------------------------------------------------------------------


class MissingSettingError(ValueError):
    """A setting a run needs is absent from the environment and from `.dlt/*.toml`, or holds a
    value the project refuses to run with."""


class InvalidSettingError(MissingSettingError):
    """A setting holds a value the project refuses to run (or load) with. A kind of
    `MissingSettingError`, so that everything that treats a missing setting as final (no Dagster
    retry, the sensor's skip reason) treats a bad one the same way: neither fixes itself."""


def env_var_name(*sections: str) -> str:
    """The environment variable dlt reads for a config path: `SOURCES__SERVICE_DESK__BASE_URL`."""
    return "__".join(section.upper() for section in sections)


def dlt_setting(path: str, toml_file: str = "config.toml") -> str:
    """Both ways to set a dlt config path, as an error names them:
    `SOURCES__HTTP__MAX_RETRIES (`max_retries` under [sources.http] in .dlt/config.toml)`."""
    *sections, key = path.split(".")
    return (
        f"{env_var_name(*path.split('.'))} "
        f"(`{key}` under [{'.'.join(sections)}] in .dlt/{toml_file})"
    )


def refusal(setting: str, accepted: str, got: Any = None) -> InvalidSettingError:
    """The one shape of every bad-setting error: which setting, what it accepts, what it holds."""
    shown = "" if got is None else f", got {got!r}"
    return InvalidSettingError(f"Setting {setting} must be {accepted}{shown}.")


def is_unset(value: Any) -> bool:
    """Absent, or blank: `VAR=` restores the default, like an unset variable."""
    return value is None or (isinstance(value, str) and not value.strip())


def env_text(name: str) -> str | None:
    """An environment variable's value, stripped; None when unset or blank."""
    raw = os.environ.get(name, "")
    return None if is_unset(raw) else raw.strip()


TYPE_NOUNS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def config_value(
    path: str,
    default: Any,
    expected_type: type,
    *,
    minimum: float | None = None,
    above_minimum: bool = False,
    unit: str | None = None,
    example: float | None = None,
) -> Any:
    """One optional setting from dlt's config (environment or `.dlt/config.toml`): `default` when
    unset or blank, else the value as `expected_type`. A number must be finite and, with a
    `minimum`, at least (or `above_minimum`: greater than) that; a bad value is an error naming
    the setting and what it accepts."""
    value = dlt.config.get(path)
    if is_unset(value):
        return default
    if expected_type in (int, float):
        return checked_number(
            dlt_setting(path), value, default if example is None else example,
            minimum=minimum, above_minimum=above_minimum, unit=unit, kind=expected_type,
        )
    try:
        return expected_type(value)
    except (TypeError, ValueError):
        noun = TYPE_NOUNS.get(expected_type, f"a {expected_type.__name__}")
        raise refusal(dlt_setting(path), noun, value) from None


def env_number(
    name: str,
    default: float,
    *,
    minimum: float,
    unit: str | None = "seconds",
    kind: type = float,
    above_minimum: bool = False,
) -> Any:
    """A numeric setting read from the environment only (the `SVCDESK_*` ones dlt does not own).

    Blank counts as unset; a malformed or out-of-range value is an error naming the variable.
    """
    raw = env_text(name)
    if raw is None:
        return default
    return checked_number(
        name, raw, default, minimum=minimum, above_minimum=above_minimum, unit=unit, kind=kind
    )


def checked_number(
    setting: str,
    value: Any,
    example: float,
    *,
    minimum: float | None,
    above_minimum: bool,
    unit: str | None,
    kind: type,
) -> Any:
    """`value` (text from the environment, or a toml number) as `kind`, if finite and within
    bounds; otherwise an error saying what the setting accepts, with the default as example."""
    accepted = TYPE_NOUNS[kind] + (f" of {unit}" if unit else "")
    if minimum is not None:
        accepted += f", greater than {minimum:g}" if above_minimum else f", {minimum:g} or more"
    error = refusal(setting, f"{accepted}, such as {example:g}", value)
    if isinstance(value, bool):  # toml `true`: Python would take it for 1
        raise error
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise error from None
    if not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise error
    if minimum is not None and (number < minimum or (above_minimum and number == minimum)):
        raise error
    return kind(number)


def config_statuses(path: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """HTTP status codes from dlt's config: comma-separated text (`429,503`, as an environment
    variable holds it) or a toml list. Unset or blank is `default`; an empty list (`[]`) retries
    no status."""
    value = dlt.config.get(path)
    if is_unset(value):
        return default
    items: Sequence[Any] = (
        value if isinstance(value, (list, tuple)) else str(value).strip().strip("[]()").split(",")
    )
    codes = [parse_status(item) for item in items if str(item).strip()]
    if None in codes:
        raise refusal(
            dlt_setting(path),
            "HTTP status codes from 100 to 599, comma-separated, such as "
            + ",".join(str(code) for code in default),
            value if isinstance(value, str) else ",".join(str(item) for item in items),
        )
    return tuple(code for code in codes if code is not None)


def parse_status(item: Any) -> int | None:
    """One HTTP status code, or None for anything else (`5xx`, `600`, `true`)."""
    if isinstance(item, bool):
        return None
    try:
        code = int(str(item).strip())
    except ValueError:
        return None
    return code if 100 <= code <= 599 else None



# -- the APIs ----------------------------------------------------------------------------------

DEFAULT_CLOCK_SKEW_MARGIN_SECONDS = 300.0


@dataclass(frozen=True)
class ApiSettings:
    """Where one upstream API lives and the key to call it with.

    The key is excluded from `repr` so that no log line, traceback local or Dagster event ever
    shows it.
    """

    base_url: str
    api_key: str = field(repr=False)
    clock_skew_margin: timedelta = timedelta(seconds=DEFAULT_CLOCK_SKEW_MARGIN_SECONDS)
    """How far the vendor's clock may be off ours: each incremental window starts this much
    before the previous read started (>= 0; a negative margin would lose changes)."""
    pace: ReadPace = field(default_factory=lambda: ReadPace())


RATE_LIMIT_HEADER_SETS: dict[str, tuple[str, str, str]] = {
    # name: (limit, remaining, seconds until the window starts afresh)
    "ietf": ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
    "x-ratelimit": ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"),
    "x-rate-limit": ("X-Rate-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"),
}
"""The ways vendors announce their request budget (docs/contract.md, Request budget)."""


@dataclass(frozen=True)
class ReadPace:
    """How fast one API may be read: the budget and the pages in flight.

    `requests_per_minute` is the budget when the vendor announces none (or a lower one than it
    announces: the lower wins); `max_concurrency` the most pages of one listing read at once;
    `rate_limit_headers` which headers announce the vendor's budget.
    """

    requests_per_minute: float | None = None
    max_concurrency: int = 8
    rate_limit_headers: tuple[str, str, str] = RATE_LIMIT_HEADER_SETS["ietf"]


@configspec
class ApiSettingsSpec(BaseConfiguration):
    """dlt's view of `[sources.<api>]`: the secret type hint keeps the key out of dlt's trace of
    resolved settings (trace.pickle), which records every other value in clear."""

    base_url: Optional[str] = None
    api_key: Optional[TSecretStrValue] = None
    allow_plain_http: bool = False


API_FIELD_FILES = {"base_url": "config.toml", "api_key": "secrets.toml"}
ACCEPTED_API_FIELDS = {
    "allow_plain_http": "true or false (dlt also reads yes/no, y/n, t/f and 1/0)",
    "base_url": "an https:// URL such as https://vendor.example/api",
    "api_key": "the key the vendor issued, as text",
}


def resolve_api_settings(source_name: str) -> ApiSettings:
    """Reads `[sources.<source_name>]`: `base_url` and `api_key`, naming every missing one, the
    base URL checked (`check_base_url`), and `clock_skew_margin`."""
    try:
        spec = resolve_configuration(ApiSettingsSpec(), sections=("sources", source_name))
    except ConfigValueCannotBeCoercedException as error:
        # dlt's message names only the field; the value of any field but the key is safe to show.
        name = error.field_name
        path = f"sources.{source_name}.{name}"
        raise refusal(
            dlt_setting(path, API_FIELD_FILES.get(name, "config.toml")),
            ACCEPTED_API_FIELDS.get(name, "a value of the right type"),
            None if name == "api_key" else error.field_value,
        ) from None
    missing = [
        (name, where)
        for name, value, where in (
            ("base_url", spec.base_url, "config.toml"),
            ("api_key", spec.api_key, "secrets.toml"),
        )
        if not value
    ]
    if missing:
        described = "; ".join(
            f"{env_var_name('sources', source_name, name)} "
            f"(or `{name}` under [sources.{source_name}] in .dlt/{where})"
            for name, where in missing
        )
        raise MissingSettingError(f"The {source_name} API is not configured: set {described}.")
    base_url = str(spec.base_url).strip().rstrip("/")
    check_base_url(source_name, base_url, spec.allow_plain_http)
    margin = config_value(
        f"sources.{source_name}.clock_skew_margin",
        DEFAULT_CLOCK_SKEW_MARGIN_SECONDS,
        float,
        minimum=0,
        unit="seconds",
    )
    return ApiSettings(
        base_url=base_url,
        api_key=str(spec.api_key),
        clock_skew_margin=timedelta(seconds=margin),
        pace=read_pace(source_name),
    )


DEFAULT_MAX_CONCURRENCY = 8
"""Enough to fill a budget of 1,200 requests a minute at 250 ms a request (which needs 5 in
flight), and few enough that the pages in memory stay a few MB."""


def read_pace(source_name: str) -> ReadPace:
    """`[sources.<api>]` `requests_per_minute`, `max_concurrency` and `rate_limit_headers`."""
    section = f"sources.{source_name}"
    headers = config_value(f"{section}.rate_limit_headers", "ietf", str).strip().lower()
    if headers not in RATE_LIMIT_HEADER_SETS:
        raise refusal(
            dlt_setting(f"{section}.rate_limit_headers"),
            "one of " + ", ".join(RATE_LIMIT_HEADER_SETS),
            headers,
        )
    return ReadPace(
        requests_per_minute=config_value(
            f"{section}.requests_per_minute", None, float,
            minimum=0, above_minimum=True, unit="requests a minute", example=1200,
        ),
        max_concurrency=config_value(
            f"{section}.max_concurrency", DEFAULT_MAX_CONCURRENCY, int, minimum=1, unit="requests"
        ),
        rate_limit_headers=RATE_LIMIT_HEADER_SETS[headers],
    )


def check_base_url(source_name: str, base_url: str, allow_plain_http: bool) -> None:
    """A base URL the sources can call safely: a scheme, a host, a valid port, and nothing after
    the path.

    The sources append the endpoint's path to the base URL and add their own query parameters,
    the API key among them: a query string or a fragment in the base URL would end up in the
    middle of every request URL. The key travels in the query string, so over plain HTTP anyone
    on the path reads it: plain HTTP is allowed to a loopback host (the bundled simulator), or
    where the user says the network is trusted.
    """
    setting = dlt_setting(f"sources.{source_name}.base_url")
    accepted = "an https:// URL such as https://vendor.example/api"
    # Shown without anything after `?` or `#`, or before `@`: a key pasted in is not repeated.
    shown = base_url.split("?")[0].split("#")[0].rsplit("@", 1)[-1]
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:  # `http://[::1` or `https://host:99999`
        raise refusal(setting, f"{accepted}, with a valid host and port", shown) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refusal(setting, f"{accepted}, with a scheme and a host", shown)
    if "?" in base_url or "#" in base_url:
        query = "?" in base_url.split("#")[0]
        found = "a query string (`?...`)" if query else "a fragment (`#...`)"
        raise refusal(
            setting,
            f"{accepted}, with no query string (`?...`) or fragment (`#...`): every request adds "
            f"its own path and query parameters to it; got one with {found}",
        )
    if parts.scheme == "http" and not allow_plain_http and not is_loopback(parts.hostname):
        env = env_var_name("sources", source_name, "base_url")
        allow = env_var_name("sources", source_name, "allow_plain_http")
        raise InvalidSettingError(
            f"{env} is plain http:// to {parts.hostname}, which would send the API key in "
            f"clear: use https://. On a network you trust, set {allow}=true (`allow_plain_http` "
            f"under [sources.{source_name}] in .dlt/config.toml) to allow it."
        )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the HTTP policy -----------------------------------------------------------------------------

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetrySettings:
    """HTTP retry and timeout settings, read from `[sources.http]` (env `SOURCES__HTTP__*`)."""

    max_retries: int = 3
    backoff_factor: float = 2.0
    max_retry_delay: float = 60.0
    retry_after_floor: float = 1.0
    request_timeout: float = 60.0
    retry_statuses: tuple[int, ...] = RETRY_STATUSES

    @classmethod
    def from_config(cls) -> RetrySettings:
        """The settings in force, each checked before any request: a bad one is an error naming
        it and what it accepts. Unchecked, a negative retry count would pass silently, a timeout
        of 0 would surface as urllib3's message from inside dlt's extract step, and a status
        such as `5xx` as `int()`'s."""
        defaults = cls()
        settings = cls(
            max_retries=config_value(
                "sources.http.max_retries", defaults.max_retries, int, minimum=0, unit="retries"
            ),
            backoff_factor=config_value(
                "sources.http.backoff_factor", defaults.backoff_factor, float, minimum=0
            ),
            max_retry_delay=config_value(
                "sources.http.max_retry_delay", defaults.max_retry_delay, float,
                minimum=0, unit="seconds",
            ),
            retry_after_floor=config_value(
                "sources.http.retry_after_floor", defaults.retry_after_floor, float,
                minimum=0, unit="seconds",
            ),
            request_timeout=config_value(
                "sources.http.request_timeout", defaults.request_timeout, float,
                minimum=0, above_minimum=True, unit="seconds",
            ),
            retry_statuses=config_statuses("sources.http.retry_statuses", defaults.retry_statuses),
        )
        if settings.retry_after_floor > settings.max_retry_delay:
            # The floor is applied first and the cap last (`_wait`): the floor would be ignored.
            raise refusal(
                dlt_setting("sources.http.retry_after_floor"),
                "a number of seconds from 0 up to the longest wait between retries, "
                "SOURCES__HTTP__MAX_RETRY_DELAY (`max_retry_delay`), which is "
                f"{settings.max_retry_delay:g}",
                settings.retry_after_floor,
            )
        return settings


# -- the destination ---------------------------------------------------------------------------

CUSTOM_DESTINATION_TYPE = "destination"
"""dlt's `@dlt.destination` decorator, registered like a destination type but usable only from
Python, with a function of one's own: not offered as a name to set."""


def known_destination_types() -> list[str]:
    """The destination types registered with dlt in this installation (`duckdb`, `postgres`, ...),
    from dlt's own registry, so a dlt upgrade that adds one needs no change here."""
    import dlt.destinations  # noqa: F401  (importing it registers the built-in destinations)

    prefix = "dlt.destinations."
    return sorted(
        ref.removeprefix(prefix)
        for ref in DestinationReference.DESTINATIONS
        if ref.startswith(prefix) and ref != prefix + CUSTOM_DESTINATION_TYPE
    )


DESTINATION_ENV = "SVCDESK_DESTINATION"
DEFAULT_DESTINATION = "duckdb"


def destination_name() -> str:
    """`SVCDESK_DESTINATION`, checked against the destinations dlt knows. It shapes the
    definitions (the assets' kinds, the sync steps' pools), so a name dlt cannot resolve stops the
    code location's load with an error naming the variable and the accepted names, instead of
    failing every run later inside `Destination.from_reference`."""
    name = env_text(DESTINATION_ENV) or DEFAULT_DESTINATION
    check_destination(DESTINATION_ENV, name)
    return name


def check_destination(setting: str, name: str) -> None:
    """`name` resolves as `Destination.from_reference` would resolve it: a destination type dlt
    knows, the import path of a destination class (`package.module.attribute`), or a named
    destination whose type is configured (`[destination.<name>] destination_type`). Only the type
    is looked up: nothing is instantiated and no credential is read."""
    destination_type = name
    if "." not in name:
        destination_type = dlt.config.get(f"destination.{name}.destination_type") or name
    try:
        DestinationReference.find(destination_type)
    except (UnknownDestinationModule, InvalidDestinationReference):
        raise refusal(
            setting,
            "the name of a dlt destination: "
            + ", ".join(known_destination_types())
            + "; the import path of a destination class (package.module.attribute); or a name "
            "configured with `destination_type` under [destination.<name>]",
            name,
        ) from None


DEFAULT_DUCKDB_FILE = Path("data") / "svcdesk.duckdb"
"""Relative to the working directory. Named unlike any dataset: a DuckDB file called like a
dataset makes catalog references ambiguous."""


def duckdb_file() -> Path:
    """The DuckDB file: `DESTINATION__DUCKDB__CREDENTIALS` / `[destination.duckdb] credentials`,
    else `data/svcdesk.duckdb` under the working directory."""
    configured = dlt.config.get("destination.duckdb.credentials", str)
    return Path(configured) if configured else Path.cwd() / DEFAULT_DUCKDB_FILE


def duckdb_global_config() -> dict[str, Any]:
    """`[destination.duckdb.credentials] global_config`: DuckDB settings the user sets for every
    connection, over the project's own (`resources.DUCKDB_GLOBAL_CONFIG`)."""
    return dlt.config.get("destination.duckdb.credentials.global_config", dict) or {}


DUCKDB_WAIT_ENV = "SVCDESK_DUCKDB_WAIT_SECONDS"


def duckdb_wait_seconds() -> float:
    """`SVCDESK_DUCKDB_WAIT_SECONDS` (300): how long a run waits for a DuckDB file another process
    holds open before it fails naming that process."""
    return env_number(DUCKDB_WAIT_ENV, 300.0, minimum=0)


DATA_DIR_ENV = "DLT_DATA_DIR"


def dlt_data_dir() -> str | None:
    """`DLT_DATA_DIR`, dlt's own override of where it keeps pipelines (dlt's CLI honours it too),
    or None when unset or blank."""
    return env_text(DATA_DIR_ENV)


def dlt_config_holds(key: str) -> bool:
    """Whether the configuration (environment, `.dlt/*.toml`) sets the dlt key `key`."""
    return dlt.config.get(key) is not None


def set_dlt_default(key: str, value: object) -> None:
    """Sets the dlt key `key` for this process, as a default the configuration did not give."""
    dlt.config[key] = value


# -- Dagster: read at load -----------------------------------------------------------------------

OWNERS_ENV = "SVCDESK_OWNERS"


def asset_owners() -> list[str]:
    """`SVCDESK_OWNERS`: comma-separated emails or `team:<name>`, as Dagster accepts them.

    Checked here because Dagster's own error names the asset and the owner but not the variable
    they came from."""
    from dagster._core.definitions.utils import (
        is_valid_owner,  # Dagster's rule, not restated
    )

    owners = [owner.strip() for owner in (env_text(OWNERS_ENV) or "").split(",") if owner.strip()]
    invalid = [owner for owner in owners if not is_valid_owner(owner)]
    if invalid:
        raise ValueError(
            f"Setting {OWNERS_ENV} must be a comma-separated list of owners, each an email "
            "address (such as data-team@example.com) or `team:<name>` (such as "
            f"team:data-platform), got {', '.join(repr(owner) for owner in invalid)}."
        )
    return owners


def freshness_window(asset: str, default: timedelta) -> timedelta:
    """`SVCDESK_FRESHNESS_<ASSET>_MINUTES`. At least a minute: Dagster rejects a shorter fail
    window."""
    minutes = env_number(
        f"SVCDESK_FRESHNESS_{asset.upper()}_MINUTES",
        default.total_seconds() / 60,
        minimum=1,
        unit="minutes",
    )
    return timedelta(minutes=minutes)


@dataclass(frozen=True)
class StepRetries:
    """Dagster's retries of a failed sync step: how many, and the first wait (then about twice,
    four times as long, with jitter)."""

    max_retries: int
    first_delay_seconds: float


def step_retries() -> StepRetries:
    """`SVCDESK_STEP_RETRIES` (3, a whole number >= 0) and `SVCDESK_STEP_RETRY_DELAY_SECONDS`
    (10, a number >= 0)."""
    return StepRetries(
        max_retries=env_number("SVCDESK_STEP_RETRIES", 3, minimum=0, unit="retries", kind=int),
        first_delay_seconds=env_number("SVCDESK_STEP_RETRY_DELAY_SECONDS", 10.0, minimum=0),
    )


def cron(variable: str, default: str) -> str:
    """A schedule's cron expression (Dagster checks its shape where it builds the schedule)."""
    return env_text(variable) or default


TIMEZONE_ENV = "SVCDESK_SCHEDULE_TIMEZONE"


def schedule_timezone() -> str:
    """`SVCDESK_SCHEDULE_TIMEZONE` (UTC), checked now: Dagster would only fail on it at tick time."""
    name = env_text(TIMEZONE_ENV) or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Setting {TIMEZONE_ENV} must be an IANA time zone such as UTC or Europe/Berlin, "
            f"got {name!r}."
        ) from None
    return name


def sensor_interval_seconds() -> int:
    """`SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL` (60): seconds between two checks for changes."""
    return int(env_number("SVCDESK_NEW_INCIDENTS_SENSOR_INTERVAL", 60, minimum=1))


# -- Dagster: read at run or tick start ----------------------------------------------------------

POOL_WAIT_ENV = "SVCDESK_POOL_WAIT_SECONDS"


def pool_wait_seconds() -> float:
    """`SVCDESK_POOL_WAIT_SECONDS` (3600): longer than any sync's normal turn in its pool (a full
    refresh of a million tickets takes minutes), short enough that a run stuck behind a lost
    worker says so within the hour."""
    return env_number(POOL_WAIT_ENV, 3600.0, minimum=0)


def progress_interval_seconds() -> float:
    """`SVCDESK_PROGRESS_INTERVAL_SECONDS` (10): at most this long between two progress lines of
    a read in the run log."""
    return env_number("SVCDESK_PROGRESS_INTERVAL_SECONDS", 10.0, minimum=0, above_minimum=True)


def sensor_margin() -> timedelta:
    """`SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN` (30): seconds each check looks back before the start
    of the previous one (`new_incidents_sensor.py` says why it is shorter than the syncs')."""
    return timedelta(
        seconds=env_number("SVCDESK_NEW_INCIDENTS_SENSOR_MARGIN", 30.0, minimum=0)
    )


WEBHOOK_ENV = "SVCDESK_ALERT_WEBHOOK_URL"


def alert_webhook_url() -> str | None:
    """`SVCDESK_ALERT_WEBHOOK_URL`: where failure alerts are POSTed, if anywhere. Environment
    only: the URL is a credential (Slack's carry a token)."""
    return env_text(WEBHOOK_ENV)


def dagster_home() -> str | None:
    """`DAGSTER_HOME`, Dagster's own: the instance's folder, when one is set."""
    return env_text("DAGSTER_HOME")


def dagster_base_url() -> str:
    """`SVCDESK_DAGSTER_BASE_URL`: the web UI an alert links to."""
    return env_text("SVCDESK_DAGSTER_BASE_URL") or "http://127.0.0.1:3000"


def configured_secrets(api_names: Sequence[str]) -> tuple[str, ...]:
    """Every configured credential: the APIs' keys and the webhook URL, for a last scrub of text
    passed on (an alert quoting a vendor's message that echoes the key, say). Never raises: a
    broken secrets.toml must not stop the alert about a failure."""
    secrets = [alert_webhook_url() or ""]
    for name in api_names:
        try:
            secrets.append(str(dlt.secrets.get(f"sources.{name}.api_key", str) or ""))
        except Exception:
            continue
    return tuple(secret for secret in secrets if secret)
