"""The escalation item's evidence and the team view's schedule: the workspace's matrix
checked by the escalation package at this moment (its problems are the item's
blockers), and who its schedules put on call in the days ahead."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pagerdrill.errors import PagerdrillError
from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.validate import check_workspace, load_roster_for, resolve_schedules


@dataclass(frozen=True)
class MatrixCheck:
    path: Path | None
    """The matrix file (pinned by a sign-off), None when there is none."""

    blockers: tuple[str, ...]
    matrix: LoadedMatrix | None = None


@dataclass(frozen=True)
class OnCallTurn:
    """One person's first turn on a schedule within the look-ahead."""

    person: str
    schedule: str
    start: dt.datetime
    end: dt.datetime


def check_matrix(root: Path, now: dt.datetime, days: int = 14) -> MatrixCheck:
    """Every blocking problem of the workspace's escalation matrix at `now`."""
    try:
        matrix, problems = check_workspace(root, now, days)
    except PagerdrillError as exc:
        return MatrixCheck(None, (str(exc),))
    return MatrixCheck(matrix.path, tuple(p.render() for p in problems if p.blocker), matrix)


def on_call_ahead(check: MatrixCheck, now: dt.datetime, days: int) -> list[OnCallTurn]:
    """Everyone the matrix's schedules put on call between `now` and `days` ahead, each
    person once per schedule at their first turn, soonest first. A schedule that does
    not resolve is left out here; it is already one of the matrix's blockers."""
    if check.matrix is None or check.matrix.model is None:
        return []
    roster, _problems = load_roster_for(check.matrix)
    until = now + dt.timedelta(days=days)
    turns: dict[tuple[str, str], OnCallTurn] = {}
    for name, schedule in resolve_schedules(check.matrix, roster).items():
        for shift in schedule.shifts(now, until):
            key = (shift.person, name)
            if shift.person and key not in turns:
                turns[key] = OnCallTurn(shift.person, name, shift.start, shift.end)
    return sorted(turns.values(), key=lambda t: (t.start, t.person, t.schedule))
