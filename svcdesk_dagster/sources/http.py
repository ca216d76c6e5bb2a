"""The one HTTP session both upstream APIs are called through.

The retry policy lives here and nowhere else: retry 429, 500, 502, 503 and 504 (plus
dropped connections, timeouts and bodies cut short) at most 3 times, with exponential backoff of
factor 2 (2, 4, 8 s), honouring `Retry-After` between a floor (a `Retry-After: 0` would otherwise
burn every retry within the same second the vendor is still counting) and a cap. Any other status
is final at once. dlt's `Client` is not used: it counts attempts rather than retries, retries every
5xx, lets `Retry-After: 0` fall back to a backoff that can be shorter than the rate window, and
the REST client calls `Session.send` directly, bypassing the timeout its session sets.

The API key travels in the query string (`location: query`, docs/contract.md), so any error message that
quotes a URL would show it. The session redacts it from every exception it raises, once, for both
APIs, and raises the redacted exception *outside* the `except` block that caught the original:
raised inside it, even `from None`, the new exception keeps the original as its `__context__`, and
dlt's trace (`trace.pickle`) and Dagster's event log record the whole chain, key and all.

Two answers that requests would take as success are refused here, before dlt reads them: a
redirect (following it would send the key, in the query, to an address nobody configured) and a
`200` whose body is not JSON (a captive portal or a proxy answering in the vendor's place).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from email.utils import parsedate_to_datetime
from typing import Any, Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import (
    ChunkedEncodingError,
    ConnectionError,
    ContentDecodingError,
    SSLError,
    Timeout,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_any,
    retry_if_exception,
    stop_after_attempt,
)

from svcdesk_dagster.settings import RetrySettings
from svcdesk_dagster.sources.governor import RateGovernor
from svcdesk_dagster.sources.redaction import API_KEY_PARAM, redact

MAX_CONNECTIONS = 50
USER_AGENT = "svcdesk_dagster (dlt rest_api)"
RETRIED_EXCEPTIONS = (ConnectionError, Timeout, ChunkedEncodingError, ContentDecodingError)
"""Network faults that pass: dropped connections, timeouts, bodies cut short. A failed TLS
handshake (`SSLError`, a kind of `ConnectionError`) is not among them: a wrong scheme or port, or an
untrusted certificate, fails the same way on every attempt."""
JSON_STARTS = (b"{", b"[")
def key_in_query(api_key: str) -> dict[str, str]:
    """Where the key goes, as dlt's `api_key` auth takes it: in the query, as `api_key`."""
    return {"name": API_KEY_PARAM, "api_key": api_key, "location": "query"}


class RedirectRefused(requests.RequestException):
    """The vendor answered with a redirect, which the session does not follow: the key travels in
    the query string, and would go wherever the redirect points."""


class NotJsonAnswer(requests.RequestException):
    """A `200` whose body is not the vendor's JSON: a captive portal or a proxy answered."""


def _redacted(request: requests.PreparedRequest | requests.Request | None) -> requests.PreparedRequest | None:
    """A copy of the failed request whose URL no longer carries the key (for `explain`)."""
    if not isinstance(request, requests.PreparedRequest):
        return None
    copy = request.copy()
    copy.url = redact(str(copy.url))
    return copy


def _scrubbed(response: requests.Response | None) -> requests.Response | None:
    """The failed answer, kept for `explain` (status, headers, the vendor's error body), with
    every copy of the request URL in it redacted and the raw urllib3 response (which keeps the
    URL too) let go once its body is read."""
    if response is None:
        return None
    try:
        _ = response.content
    except requests.RequestException:  # a body cut short is no use to `explain` either
        return None
    response.url = redact(str(response.url))
    response.request = _redacted(response.request)  # type: ignore[assignment]
    response.raw = None
    return response


def redacted_error(
    error: requests.RequestException, secrets: tuple[str, ...]
) -> requests.RequestException:
    """A new exception of the same type, with no key in its message, request or response, and no
    link to `error`: the caller must raise it outside the `except` block that caught `error`."""
    message, response, request = (
        redact(str(error), secrets), _scrubbed(error.response), _redacted(error.request)
    )
    try:
        clean = type(error)(message, response=response, request=request)
    except TypeError:  # a subclass with a constructor of its own
        clean = requests.RequestException(message, response=response, request=request)
    clean.__suppress_context__ = True
    return clean


def retry_policy(settings: RetrySettings) -> Retrying:
    """The retry policy: which answers to retry, how often, and how long to wait between."""
    statuses = frozenset(settings.retry_statuses)

    def retried_status(state: RetryCallState) -> bool:
        response = _response_of(state)
        return response is not None and response.status_code in statuses

    return Retrying(
        retry=retry_any(retry_if_exception(_passing_fault), retried_status),
        wait=functools.partial(_wait, settings),
        stop=stop_after_attempt(settings.max_retries + 1),
        reraise=True,
        # Out of retries on a status: hand back the last answer, so the caller sees its status.
        retry_error_callback=lambda state: state.outcome.result(),
    )


def _passing_fault(error: BaseException) -> bool:
    return isinstance(error, RETRIED_EXCEPTIONS) and not isinstance(error, SSLError)


def _response_of(state: RetryCallState) -> requests.Response | None:
    """The answer an attempt got: its result, or the response of the HTTPError that dlt's REST
    client raises from a response hook inside `send` for every status >= 400."""
    if state.outcome is None:
        return None
    if state.outcome.failed:
        error = state.outcome.exception()
        return error.response if isinstance(error, requests.HTTPError) else None
    result = state.outcome.result()
    return result if isinstance(result, requests.Response) else None


def _wait(settings: RetrySettings, state: RetryCallState) -> float:
    backoff = settings.backoff_factor * 2 ** (state.attempt_number - 1)
    response = _response_of(state)
    retry_after = _retry_after_seconds(response) if response is not None else None
    if response is not None and response.status_code == 429:
        wait = max(settings.retry_after_floor, backoff if retry_after is None else retry_after)
    else:
        wait = backoff if retry_after is None else retry_after
    return min(wait, settings.max_retry_delay)


def _retry_after_seconds(response: requests.Response) -> float | None:
    """`Retry-After` in seconds (the contract sends whole seconds; an HTTP date is honoured too)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _with_policy(
    send: Callable[..., requests.Response], settings: RetrySettings, secrets: tuple[str, ...]
) -> Callable[..., requests.Response]:
    """`Session.send` with the retry policy, the request timeout, no redirects, and errors free of
    keys."""
    send_with_retries = retry_policy(settings).wraps(send)

    @functools.wraps(send)
    def send_redacted(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:  # `Session.get` passes `timeout=None` explicitly
            kwargs["timeout"] = settings.request_timeout
        kwargs["allow_redirects"] = False
        failure: requests.RequestException | None = None
        try:
            response = send_with_retries(request, **kwargs)
        except requests.RequestException as error:
            failure = redacted_error(error, secrets)
        if failure is not None:
            # Raised here, after the `except` block, so that it has no `__context__`.
            raise failure
        refuse_unexpected(response)
        return response

    return send_redacted


def refuse_unexpected(response: requests.Response) -> None:
    """Raises on a redirect, and on a `200` that is not JSON (see the module docstring)."""
    if response.is_redirect:
        target = urlsplit(redact(response.headers.get("Location", "")))
        raise RedirectRefused(
            f"{response.status_code} {response.reason}, a redirect to "
            f"{target._replace(query='', fragment='').geturl() or 'nowhere'}, which is not "
            "followed: the key, in the query, would go to an address nobody configured",
            request=_redacted(response.request),
        )
    if response.status_code == 200 and response.content[:64].lstrip()[:1] not in JSON_STARTS:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise NotJsonAnswer(
            f"200 with a {kind} body instead of JSON: a captive portal or a proxy answered in "
            "the vendor's place",
            request=_redacted(response.request),
        )


def refuse_failed_status(response: requests.Response, secrets: tuple[str, ...]) -> None:
    """Raises, as dlt's REST client would, an `HTTPError` for an answer that is not a 200, with
    no key in its message, request or response (for a caller that reads pages itself)."""
    if response.status_code == 200:
        return
    error = requests.HTTPError(
        f"{response.status_code} {response.reason} for url: {response.url}",
        response=response,
        request=response.request,
    )
    raise redacted_error(error, secrets)


class ResponseTally:
    """Responses per URL path and status, for the run's metadata.

    Counted per attempt, at the transport adapter: a page that needed two retries shows one 200
    and two failures. A connection that failed before any answer counts as status 0.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()  # pages of one listing are read on several threads

    def record(self, url: str, status: int) -> None:
        with self._lock:
            self.counts[(urlsplit(url).path, status)] += 1

    def count(self, path_suffix: str, ok: bool = True) -> int:
        """Responses to paths ending in `path_suffix`: the 200s, or (ok=False) all the others."""
        return self._sum(path_suffix, lambda status: (status == 200) == ok)

    def requests(self, path_suffix: str) -> int:
        """Every attempt at paths ending in `path_suffix`, whatever its answer."""
        return self._sum(path_suffix, lambda status: True)

    def answered(self, path_suffix: str, status: int) -> int:
        """Answers with `status` to paths ending in `path_suffix`."""
        return self._sum(path_suffix, lambda answered: answered == status)

    def _sum(self, path_suffix: str, counted: Callable[[int], bool]) -> int:
        with self._lock:
            items = list(self.counts.items())
        return sum(n for (path, status), n in items if path.endswith(path_suffix) and counted(status))


class MeteredAdapter(HTTPAdapter):
    """The transport adapter: every attempt (retries included) asks the key's rate governor
    first, when there is one, and is counted into the tally after."""

    def __init__(
        self, tally: ResponseTally, governor: RateGovernor | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.tally = tally
        self.governor = governor

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self.governor is not None:
            self.governor.acquire()
        try:
            response = super().send(request, *args, **kwargs)
        except requests.RequestException:
            self._ended(request, None)
            raise
        self._ended(request, response)
        return response

    def _ended(self, request: requests.PreparedRequest, response: requests.Response | None) -> None:
        self.tally.record(str(request.url), 0 if response is None else response.status_code)
        if self.governor is not None:
            self.governor.release(None if response is None else response.headers)


def build_session(
    settings: RetrySettings,
    secrets: tuple[str, ...] = (),
    tally: ResponseTally | None = None,
    governor: RateGovernor | None = None,
) -> requests.Session:
    """A session with the retry policy that never shows the given secrets in an error,
    counting its responses into `tally` and pacing its requests with `governor`."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = MeteredAdapter(
        tally if tally is not None else ResponseTally(), governor, pool_maxsize=MAX_CONNECTIONS
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.send = _with_policy(session.send, settings, secrets)  # type: ignore[method-assign]
    return session
