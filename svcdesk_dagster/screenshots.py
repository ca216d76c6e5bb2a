"""`svcdesk screenshots` (`./dev screenshots`): the README's pictures of the web UI, taken in a real
browser.

It runs the demo into the instance of `DAGSTER_HOME`, starts `dagster-webserver` on loopback with
that instance, and shoots each page of `PAGES` with headless Chromium (Debian's `chromium`, which
`scripts/ensure-chromium` installs). A page is shot only once its rendered DOM shows what the page
is for (`UiPage.must_show`): a picture of a loading spinner fails here, not in the README.
`svcdesk_dagster_tests/test_screenshots.py` runs this command and reads the same pages' DOM.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svcdesk_dagster.sources import APIS
from svcdesk_simulator import VendorSize

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS_DIR = PROJECT_ROOT / "docs" / "screenshots"
WEBSERVER_STARTUP_SECONDS = 60.0
RENDER_ATTEMPTS = 3
"""A page whose DOM lacks what it must show is loaded again this often before the command fails:
on a busy machine a request can outlast Chromium's page-time budget."""


class ScreenshotError(Exception):
    """A picture could not be taken; the message says which page and why."""


@dataclass(frozen=True)
class UiPage:
    """One page of the web UI, as the README shows it."""

    name: str
    """The PNG's file name, without `.png`, under `docs/screenshots/`."""
    path: str
    """The page's URL path; `{run_id}` is the demo's run."""
    shows: str
    """What the picture shows: the README's alt text."""
    window: tuple[int, int]
    """Width and height in pixels: the whole of what `shows` says, and no more."""
    must_show: tuple[str, ...]
    """Texts the rendered page holds once it is complete."""


def _expanded_groups() -> str:
    """The lineage page's `expanded` parameter: every asset group opened, so the picture shows the
    assets rather than one box per group."""
    return ",".join(f"global@global:{api.name}" for api in APIS)


PAGES = (
    UiPage(
        "lineage",
        "/asset-groups?" + urllib.parse.urlencode({"expanded": _expanded_groups()}),
        "Global asset lineage: tickets, incidents and services, each with its two checks passed",
        (1280, 1300),
        ("tickets", "incidents", "services", "Asset checks", "2 / 2 Passed"),
    ),
    UiPage(
        "tickets",
        "/assets/tickets",
        "The tickets asset: row count, latest check results, description and described columns",
        (1280, 1000),
        ("Row count", "Latest check results", "Columns", "The ticket's id"),
    ),
    UiPage(
        "tickets-checks",
        "/assets/tickets?view=checks",
        "The tickets asset's checks, merge_key_unique and schema_contract, with their results",
        (1280, 760),
        ("merge_key_unique", "schema_contract", "Passed"),
    ),
    UiPage(
        "run-log",
        "/runs/{run_id}?levels=info|warning|error",
        "A full_refresh run's log, at INFO and above: what each sync read",
        (1280, 760),
        ("Success", "tickets: read", "incidents: read"),
    ),
)


def page_text(dom: str) -> str:
    """The visible words of a rendered DOM, one space apart: what a reader of the page sees."""
    without_code = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without_code)).split())


class HeadlessChromium:
    """Debian's Chromium, run once per page: `--dump-dom` for the DOM after the app has rendered
    and, in the same run, `--screenshot` for its picture.

    `--virtual-time-budget` lets the page run up to that many milliseconds of its own time, where
    time stands still while requests are in flight: the single-page app gets its GraphQL answers
    and renders before the DOM is read, even on a busy machine.
    """

    VIRTUAL_TIME_BUDGET_MS = 15_000
    FLAGS = (
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        # Nothing but the page's own loopback requests: no sync, updates or QUIC probes to hosts a
        # closed network refuses anyway.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
    )

    def __init__(self, executable: str) -> None:
        self.executable = executable

    @classmethod
    def find(cls) -> HeadlessChromium:
        executable = shutil.which("chromium")
        if executable is None:
            raise ScreenshotError(
                "Chromium is not installed: as root, `scripts/ensure-chromium` installs Debian's "
                "`chromium` package (`./dev screenshots` runs it)."
            )
        return cls(executable)

    def render(self, url: str, window: tuple[int, int], screenshot: Path | None = None) -> str:
        """The visible text of `url` once the app has rendered, and, given `screenshot`, a picture
        of that same render in that PNG file."""
        action = ["--dump-dom"]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.unlink(missing_ok=True)
            action.append(f"--screenshot={screenshot}")
        text = page_text(self._run(url, window, *action))
        if screenshot is not None and not screenshot.is_file():
            raise ScreenshotError(f"Chromium wrote no screenshot of {url} to {screenshot}")
        return text

    def _run(self, url: str, window: tuple[int, int], *action: str) -> str:
        # A fresh profile each time: nothing remembered from an earlier page changes this one.
        with tempfile.TemporaryDirectory(prefix="svcdesk-chromium-") as profile:
            flags = [*self.FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
                     f"--virtual-time-budget={self.VIRTUAL_TIME_BUDGET_MS}"]
            if os.geteuid() == 0:
                flags.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
            done = subprocess.run(
                [self.executable, *flags, *action, url], capture_output=True, text=True, timeout=120
            )
        if done.returncode != 0:
            raise ScreenshotError(f"Chromium failed on {url} (exit {done.returncode}): {done.stderr[-2000:]}")
        return done.stdout


def graphql(base_url: str, query: str) -> dict[str, Any]:
    """The `data` of a GraphQL answer from the webserver at `base_url`."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    if "errors" in body:
        raise ScreenshotError(f"the webserver answered a GraphQL query with errors: {body['errors']}")
    return body["data"]


LOCATION_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


@contextmanager
def serve_web_ui(dagster_home: Path, env: Mapping[str, str]) -> Iterator[str]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port with the instance in
    `dagster_home`, from the project root; yields its base URL once the code location has loaded."""
    port = unused_loopback_port()
    log = dagster_home / "webserver.log"
    webserver = str(Path(sys.executable).with_name("dagster-webserver"))
    with log.open("wb") as output:
        process = subprocess.Popen(
            [webserver, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env={**env, "DAGSTER_HOME": str(dagster_home)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server goes down with it
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_loaded(process, base_url, log)
        # As a first visitor's "Skip" would: Dagster's welcome dialog would cover the first page.
        graphql(base_url, "mutation { setNuxSeen }")
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def unused_loopback_port() -> int:
    """A loopback port nothing listens on now: bound, read and released. For a server about to be
    started (it may be taken in between, rarely), or as an address that refuses connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_loaded(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    """Polls GraphQL until the code location reports LOADED (or fails to, or the server dies)."""
    deadline = time.monotonic() + WEBSERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScreenshotError(f"dagster-webserver exited: {log.read_text()[-3000:]}")
        try:
            entries = graphql(base_url, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
        except OSError:
            time.sleep(0.2)  # not listening yet: the process is still starting
            continue
        if entries and entries[0]["loadStatus"] == "LOADED":
            loaded = entries[0]["locationOrLoadError"]
            if loaded["__typename"] != "RepositoryLocation":
                raise ScreenshotError(f"the code location failed to load: {loaded.get('message')}")
            return
        time.sleep(0.2)
    raise ScreenshotError(
        f"the code location did not load in {WEBSERVER_STARTUP_SECONDS:.0f} s: {log.read_text()[-3000:]}"
    )


def latest_run_id(base_url: str, job_name: str) -> str:
    """The newest run of `job_name` in the instance the webserver shows: the run whose log is shot."""
    runs = graphql(
        base_url,
        '{ runsOrError(limit: 1, filter: {pipelineName: "%s"}) { ... on Runs { results { runId } } } }'
        % job_name,
    )["runsOrError"]["results"]
    if not runs:
        raise ScreenshotError(f"the instance holds no run of `{job_name}` to show")
    return runs[0]["runId"]


def page_url(base_url: str, page: UiPage, run_id: str) -> str:
    return base_url + page.path.format(run_id=run_id)


def render_complete(
    chromium: HeadlessChromium, url: str, page: UiPage, screenshot: Path | None = None
) -> str:
    """The visible text of the page once it shows all of `page.must_show` (and its picture in
    `screenshot`, when given), or an error and no picture."""
    missing: list[str] = []
    for _ in range(RENDER_ATTEMPTS):
        text = chromium.render(url, page.window, screenshot)
        missing = [expected for expected in page.must_show if expected not in text]
        if not missing:
            return text
    if screenshot is not None:
        screenshot.unlink()
    raise ScreenshotError(f"{url} never showed {missing} in {RENDER_ATTEMPTS} loads")


def take_screenshots(out_dir: Path, size: VendorSize) -> int:
    """The demo, then a picture of each page of `PAGES` in `out_dir`; the process exit code."""
    from svcdesk_dagster.demo import DEMO_JOB, run_demo
    from svcdesk_dagster.settings import dagster_home

    home = dagster_home()
    if home is None:
        raise ScreenshotError("DAGSTER_HOME is not set: the pictures show the demo's run in that "
                              "instance (`./dev screenshots` uses .dagster_home/)")
    chromium = HeadlessChromium.find()
    exit_code = run_demo(size)
    if exit_code != 0:
        return exit_code
    with serve_web_ui(Path(home), os.environ) as base_url:
        run_id = latest_run_id(base_url, DEMO_JOB)
        for page in PAGES:
            png = out_dir / f"{page.name}.png"
            render_complete(chromium, page_url(base_url, page, run_id), page, png)
            print(f"{png} ({png.stat().st_size // 1024} KiB): {page.shows}")
    return 0
