"""The people the gate knows are the escalation roster's (`readiness/roster.yaml`, one
model in `pagerdrill.escalation.roster`): roles say who may attest, review and sign, and
`ssh_key` whose signature verifies. This adds only what the gate asks of it."""

from __future__ import annotations

from pathlib import Path

from pagerdrill.errors import BadInputError
from pagerdrill.escalation.roster import ROSTER_NAME, LoadedRoster, Person, load_roster

__all__ = ["ROSTER_NAME", "LoadedRoster", "Person", "load_people", "require"]


def load_people(root: Path) -> LoadedRoster:
    """The roster of the workspace at `root`; a missing or malformed roster raises a
    BadInputError/ConfigError naming the file."""
    path = root / ROSTER_NAME
    if not path.is_file():
        raise BadInputError(f"{path}: no roster (the gate needs the team's people and roles)")
    return load_roster(path)


def require(roster: LoadedRoster, name: str, what: str = "person") -> Person:
    """The person named, or a BadInputError naming the roster and a close name."""
    person = roster.person(name)
    if person is None:
        close = roster.suggest(name)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise BadInputError(f"{what} {name!r} is not on the roster {roster.path}{hint}")
    return person
