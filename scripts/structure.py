"""The project's structure in figures: `./dev python scripts/structure.py`.

For every module of the project's packages: its lines, its longest function, the names it imports
from another package of the project, and how many of those it takes from inside a package it
does not belong to (a subpackage such as `svcdesk_dagster.sources` is entered through its
`__init__`, its door; a name taken from one of its modules goes around the door). Used to compare a change to the
layout with what was there before (`git stash`, or a worktree of an older commit).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("svcdesk_dagster", "svcdesk_simulator", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def longest_function(tree: ast.AST) -> tuple[int, str]:
    best = (0, "")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            best = max(best, (length, node.name))
    return best


def foreign_names(tree: ast.AST, own_package: str, project_packages: set[str]) -> tuple[int, int]:
    """(names imported from another package of the project, of which around its door)."""
    total = around = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if not node.module.split(".")[0] in PACKAGES:
            continue
        source_package = node.module if node.module in project_packages else node.module.rpartition(".")[0]
        if source_package == own_package:
            continue
        count = len(node.names)
        total += count
        inside = source_package in project_packages and source_package.count(".") >= 1
        if inside and node.module != source_package and not own_package.startswith(source_package):
            around += count
    return total, around


def main() -> int:
    files = sorted(
        path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
        if (ROOT / package).is_dir()
    )
    project_packages = {module_name(path) for path in files if path.name == "__init__.py"}
    rows = []
    for path in files:
        text = path.read_text()
        tree = ast.parse(text)
        module = module_name(path)
        own = package_of(module, path.name == "__init__.py")
        length, function = longest_function(tree)
        total, around = foreign_names(tree, own, project_packages)
        rows.append((module, len(text.splitlines()), length, function, total, around))
    print(f"{'module':45} {'lines':>5} {'longest function':>28} {'foreign names':>13} {'around door':>11}")
    for module, lines, length, function, total, around in rows:
        print(f"{module:45} {lines:>5} {f'{function} ({length})':>28} {total:>13} {around:>11}")
    print(f"{'total':45} {sum(r[1] for r in rows):>5} {'':>28} {sum(r[4] for r in rows):>13} {sum(r[5] for r in rows):>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
