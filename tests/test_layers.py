"""worker.py's place in the layer rule (pyproject.toml's import-linter contracts cover the packages;
a top-level module is outside what import-linter can check, so this test does it for worker.py)."""

from __future__ import annotations

import ast
from pathlib import Path

WORKER = Path(__file__).resolve().parent.parent / "worker.py"
# The worker runs workflows and activities; it sits below the client library and the CLI.
ALLOWED = {"activities", "workflows", "skills", "providers", "store", "runtime", "contract", "manifest", "schedule",
           "reply", "commitments"}
PROJECT = ALLOWED | {"api", "cli", "client", "drills", "tests", "bench"}


def imported_top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_worker_imports_only_the_layers_below_it() -> None:
    project_imports = imported_top_level_names(WORKER) & PROJECT
    assert project_imports, "worker.py should import the workflows and activities it runs"
    assert project_imports <= ALLOWED, f"worker.py imports {sorted(project_imports - ALLOWED)}"
    assert "click" not in imported_top_level_names(WORKER)
