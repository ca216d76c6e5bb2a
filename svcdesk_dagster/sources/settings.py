"""Settings the sources read through dlt's own configuration providers.

Everything is resolved at run time, never at import, so the code location loads with no
configuration at all (INTERFACE.md) and a run that lacks a setting fails at once with an error
that names it, the way a user would set it.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue


class MissingSettingError(ValueError):
    """A setting a run needs is absent from the environment and from `.dlt/*.toml`, or holds a
    value the project refuses to run with."""


def env_var_name(*sections: str) -> str:
    """The environment variable dlt reads for a config path: `SOURCES__SERVICE_DESK__BASE_URL`."""
    return "__".join(section.upper() for section in sections)


@dataclass(frozen=True)
class ApiSettings:
    """Where one upstream API lives and the key to call it with.

    The key is excluded from `repr` so that no log line, traceback local or Dagster event ever
    shows it.
    """

    source_name: str
    base_url: str
    api_key: str = field(repr=False)


@configspec
class ApiSettingsSpec(BaseConfiguration):
    """dlt's view of `[sources.<api>]`: the secret type hint keeps the key out of dlt's trace of
    resolved settings (trace.pickle), which records every other value in clear."""

    base_url: Optional[str] = None
    api_key: Optional[TSecretStrValue] = None
    allow_plain_http: bool = False


def resolve_api_settings(source_name: str) -> ApiSettings:
    """Reads `sources.<source_name>.base_url` and `.api_key`, naming every missing one."""
    spec = resolve_configuration(ApiSettingsSpec(), sections=("sources", source_name))
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
    base_url = str(spec.base_url).rstrip("/")
    refuse_key_in_clear(source_name, base_url, spec.allow_plain_http)
    return ApiSettings(source_name=source_name, base_url=base_url, api_key=str(spec.api_key))


def refuse_key_in_clear(source_name: str, base_url: str, allow_plain_http: bool) -> None:
    """The key travels in the query string: over plain HTTP anyone on the path reads it. Plain
    HTTP is allowed to a loopback host (the bundled simulator), or where the user says the network
    is trusted."""
    parts = urlsplit(base_url)
    setting = env_var_name("sources", source_name, "base_url")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MissingSettingError(
            f"{setting} must be an https:// URL such as https://vendor.example/api, "
            f"got one without a scheme or host."
        )
    if parts.scheme == "http" and not allow_plain_http and not is_loopback(parts.hostname):
        allow = env_var_name("sources", source_name, "allow_plain_http")
        raise MissingSettingError(
            f"{setting} is plain http:// to {parts.hostname}, which would send the API key in "
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


def config_value(path: str, default: Any, expected_type: type) -> Any:
    """One optional setting from dlt's config, with a typed default and a clear error when bad."""
    value = dlt.config.get(path)
    if value is None:
        return default
    try:
        return expected_type(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Setting {env_var_name(*path.split('.'))} must be a {expected_type.__name__}, "
            f"got {value!r}."
        ) from error


def env_number(
    name: str, default: float, *, minimum: float, unit: str = "seconds", kind: type = float
) -> Any:
    """A numeric setting read from the environment only (the `SVCDESK_*` ones dlt does not own).

    Blank counts as unset; a malformed or too small value is an error naming the variable.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"Setting {name} must be a number of {unit}, got {raw!r}.") from None
    if value < minimum:
        raise ValueError(f"Setting {name} must be at least {minimum:g} ({unit}), got {raw!r}.")
    return value
