"""The README's pictures, and the web UI they show, in a real browser (Debian's headless Chromium).

`svcdesk screenshots` runs as `./dev screenshots` does, into a throwaway instance and DuckDB file;
then the same pages are loaded again and their DOM, after the app has rendered, is read: the three
assets, both checks and the row count of `tickets` must be on screen, not only in GraphQL.
Without Chromium the tests skip, except under `CI=true`, where `.ci/run` installs it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from svcdesk_dagster.demo import DEMO_JOB
from svcdesk_dagster.screenshots import (
    PAGES,
    PROJECT_ROOT,
    HeadlessChromium,
    ScreenshotError,
    UiPage,
    latest_run_id,
    page_url,
    render_complete,
    serve_web_ui,
)
from svcdesk_dagster_tests.conftest import unconfigured_environment
from svcdesk_dagster_tests.postgres import skip_or_fail_in_ci

SVCDESK = str(Path(sys.executable).with_name("svcdesk"))
SIZE = ("--tickets", "240", "--incidents", "90", "--services", "7", "--seed", "11")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL_PNG_BYTES = 400_000


@dataclass(frozen=True)
class Screenshots:
    """What one `svcdesk screenshots` left behind."""

    out_dir: Path
    dagster_home: Path
    duckdb_file: Path
    env: dict[str, str]


def require_chromium() -> HeadlessChromium:
    try:
        return HeadlessChromium.find()
    except ScreenshotError as missing:
        skip_or_fail_in_ci(str(missing))


@pytest.fixture(scope="module")
def chromium() -> HeadlessChromium:
    return require_chromium()


@pytest.fixture(scope="module")
def screenshots(chromium: HeadlessChromium, tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    """`svcdesk screenshots --out ...` from the project root, with its own instance and DuckDB."""
    root = tmp_path_factory.mktemp("screenshots")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    duckdb_file = root / "svcdesk.duckdb"
    env = {
        **unconfigured_environment(),
        "DAGSTER_HOME": str(dagster_home),
        "DESTINATION__DUCKDB__CREDENTIALS": str(duckdb_file),
        "DLT_DATA_DIR": str(root / "dlt"),
    }
    out_dir = root / "pictures"
    done = subprocess.run(
        [SVCDESK, "screenshots", "--out", str(out_dir), *SIZE],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Screenshots(out_dir, dagster_home, duckdb_file, env)


def png_size(png: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its first chunk, IHDR)."""
    header = png.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR", f"{png} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_each_page_is_a_small_png_of_its_window(screenshots: Screenshots, page: UiPage) -> None:
    png = screenshots.out_dir / f"{page.name}.png"
    assert png_size(png) == page.window
    assert png.stat().st_size < SMALL_PNG_BYTES


def test_the_readme_shows_every_committed_picture() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    for page in PAGES:
        picture = f"docs/screenshots/{page.name}.png"
        assert png_size(PROJECT_ROOT / picture) == page.window, f"{picture}: run ./dev screenshots"
        assert f"![{page.shows}]({picture})" in readme, picture


def test_the_rendered_pages_show_the_assets_checks_and_row_count(
    screenshots: Screenshots, chromium: HeadlessChromium
) -> None:
    with duckdb.connect(str(screenshots.duckdb_file), read_only=True) as connection:
        (tickets,) = connection.execute("SELECT count(*) FROM service_desk.tickets").fetchone()
    assert 0 < tickets < 240  # the simulator's 240 tickets, less the soft-deleted ones

    with serve_web_ui(screenshots.dagster_home, screenshots.env) as base_url:
        run_id = latest_run_id(base_url, DEMO_JOB)
        text = {
            page.name: render_complete(chromium, page_url(base_url, page, run_id), page)
            for page in PAGES
        }

    for asset in ("tickets", "incidents", "services"):
        assert asset in text["lineage"]
    assert text["lineage"].count("2 / 2 Passed") == 3
    assert "merge_key_unique Succeeded" in text["tickets-checks"]
    assert "schema_contract Succeeded" in text["tickets-checks"]
    assert f"Row count {tickets:,}" in text["tickets"]
    assert f"tickets: read 3 pages, 240 rows ({240 - tickets} deleted upstream)" in text["run-log"]
