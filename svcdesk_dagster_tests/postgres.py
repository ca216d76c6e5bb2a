"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries, started on loopback.

One server per test session (initdb and start take about two seconds), one fresh database per
test, so tests stay independent as they do on DuckDB. The server listens on 127.0.0.1 only, on a
free port, with no Unix socket, from a throwaway data directory, and is stopped at the end.

PostgreSQL refuses to run as root, and CI runs as root: there the server runs as the `postgres`
user that Debian's package creates. Where the binaries are missing the tests are skipped, except
in CI (`CI=true`), where `.ci/run` installs them, so a missing server is a failure there.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from svcdesk_dagster_tests.conftest import unused_port

HOST = "127.0.0.1"
SUPERUSER = "svcdesk"
STARTUP_SECONDS = 60.0
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
"""Who runs the server when the tests run as root: the account Debian's package creates."""

TEST_SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "unix_socket_directories": "''",
    # A throwaway server: durability buys nothing here and costs seconds per test.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def find_binaries() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `pg_isready`, or None.

    Debian keeps the server's binaries off PATH, in /usr/lib/postgresql/<major>/bin (newest
    major first); elsewhere (Homebrew, a source build) they are on PATH.
    """
    candidates = sorted(glob.glob(DEBIAN_BINARIES), key=major_version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for directory in map(Path, candidates):
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "pg_isready")):
            return directory
    return None


def major_version(directory: str) -> int:
    name = Path(directory).parent.name
    return int(name) if name.isdigit() else 0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail_in_ci(reason: str) -> NoReturn:
    """Skips a test whose tool is missing; under CI, where `.ci/run` installs it, fails it."""
    if in_ci():
        pytest.fail(f"{reason} CI installs it in .ci/run, so here it is a failure.", pytrace=False)
    pytest.skip(reason)


def require_binaries() -> Path:
    """The server binaries, or skip (fail in CI) with a reason that says how to get them."""
    binaries = find_binaries()
    if binaries is not None:
        return binaries
    reason = (
        "PostgreSQL server binaries (initdb, pg_ctl, pg_isready) not found: install Debian's "
        "`postgresql` package (`scripts/ensure-postgres` does) to run the PostgreSQL tests."
    )
    skip_or_fail_in_ci(reason)


@dataclass(frozen=True)
class PostgresServer:
    """A running server and how to reach it."""

    port: int
    password: str = field(repr=False)  # a throwaway, but kept out of failure reports all the same
    log: Path

    def url(self, database: str) -> str:
        """A libpq URL, as `DESTINATION__POSTGRES__CREDENTIALS` takes it."""
        return f"postgresql://{SUPERUSER}:{self.password}@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> Any:
        import psycopg2  # the `postgres` extra: only needed once a server exists

        connection = psycopg2.connect(
            host=HOST, port=self.port, user=SUPERUSER, password=self.password, dbname=database
        )
        connection.autocommit = True
        return connection

    def execute(
        self, sql: str, database: str = "postgres"
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Runs one statement in autocommit (CREATE DATABASE allows no transaction); returns the
        column names and rows, empty for a statement that returns none."""
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                if cursor.description is None:
                    return [], []
                return [column.name for column in cursor.description], cursor.fetchall()
        finally:
            connection.close()

    def create_database(self, name: str) -> PostgresDatabase:
        self.execute(f'CREATE DATABASE "{name}"')
        return PostgresDatabase(self, name)


@dataclass(frozen=True)
class PostgresDatabase:
    """One test's database; `query` is the seam `tables_vs_simulator.py` reads tables through."""

    server: PostgresServer
    name: str

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of `sql`, as `tables_vs_simulator.query` returns them for a DuckDB file."""
        return self.server.execute(sql, self.name)

    def execute(self, sql: str) -> None:
        """Changes data behind dlt's back, the way a hand-made fix or a buggy tool would."""
        self.server.execute(sql, self.name)


def server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(
            f"Running as root, and PostgreSQL refuses root: there is no `{SERVER_USER}` user to "
            "run it as (Debian's `postgresql` package creates one).",
            pytrace=False,
        )


def run_as(
    account: pwd.struct_passwd | None, command: Sequence[str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Runs a server tool as `account` (None: as ourselves); its output is kept for errors."""
    identity: dict[str, Any] = {}
    if account is not None:
        identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd="/",  # the server's account may not be allowed into ours
        **identity,
        **kwargs,
    )


def check(completed: subprocess.CompletedProcess[str], what: str) -> None:
    if completed.returncode != 0:
        raise RuntimeError(f"{what} failed ({completed.returncode}): {completed.stderr[-2000:]}")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """initdb in a temp directory, `pg_ctl start` on a free loopback port, stop and delete after."""
    binaries = require_binaries()
    account = server_account()
    root = Path(tempfile.mkdtemp(prefix="svcdesk-postgres-"))
    try:
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        server = PostgresServer(
            port=unused_port(), password=secrets.token_urlsafe(18), log=root / "server.log"
        )
        init_cluster(binaries, account, root, server.password)
        data = root / "data"
        start = [str(binaries / "pg_ctl"), "start", "-D", str(data), "-l", str(server.log), "-W"]
        check(run_as(account, [*start, "-o", f"-p {server.port}"]), "pg_ctl start")
        try:
            wait_until_ready(binaries, account, data, server)
            yield server
        finally:
            stop = [str(binaries / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"]
            run_as(account, stop)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def init_cluster(
    binaries: Path, account: pwd.struct_passwd | None, root: Path, password: str
) -> None:
    """A cluster whose superuser `svcdesk` logs in over TCP with a password, as in production."""
    password_file = root / "password"
    password_file.write_text(password)
    if account is not None:
        os.chown(password_file, account.pw_uid, account.pw_gid)
    password_file.chmod(0o600)
    data = root / "data"
    initdb = [
        str(binaries / "initdb"),
        "-D", str(data),
        "-U", SUPERUSER,
        f"--pwfile={password_file}",
        "--auth-host=scram-sha-256",
        "--auth-local=peer",
        "-E", "UTF8",
        "--no-locale",
        "--no-sync",
    ]
    check(run_as(account, initdb), "initdb")
    password_file.unlink()
    with (data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in TEST_SETTINGS.items())


def wait_until_ready(
    binaries: Path, account: pwd.struct_passwd | None, data: Path, server: PostgresServer
) -> None:
    """Polls `pg_isready` until the server accepts connections, or fails with its log."""
    ready = [str(binaries / "pg_isready"), "-q", "-h", HOST, "-p", str(server.port), "-t", "1"]
    status = [str(binaries / "pg_ctl"), "status", "-D", str(data)]
    deadline = time.monotonic() + STARTUP_SECONDS
    for attempt in itertools.count():
        if run_as(account, ready).returncode == 0:
            return
        # pg_ctl status exits 3 once the postmaster is gone: say why now, not after the deadline.
        if run_as(account, status).returncode == 3 or time.monotonic() > deadline:
            log = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not become ready on {HOST}:{server.port}: {log}")
        time.sleep(min(0.05 * (attempt + 1), 0.5))  # between polls, not a guess at readiness


DATABASE_NAMES = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session's tests (skipped, or failed in CI, without one)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> PostgresDatabase:
    """A fresh, empty database for one test."""
    return postgres_server.create_database(f"svcdesk_test_{next(DATABASE_NAMES)}")
