"""Broken networks: every way a request can fail ends the run with an error that names the API,
its base URL and the cause in plain words, is retried by Dagster only when the cause can pass,
and leaves the API key in no byte anywhere (messages, exception chains, dlt's pipeline directory,
Dagster's event log and compute logs, stdout and stderr, the DuckDB file). And plain HTTP to a
host that is not this machine is refused before any request.

The broken endpoints are tiny servers of this module's own on 127.0.0.1; the echoing ones put the
request line, key and all, into what they answer, as captive portals and redirecting proxies do.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from dagster import AssetKey, DagsterInstance

from svcdesk_dagster.definitions import defs
from svcdesk_dagster.settings import check_base_url
from svcdesk_dagster_tests.conftest import Project, unused_port
from svcdesk_dagster_tests.dagster_runs import materialize
from svcdesk_dagster_tests.tables_vs_simulator import expected_rows, table_rows
from svcdesk_simulator import Simulator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
CANARY = "CANARYKEY-net-5e1f0a9d"
STEP_RETRIES = 3
"""Dagster's retries of a sync step (the project's default)."""


# -- tiny broken servers ------------------------------------------------------------------------


class EchoingHandler(BaseHTTPRequestHandler):
    """Answers every GET as `self.server.answer` says, quoting the request line in it."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, headers, body = self.server.answer(self.path)  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class TinyServer:
    url: str
    close: Callable[[], None]


def serve(answer: Callable[[str], tuple[int, dict[str, str], str]]) -> TinyServer:
    """An HTTP server on a free loopback port; listening (so ready) when this returns."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingHandler)
    server.answer = answer  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def close() -> None:
        server.shutdown()
        server.server_close()

    return TinyServer(f"http://127.0.0.1:{server.server_address[1]}/sd", close)


def captive_portal(path: str) -> tuple[int, dict[str, str], str]:
    """A `200` login page that quotes where the client wanted to go."""
    page = f"<html><body>Please log in to continue to <a href='{path}'>{path}</a></body></html>"
    return 200, {"Content-Type": "text/html; charset=utf-8"}, page


def moved(path: str) -> tuple[int, dict[str, str], str]:
    """A permanent redirect to another host that keeps the query string, key included."""
    return 301, {"Location": f"https://moved.example{path}"}, ""


def silent_server() -> TinyServer:
    """Accepts connections (the kernel completes them from the backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return TinyServer(f"http://127.0.0.1:{listener.getsockname()[1]}/sd", listener.close)


# -- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    start: Callable[[Simulator], TinyServer]
    cause: str
    transient: bool


def nothing(url: str) -> TinyServer:
    return TinyServer(url, lambda: None)


CASES = {
    "connection-refused": Case(
        lambda sim: nothing(f"http://127.0.0.1:{unused_port()}/sd"),
        "the connection was refused",
        transient=True,
    ),
    "host-does-not-resolve": Case(
        lambda sim: nothing("https://svcdesk-nowhere.invalid/sd"),
        "the host name does not resolve",
        transient=True,
    ),
    "server-never-answers": Case(
        lambda sim: silent_server(), "no answer within the request timeout", transient=True
    ),
    "tls-to-a-plain-http-port": Case(
        lambda sim: nothing(sim.service_desk_url.replace("http://", "https://")),
        "the TLS handshake failed",
        transient=False,
    ),
    "html-200-from-a-captive-portal": Case(
        lambda sim: serve(captive_portal), "text/html body instead of JSON", transient=False
    ),
    "redirect": Case(
        lambda sim: serve(moved),
        "a redirect to https://moved.example/sd/v1/tickets",
        transient=False,
    ),
}


@pytest.fixture
def canary_env(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__SERVICE_DESK__API_KEY", CANARY)
    monkeypatch.setenv("SOURCES__HTTP__MAX_RETRIES", "1")
    monkeypatch.setenv("SOURCES__HTTP__REQUEST_TIMEOUT", "0.3")


def everything_said(error: BaseException) -> str:
    """Every text an exception chain carries: messages, `args`, attributes, and the URLs, headers
    and bodies of the requests and responses hanging on them."""
    texts, seen, pending = [], set(), [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current.args)]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [a for a in current.args if isinstance(a, BaseException)]
        for value in vars(current).values():
            texts.append(repr(value))
            if isinstance(value, BaseException):
                pending.append(value)
            if isinstance(value, (requests.PreparedRequest, requests.Response)):
                texts.append(str(value.url))
            if isinstance(value, requests.Response):
                texts += [str(value.headers), value.text, str(getattr(value.request, "url", ""))]
    return "\n".join(texts)


def files_holding(root: Path, needle: str) -> list[str]:
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    ]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_broken_network_fails_the_run_plainly_and_keeps_the_key_secret(
    case: Case,
    simulator: Simulator,
    project: Project,
    canary_env: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = case.start(simulator)
    url = server.url
    monkeypatch.setenv("SOURCES__SERVICE_DESK__BASE_URL", url)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    job = defs.resolve_implicit_global_asset_job_def()
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            with pytest.raises(Exception) as raised:
                job.execute_in_process(instance=instance, asset_selection=[AssetKey("tickets")])
            (run,) = instance.get_runs()
            retries = [
                entry
                for entry in instance.all_logs(run.run_id)
                if entry.dagster_event is not None
                and entry.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
            ]
    finally:
        server.close()

    said = everything_said(raised.value)
    assert f"The service desk API at {url}" in said
    assert case.cause in said
    assert len(retries) == (STEP_RETRIES if case.transient else 0)
    assert CANARY not in said
    printed = capfd.readouterr()
    assert CANARY not in printed.out + printed.err
    for root in (dagster_home, Path(project.env["DLT_DATA_DIR"]), project.duckdb_file.parent):
        assert files_holding(root, CANARY) == []


def test_the_cli_and_its_compute_logs_never_show_the_key_a_redirect_echoes(
    simulator: Simulator, project: Project, tmp_path: Path
) -> None:
    server = serve(moved)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {
        **project.env,
        "SOURCES__SERVICE_DESK__BASE_URL": server.url,
        "SOURCES__SERVICE_DESK__API_KEY": CANARY,
        "DAGSTER_HOME": str(dagster_home),
        "RUNTIME__LOG_LEVEL": "DEBUG",
    }
    try:
        cli = subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "svcdesk_dagster", "--select", "tickets"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
    finally:
        server.close()

    assert cli.returncode != 0
    assert f"The service desk API at {server.url} gave an unexpected answer" in (
        cli.stdout + cli.stderr
    )
    assert CANARY not in cli.stdout + cli.stderr
    assert list(dagster_home.rglob("*.err")) or list(dagster_home.rglob("*.out")), "compute logs"
    assert files_holding(dagster_home, CANARY) == []
    assert files_holding(Path(project.env["DLT_DATA_DIR"]), CANARY) == []


# -- plain HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def service_desk_elsewhere(simulator: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch):
    """The simulator's service desk at plain http://0.0.0.0: not a loopback address, so the check
    must refuse it, yet Linux delivers a connection to it to this machine's own listeners."""
    monkeypatch.setenv(
        "SOURCES__SERVICE_DESK__BASE_URL",
        simulator.service_desk_url.replace("127.0.0.1", "0.0.0.0"),
    )
    return simulator


def test_plain_http_to_another_host_is_refused_before_any_request(
    service_desk_elsewhere: Simulator,
) -> None:
    result = materialize("tickets", raise_on_error=False)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "use https://" in message
    assert "SOURCES__SERVICE_DESK__ALLOW_PLAIN_HTTP=true" in message
    assert service_desk_elsewhere.request_count() == 0


def test_plain_http_is_allowed_where_the_user_says_the_network_is_trusted(
    service_desk_elsewhere: Simulator, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__SERVICE_DESK__ALLOW_PLAIN_HTTP", "true")

    materialize("tickets")

    assert service_desk_elsewhere.request_count() > 0
    loaded = table_rows(project.duckdb_file, "service_desk.tickets")
    assert loaded == expected_rows(service_desk_elsewhere.live_tickets())


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "[::1]"])
def test_loopback_hosts_stay_allowed(host: str) -> None:
    check_base_url("service_desk", f"http://{host}:8765/service-desk", allow_plain_http=False)
    with pytest.raises(ValueError, match="SOURCES__SERVICE_DESK__ALLOW_PLAIN_HTTP"):
        check_base_url("service_desk", "http://vendor.example/api", allow_plain_http=False)
