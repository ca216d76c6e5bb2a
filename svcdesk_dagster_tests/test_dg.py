"""`dg`, the CLI a Dagster user starts with today, works on the project as it is laid out:
`[tool.dg]` in pyproject.toml points it at `svcdesk_dagster.definitions`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DG = str(Path(sys.executable).with_name("dg"))


def dg(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`dg ...` from the project root, in the project's virtualenv, with no API setting."""
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__", "SVCDESK_"))
    }
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    return subprocess.run(
        [DG, *arguments], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_dg_check_defs() -> None:
    checked = dg("check", "defs")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "All definitions loaded successfully." in checked.stdout + checked.stderr


def test_dg_list_defs_names_the_interface() -> None:
    listed = dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    defs = json.loads(listed.stdout)
    assert {asset["asset_key"] for asset in defs["assets"]} == {"tickets", "incidents", "services"}
    assert {check["key"] for check in defs["asset_checks"]} == {
        f"{asset}:{check}"
        for asset in ("tickets", "incidents", "services")
        for check in ("schema_contract", "merge_key_unique")
    }
    assert {job["name"] for job in defs["jobs"]} >= {
        "service_desk_sync", "incident_management_sync", "full_refresh"
    }
    assert {schedule["name"]: schedule["cron_schedule"] for schedule in defs["schedules"]} == {
        "service_desk_schedule": "0 * * * *",
        "incident_management_schedule": "*/15 * * * *",
        "full_refresh_schedule": "0 3 * * 0",
    }
    assert {sensor["name"] for sensor in defs["sensors"]} == {
        "new_incidents_sensor", "sync_failure_sensor"
    }
