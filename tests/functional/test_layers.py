"""The package's layers (DESIGN.md, `[tool.importlinter]` in pyproject.toml): imports
point down only. `lint-imports` checks the tree; this test also shows the check bites
on a copy of the package where a low layer imports a high one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_layers_contract_holds():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers KEPT" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    journal = copy / "src" / "pagerdrill" / "journal" / "__init__.py"
    journal.write_text(journal.read_text() + "\nfrom pagerdrill.drill import engine  # noqa\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "layers BROKEN" in result.stdout
    assert "pagerdrill.journal is not allowed to import pagerdrill.drill" in result.stdout
