"""The people the gate knows: who may attest, review and sign, and whose SSH key
verifies a signature. The roster file is `readiness/roster.yaml`, which the escalation
matrix reads too; the gate asks it only for names, roles and keys (`People`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pagerdrill.errors import BadInputError

ROSTER_NAME = "readiness/roster.yaml"


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...]
    ssh_key: str | None = None


@dataclass(frozen=True)
class People:
    path: Path
    people: tuple[Person, ...]

    def get(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)

    def names(self) -> list[str]:
        return [p.name for p in self.people]

    def require(self, name: str, what: str = "person") -> Person:
        """The person named, or a BadInputError naming the roster and a close name."""
        person = self.get(name)
        if person is None:
            close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BadInputError(f"{what} {name!r} is not on the roster {self.path}{hint}")
        return person

    def engineers(self) -> list[Person]:
        return [p for p in self.people if "engineer" in p.roles]


def load_people(root: Path) -> People:
    """The roster of the workspace at `root`; a missing or malformed roster raises a
    BadInputError/ConfigError naming the file."""
    path = root / ROSTER_NAME
    if not path.is_file():
        raise BadInputError(f"{path}: no roster (the gate needs the team's people and roles)")
    roster = _load_roster(path)
    return People(path, tuple(Person(p.name, tuple(p.roles), p.ssh_key) for p in roster.people))


# The roster's model, as the escalation matrix defines it (name, roles, contacts, keys).
from pydantic import Field  # noqa: E402

from pagerdrill.errors import ConfigError  # noqa: E402
from pagerdrill.workspace.config import Model  # noqa: E402
from pagerdrill.workspace.yamlfile import load_yaml, validate  # noqa: E402


class _Contacts(Model):
    phone: str | None = None
    email: str | None = None
    chat: str | None = None


class _Person(Model):
    name: str = Field(min_length=1)
    roles: list[Literal["engineer", "on-call", "lead"]] = Field(min_length=1)
    contacts: _Contacts = _Contacts()
    time_zone: str | None = None
    pagerduty: str | None = None
    ssh_key: str | None = None
    """An SSH public key (`ssh-ed25519 AAAA... comment`) that verifies this person's signatures."""


class _Roster(Model):
    version: Literal[1] = 1
    people: list[_Person] = Field(default_factory=list)


def _load_roster(path: Path) -> _Roster:
    data, lines = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping with version and people")])
    roster = validate(_Roster, data, path, lines)
    seen: set[str] = set()
    for index, person in enumerate(roster.people):
        if person.name in seen:
            line = lines.line_of(("people", index, "name"))
            raise ConfigError(
                path, [(line, f"people[{index}].name: {person.name!r} is listed twice")]
            )
        seen.add(person.name)
    return roster
