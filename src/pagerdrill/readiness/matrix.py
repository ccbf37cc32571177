"""The escalation item's evidence: the matrix validated at this moment. The gate asks
the escalation package for its problems and shows the blocking ones; nothing else of
the matrix is read here."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MatrixCheck:
    path: Path | None
    """The matrix file (pinned by a sign-off), None when there is none."""

    blockers: tuple[str, ...]


def check_matrix(root: Path, now: dt.datetime, days: int = 14) -> MatrixCheck:
    """Every blocking problem of the workspace's escalation matrix at `now`."""
    try:
        load = importlib.import_module("pagerdrill.escalation.load")
        validate = importlib.import_module("pagerdrill.escalation.validate")
        roster_mod = importlib.import_module("pagerdrill.escalation.roster")
    except ImportError:
        return MatrixCheck(None, ("this pagerdrill cannot validate an escalation matrix",))
    from pagerdrill.errors import PagerdrillError

    try:
        path = load.matrix_path(root)
        matrix = load.load_matrix(path, root)
    except PagerdrillError as exc:
        return MatrixCheck(None, (str(exc),))
    roster_path = root / "readiness" / "roster.yaml"
    try:
        roster = roster_mod.load_roster(roster_path) if roster_path.is_file() else None
    except PagerdrillError as exc:
        return MatrixCheck(path, (str(exc),))
    problems = validate.validate(matrix, roster, now, days)
    return MatrixCheck(path, tuple(p.render() for p in problems if p.blocker))
