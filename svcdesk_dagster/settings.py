"""Settings the sources read through dlt's own configuration providers, and the checks every
setting of the project goes through.

The API settings are resolved at run time, never at import, so the code location loads with no
configuration at all, and a run that lacks a setting fails at once with an error that names it,
the way a user would set it. Every value is checked before it is used: a bad one is an error that
names the setting (its environment variable, and its toml key where dlt reads one) and the values
it accepts, raised before any request is sent and before anything is written, instead of a
`ValueError` from deep inside dlt or urllib3 that names neither.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class ApiSettings:
    """Where one upstream API lives and the key to call it with.

    The key is excluded from `repr` so that no log line, traceback local or Dagster event ever
    shows it.
    """

    base_url: str
    api_key: str = field(repr=False)


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
    """Reads `sources.<source_name>.base_url` and `.api_key`, naming every missing one, and checks
    the base URL (`check_base_url`)."""
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
    return ApiSettings(base_url=base_url, api_key=str(spec.api_key))


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


def is_unset(value: Any) -> bool:
    """Absent, or blank: `VAR=` restores the default, like an unset variable."""
    return value is None or (isinstance(value, str) and not value.strip())


TYPE_NOUNS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def config_value(
    path: str,
    default: Any,
    expected_type: type,
    *,
    minimum: float | None = None,
    above_minimum: bool = False,
    unit: str | None = None,
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
            dlt_setting(path), value, default,
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
    raw = os.environ.get(name, "")
    if is_unset(raw):
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
    name = os.environ.get(DESTINATION_ENV, "").strip() or DEFAULT_DESTINATION
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
