"""The tree's import rules, read from the source: app -> http -> use cases -> ports <-
adapters, with the domain below all of them, and bootstrap.py the one module that names
adapters (local mode's own workers read the local adapters they emulate event sources on)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"
USE_CASES = {
    "submission",
    "uploads",
    "intake",
    "labelling",
    "records",
    "use_cases",
    "api_keys",
    "quotas",
}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "chalicelib" or len(parts) == 1:
        return "outside"
    if parts[1] in USE_CASES:
        return "use_cases"
    return parts[1]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("chalicelib")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))
# Which layers each layer may import (besides itself and config, logs).
ALLOWED = {
    "domain": {"domain"},
    "ports": {"domain"},
    "events": {"domain"},
    "use_cases": {"domain", "ports"},
    "adapters": {"domain", "ports", "events"},
    "http": {"domain", "use_cases"},
    "local": {"domain", "ports", "events", "use_cases", "http", "bootstrap", "adapters"},
    "bootstrap": {"domain", "ports", "events", "use_cases", "adapters", "local"},
}
COMMON = {"config", "logs", "outside"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    own = layer(module_name(path))
    if own in COMMON:
        return
    allowed = ALLOWED[own] | COMMON | {own}
    wrong = sorted(name for name in imports_of(path) if layer(name) not in allowed)
    assert not wrong, f"{own} may not import {wrong}"


def test_only_bootstrap_and_local_mode_name_adapters() -> None:
    naming = {
        module_name(path)
        for path in [*MODULES, ROOT / "app.py"]
        if any(layer(name) == "adapters" for name in imports_of(path))
        and layer(module_name(path)) != "adapters"
    }
    assert naming <= {"chalicelib.bootstrap", "chalicelib.local.stream", "chalicelib.local.queue"}
