"""The one HTTP session both upstream APIs are called through.

The seeds' retry policy lives here and nowhere else: retry 429, 500, 502, 503 and 504 (plus
dropped connections and bodies cut short) at most 3 times, with exponential backoff of factor 2,
honouring `Retry-After`. dlt's `Client` does the retrying; we only give it the seeds' numbers,
because its defaults differ (it counts *attempts*, not retries, and retries every 5xx).

The API key travels in the query string (the seeds' `location: query`), so any error message that
quotes a URL would show it. The session redacts it from every exception it raises, once, for both
APIs.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

import requests
from dlt.sources.helpers.requests import Client
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, ContentDecodingError, Timeout

from svcdesk_dagster.sources.settings import config_value

SEED_RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_CONNECTIONS = 50
RETRIED_EXCEPTIONS = (ConnectionError, Timeout, ChunkedEncodingError, ContentDecodingError)
_QUERY_SECRET = re.compile(r"(?i)(api_key=)[^&#\s'\"]+")
REDACTED = "***"


@dataclass(frozen=True)
class RetrySettings:
    """HTTP retry and timeout settings, read from `[sources.http]` (env `SOURCES__HTTP__*`)."""

    max_retries: int = 3
    backoff_factor: float = 2.0
    max_retry_delay: float = 60.0
    request_timeout: float = 60.0
    retry_statuses: tuple[int, ...] = SEED_RETRY_STATUSES

    @classmethod
    def from_config(cls) -> RetrySettings:
        defaults = cls()
        statuses = config_value("sources.http.retry_statuses", None, str)
        return cls(
            max_retries=config_value("sources.http.max_retries", defaults.max_retries, int),
            backoff_factor=config_value(
                "sources.http.backoff_factor", defaults.backoff_factor, float
            ),
            max_retry_delay=config_value(
                "sources.http.max_retry_delay", defaults.max_retry_delay, float
            ),
            request_timeout=config_value(
                "sources.http.request_timeout", defaults.request_timeout, float
            ),
            retry_statuses=(
                tuple(int(s) for s in statuses.strip("[]()").split(",") if s.strip())
                if statuses
                else defaults.retry_statuses
            ),
        )


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Removes API keys from a text: any `api_key=` query value and every known secret verbatim."""
    text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _redacting(send: Callable[..., requests.Response], secrets: tuple[str, ...]) -> Callable[..., Any]:
    """Wraps `Session.send` so no exception it raises carries a key, in its text or its causes."""

    @functools.wraps(send)
    def send_redacted(*args: Any, **kwargs: Any) -> requests.Response:
        try:
            return send(*args, **kwargs)
        except requests.RequestException as error:
            response = error.response
            message = redact(str(error), secrets)
            raise type(error)(message, response=response) from None

    return send_redacted


class ResponseTally:
    """Responses per URL path and status, for the run's metadata.

    Counted per attempt, at the transport adapter: a page that needed two retries shows one 200
    and two failures. A connection that failed before any answer counts as status 0.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()

    def record(self, url: str, status: int) -> None:
        self.counts[(urlsplit(url).path, status)] += 1

    def count(self, path_suffix: str, ok: bool = True) -> int:
        """Responses to paths ending in `path_suffix`: the 200s, or (ok=False) all the others."""
        return sum(
            n
            for (path, status), n in self.counts.items()
            if path.endswith(path_suffix) and (status == 200) == ok
        )


class TallyingAdapter(HTTPAdapter):
    """The transport adapter, counting every attempt into a `ResponseTally`."""

    def __init__(self, tally: ResponseTally, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tally = tally

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            response = super().send(request, *args, **kwargs)
        except requests.RequestException:
            self.tally.record(str(request.url), 0)
            raise
        self.tally.record(str(request.url), response.status_code)
        return response


def build_session(
    settings: RetrySettings, secrets: tuple[str, ...] = (), tally: ResponseTally | None = None
) -> requests.Session:
    """A session with the seeds' retry policy that never shows the given secrets in an error,
    counting its responses into `tally` when one is given."""
    client = Client(
        request_timeout=settings.request_timeout,
        raise_for_status=False,
        status_codes=settings.retry_statuses,
        exceptions=RETRIED_EXCEPTIONS,
        request_max_attempts=settings.max_retries + 1,
        request_backoff_factor=settings.backoff_factor,
        request_max_retry_delay=settings.max_retry_delay,
        respect_retry_after_header=True,
        max_connections=MAX_CONNECTIONS,
    )
    session = client.session
    if tally is not None:
        adapter = TallyingAdapter(tally, pool_maxsize=MAX_CONNECTIONS)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    session.send = _redacting(session.send, secrets)  # type: ignore[method-assign]
    return session
