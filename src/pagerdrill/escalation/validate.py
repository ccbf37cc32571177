"""Every problem that would leave a page unanswered, each with its file and line.

`validate(matrix, roster, now, days)` is pure: the files are already loaded and the
time is passed in, so the readiness gate and the tests fix "now". Each problem is a
blocker: a matrix with any of them is not validated end to end. The schedules are
checked in `schedule_checks`, the tiers in `tier_checks`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.problems import (
    SSH_KEY,
    URL,
    Kind,
    PersonRefs,
    Problem,
    _formats,
    _placeholders,
    _Report,
    is_placeholder,
)
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.escalation.schedule_checks import (
    check_coverage,
    check_schedule_people,
    resolve_schedules,
)
from pagerdrill.escalation.schedules import zone
from pagerdrill.escalation.tier_checks import TierCheck

__all__ = [
    "URL",
    "Kind",
    "Problem",
    "_Report",
    "check_workspace",
    "is_placeholder",
    "load_roster_for",
    "resolve_schedules",
    "validate",
]


def validate(
    matrix: LoadedMatrix, roster: LoadedRoster | None, now: datetime, days: int = 14
) -> list[Problem]:
    """Every problem of the matrix (and of the roster it names), at `now`, looking
    `days` ahead for gaps in the schedules."""
    r = _Report([])
    m = matrix
    for line, message in m.errors:
        r.add("invalid", m.path, line, message)
    flagged: set = set()
    if m.data is not None or not m.errors:
        _placeholders(m.data, (), m, r, flagged)
    if m.model is None:
        return r.problems
    model = m.model
    if roster is None:
        r.add(
            "missing",
            m.path,
            m.line("roster"),
            f"roster: {m.roster_path} not found (the people the matrix names, with their contacts)",
        )
    else:
        _check_roster(roster, r)
    schedules = resolve_schedules(m, roster, r)
    until = now + timedelta(days=days)
    refs = PersonRefs(m, roster, r, flagged)
    check_schedule_people(m, model, roster, refs, r)
    check_coverage(m, schedules, now, until, days, r)
    TierCheck(m, model, roster, schedules, refs, now, until, r, flagged).run()
    return r.problems


def _check_roster(roster: LoadedRoster, r: _Report) -> None:
    for i, person in enumerate(roster.model.people):
        loc = ("people", i)
        prefix = f"people[{i}]"
        flagged = set()
        for key, value in person.contacts.model_dump().items():
            if value is not None and is_placeholder(value):
                flagged.add((*loc, "contacts", key))
                r.add(
                    "placeholder",
                    roster.path,
                    roster.lines.line_of((*loc, "contacts", key)),
                    f"{prefix}.contacts.{key}: '{value}' is a placeholder (fill in the real value)",
                )
        if is_placeholder(person.name):
            r.add(
                "placeholder",
                roster.path,
                roster.lines.line_of((*loc, "name")),
                f"{prefix}.name: '{person.name}' is a placeholder (fill in the real value)",
            )
        _formats(
            roster.path,
            lambda *k, loc=loc: roster.lines.line_of((*loc, "contacts", *k)),
            f"{prefix}.contacts",
            person.contacts.paths(),
            r,
            flagged,
            (*loc, "contacts"),
        )
        if person.time_zone:
            try:
                zone(person.time_zone)
            except ValueError as exc:
                r.add(
                    "malformed-time-zone",
                    roster.path,
                    roster.lines.line_of((*loc, "time_zone")),
                    f"{prefix}.time_zone: {exc}",
                )
        if person.ssh_key and not SSH_KEY.match(person.ssh_key.strip()):
            r.add(
                "malformed-ssh-key",
                roster.path,
                roster.lines.line_of((*loc, "ssh_key")),
                f"{prefix}.ssh_key: not an SSH public key (expected 'ssh-ed25519 AAAA... "
                "comment', one line of a .pub file)",
            )


def load_roster_for(matrix: LoadedMatrix) -> tuple[LoadedRoster | None, list[Problem]]:
    """The roster the matrix names, or None and why (a missing file is the matrix's
    problem; a malformed one, the roster's)."""
    from pagerdrill.errors import ConfigError
    from pagerdrill.escalation.roster import load_roster

    path = matrix.roster_path
    if not path.is_file():
        return None, []
    try:
        return load_roster(path), []
    except ConfigError as exc:
        return None, [
            Problem(kind="invalid", file=str(exc.path), line=line, message=message)
            for line, message in exc.problems
        ]


def check_workspace(
    root: Path, now: datetime, days: int = 14, path: Path | None = None
) -> tuple[LoadedMatrix, list[Problem]]:
    """Load the workspace's matrix (or `path`) and its roster, and validate both: what
    the readiness gate calls. Raises BadInputError only when the matrix is not there."""
    from pagerdrill.escalation.load import load_matrix, matrix_path

    matrix = load_matrix(matrix_path(root, path), root)
    roster, problems = load_roster_for(matrix)
    if roster is None and problems:
        # the roster's own errors say why; "roster not found" would be wrong
        found = [
            p for p in validate(matrix, None, now, days) if not p.message.startswith("roster:")
        ]
        return matrix, problems + found
    return matrix, problems + validate(matrix, roster, now, days)
