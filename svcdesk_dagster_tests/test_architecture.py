"""The layout holds: imports run one way, the sources have one door, settings have one home.

The layers, from the top (docs/architecture.md): the definitions, the Dagster concepts (assets,
checks, jobs, schedules, sensors, resources), the sources, and under everything the settings. A
module imports only from its own layer or below; code outside `sources/` goes in through
`svcdesk_dagster.sources` only; nothing but `settings.py` reads the environment or dlt's
configuration; and the code location never imports the simulator.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "svcdesk_dagster"

LAYERS = ("settings", "sources", "concepts", "definitions")
"""Bottom to top."""

OUTSIDE_THE_CODE_LOCATION = {"cli", "demo", "runbook", "row_counts", "screenshots"}
"""Commands and their helpers: they may use any layer (the demo runs the definitions)."""

SETTING_READS = (
    "os.environ.get(", "os.getenv(", "os.environ[", "dlt.config.get(", "dlt.secrets.get(",
    "dlt.config[", "dlt.secrets[",
)
MAY_TOUCH_THE_ENVIRONMENT = {
    "settings.py": "the one home of settings",
    "demo.py": "points the APIs' settings at the simulator for the demo's run, and restores them",
    "runbook.py": "hands its whole environment to dlt's CLI",
}


def layer_of(module: str) -> str | None:
    """`svcdesk_dagster.sources.http` -> `sources`; None for a module outside the layers."""
    parts = module.split(".")
    if parts[0] != "svcdesk_dagster" or len(parts) == 1:
        return None
    name = parts[1]
    if name in ("settings", "sources", "definitions"):
        return name
    if name in OUTSIDE_THE_CODE_LOCATION:
        return None
    return "concepts"


def project_modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(path: Path) -> list[str]:
    """Every project module `path` imports, at any depth of the file (lazy imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.split(".")[0].startswith("svcdesk_")]


MODULES = project_modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module: str) -> None:
    own = layer_of(module)
    for imported in imports_of(MODULES[module]):
        target = layer_of(imported)
        if own is None or target is None:
            continue
        assert LAYERS.index(target) <= LAYERS.index(own), (
            f"{module} ({own}) imports {imported} ({target}), a layer above it"
        )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) != "sources"))
def test_code_outside_the_sources_goes_in_through_their_door(module: str) -> None:
    around = [
        imported for imported in imports_of(MODULES[module])
        if imported.startswith("svcdesk_dagster.sources.")
    ]
    assert around == [], f"{module} imports {around}: import from svcdesk_dagster.sources"


def test_the_sources_and_settings_import_nothing_above_them() -> None:
    for module, path in MODULES.items():
        if layer_of(module) not in ("settings", "sources"):
            continue
        for imported in imports_of(path):
            assert layer_of(imported) in ("settings", "sources"), f"{module} imports {imported}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_settings_are_read_in_one_module(path: Path) -> None:
    if path.name in MAY_TOUCH_THE_ENVIRONMENT:
        return
    text = path.read_text()
    reads = [read for read in SETTING_READS if read in text]
    assert reads == [], f"{path.name} reads {reads}: ask svcdesk_dagster/settings.py instead"


def test_the_code_location_never_imports_the_simulator() -> None:
    loaded = subprocess.run(
        [
            sys.executable, "-c",
            "import sys, svcdesk_dagster.definitions; "
            "print(sorted(m for m in sys.modules if m.startswith('svcdesk_simulator')))",
        ],
        capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.strip() == "[]"
    for module, path in MODULES.items():
        if layer_of(module) is not None:
            assert not any(
                name.startswith("svcdesk_simulator") for name in imports_of(path)
            ), module


def test_the_simulator_imports_nothing_of_the_code_location() -> None:
    simulator = PACKAGE.parent / "svcdesk_simulator"
    for path in simulator.rglob("*.py"):
        assert not any(name.startswith("svcdesk_dagster") for name in imports_of(path)), path
