"""What went wrong with an upstream API, said so that the person on call can act on it.

dlt wraps every failure of a run in its own step exceptions; the cause a user needs (a wrong
key, a vendor rejecting a request, an endpoint that kept failing) sits somewhere down the chain.
`explain` finds it and says it plainly, naming the setting to check or the endpoint, status and
offset reached, and tells whether a later attempt may succeed (so Dagster retries only those).
Every text passes through `redact`: nothing here can show a key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

from svcdesk_dagster.settings import MissingSettingError, env_var_name
from svcdesk_dagster.sources.contract import VendorContractError
from svcdesk_dagster.sources.http import NotJsonAnswer, RedirectRefused
from svcdesk_dagster.sources.redaction import redact


@dataclass(frozen=True)
class Explanation:
    message: str
    transient: bool
    """A later attempt may succeed (a 429, a 5xx, a dropped connection): worth a Dagster retry."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and the chain of exceptions behind it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(
    error: BaseException,
    source_name: str,
    title: str,
    *,
    base_url: str | None = None,
    secrets: tuple[str, ...] = (),
) -> Explanation:
    """The cause of a failed sync of the `title` API (config section `source_name`, called at
    `base_url`), with none of `secrets` in it."""
    api = f"the {title} API" + (f" at {shown_url(base_url)}" if base_url else "")
    explanation = _explain(error, source_name, api)
    return Explanation(redact(explanation.message, secrets), explanation.transient)


def _explain(error: BaseException, source_name: str, api: str) -> Explanation:
    subject = api[0].upper() + api[1:]
    for cause in causes(error):
        if isinstance(cause, MissingSettingError):
            return Explanation(str(cause), transient=False)
        if isinstance(cause, requests.HTTPError) and cause.response is not None:
            return _explain_status(cause.response, source_name, api)
        if isinstance(cause, (RedirectRefused, NotJsonAnswer)):
            where = _where(cause.request.url if cause.request is not None else None)
            return Explanation(
                f"{subject} gave an unexpected answer{where}: {cause}. Check "
                f"{env_var_name('sources', source_name, 'base_url')}.",
                transient=False,
            )
        if isinstance(cause, requests.RequestException):
            where = _where(cause.request.url if cause.request is not None else None)
            plain, transient = network_cause(cause)
            retried = "even after retries" if transient else "and was not retried"
            return Explanation(
                f"{subject} could not be reached{where}, {retried}. Cause: {plain}. "
                f"Detail: {redact(str(cause))}",
                transient=transient,
            )
        if isinstance(cause, VendorContractError):
            return Explanation(f"{subject} broke its contract: {cause}", transient=False)
    return Explanation(redact(str(error)), transient=False)


def network_cause(error: requests.RequestException) -> tuple[str, bool]:
    """What went wrong on the way to the vendor, in plain words, and whether it may pass."""
    text = str(error)
    if isinstance(error, requests.exceptions.SSLError):
        return (
            "the TLS handshake failed (nothing speaks https at that host and port, or its "
            "certificate is not trusted): check the scheme and port of the base URL",
            False,
        )
    if isinstance(error, requests.Timeout):
        return (
            "no answer within the request timeout "
            f"({env_var_name('sources', 'http', 'request_timeout')})",
            True,
        )
    if any(marker in text for marker in NAME_RESOLUTION_MARKERS):
        return "the host name does not resolve (DNS): check the host in the base URL", True
    if "refused" in text.lower():
        return "the connection was refused (nothing listens at that host and port)", True
    return "the connection failed or dropped before a whole answer came back", True


NAME_RESOLUTION_MARKERS = (
    "NameResolutionError",
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
)


def shown_url(url: str) -> str:
    """A base URL as an error may show it: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def _explain_status(response: requests.Response, source_name: str, api: str) -> Explanation:
    status = response.status_code
    subject = api[0].upper() + api[1:]
    where = _where(response.url)
    said = vendor_message(response)
    if status in (401, 403):
        return Explanation(
            f"Authentication failed for {api} ({status}{said}): check "
            f"{env_var_name('sources', source_name, 'api_key')}.",
            transient=False,
        )
    if status == 404:
        return Explanation(
            f"{subject} has no such endpoint{where} (404{said}): check "
            f"{env_var_name('sources', source_name, 'base_url')}.",
            transient=False,
        )
    if status == 429 or status >= 500:
        return Explanation(
            f"{subject} kept failing{where}: it answered {status} {response.reason} "
            f"after every retry{said}.",
            transient=True,
        )
    return Explanation(
        f"{subject} rejected the request{where} ({status} {response.reason}{said}).",
        transient=False,
    )


def _where(url: str | None) -> str:
    """` at GET /v1/tickets, offset 200`: the endpoint and how far the read had come."""
    if not url:
        return ""
    parts = urlsplit(url)
    offset = parse_qs(parts.query).get("offset", ["0"])[0]
    return f" at GET {parts.path}, offset {offset}"


def vendor_message(response: requests.Response) -> str:
    """The vendor's own words from its JSON error body; a proxy's HTML page is only named."""
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no body").split(";")[0]
        return f"; the body was {kind}, not the vendor's JSON: a proxy answered"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f": {redact(json.dumps(message) if not isinstance(message, str) else message)}" if message else ""
