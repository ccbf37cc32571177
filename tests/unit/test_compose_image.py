"""The reference stack's image builds pagerdrill from source, and hatchling refuses a
wheel whose force-included workspace files are missing: every path pyproject.toml
force-includes must reach the build (a COPY of compose/Dockerfile, let through by
.dockerignore). A file added to the workspace template and forgotten here breaks
the compose tests only on a machine with Docker, so it is checked without one."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def force_included() -> list[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(meta["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"])


def copied() -> list[str]:
    sources = []
    for line in (REPO / "compose" / "Dockerfile").read_text().splitlines():
        words = shlex.split(line.split("#", 1)[0]) if line.startswith("COPY ") else []
        sources += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return sources


def let_through() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def covered(path: str, by: list[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in by)


def test_every_force_included_path_is_copied_into_the_image_build():
    missing = [p for p in force_included() if not covered(p, copied())]
    assert not missing, f"compose/Dockerfile copies none of {missing}"


def test_every_force_included_path_passes_the_dockerignore():
    missing = [p for p in force_included() if not covered(p, let_through())]
    assert not missing, f".dockerignore keeps {missing} out of the build context"


def test_the_checks_can_fail():
    assert not covered("readiness/gate.yaml", ["readiness/README.md"])
    assert covered("readiness/gate.yaml", ["readiness"])
