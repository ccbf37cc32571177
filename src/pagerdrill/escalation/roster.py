"""`readiness/roster.yaml`: the team's people, their roles and how to reach them.

The escalation matrix names responders from it, and the readiness gate reads it for
who may attest and sign (roles) and which keys verify a signature (`ssh_key`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from pagerdrill.errors import ConfigError, did_you_mean
from pagerdrill.workspace.config import Model
from pagerdrill.workspace.yamlfile import LineMap, load_yaml, validate

ROSTER_NAME = "readiness/roster.yaml"
Role = Literal["engineer", "on-call", "lead"]


class Contacts(Model):
    """How to reach a person. At least one must be filled for anyone who can be paged."""

    phone: str | None = None
    """E.164: a `+`, the country code and the number, digits only (+4915112345678)."""

    email: str | None = None
    chat: str | None = None
    """A chat handle (`@ana`)."""

    def paths(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class Person(Model):
    name: str = Field(min_length=1)
    """Unique within the roster; the matrix and the readiness records use it."""

    roles: list[Role] = Field(min_length=1)
    contacts: Contacts = Contacts()
    time_zone: str | None = None
    pagerduty: str | None = None
    """The person's PagerDuty user id (PABC123), to map schedule exports to the roster."""

    ssh_key: str | None = None
    """An SSH public key (`ssh-ed25519 AAAA... comment`) that verifies this person's signatures."""


class Roster(Model):
    version: Literal[1] = 1
    people: list[Person] = Field(default_factory=list)


@dataclass(frozen=True)
class LoadedRoster:
    """A roster with where it came from, so that problems can name its lines."""

    path: Path
    model: Roster
    lines: LineMap = field(default_factory=LineMap, compare=False, repr=False)

    def person(self, name: str) -> Person | None:
        return next((p for p in self.model.people if p.name == name), None)

    def index_of(self, name: str) -> int | None:
        return next((i for i, p in enumerate(self.model.people) if p.name == name), None)

    def by_pagerduty_id(self, user_id: str) -> Person | None:
        return next((p for p in self.model.people if p.pagerduty == user_id), None)

    def names(self) -> list[str]:
        return [p.name for p in self.model.people]

    def suggest(self, name: str) -> str | None:
        return did_you_mean(name, self.names())

    def line_of(self, name: str, *rest: str | int) -> int | None:
        index = self.index_of(name)
        return self.lines.line_of(("people", index, *rest)) if index is not None else None

    def with_role(self, role: str) -> list[Person]:
        return [p for p in self.model.people if role in p.roles]


def load_roster(path: Path) -> LoadedRoster:
    """Parse and check `path` strictly; a ConfigError names every problem with its line."""
    data, lines = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping with version and people")])
    roster = validate(Roster, data, path, lines)
    problems: list[tuple[int | None, str]] = []
    seen: dict[str, int] = {}
    for index, person in enumerate(roster.people):
        line = lines.line_of(("people", index, "name"))
        if person.name in seen:
            problems.append(
                (
                    line,
                    f"people[{index}].name: '{person.name}' is listed twice "
                    f"(also people[{seen[person.name]}])",
                )
            )
        seen.setdefault(person.name, index)
    if problems:
        raise ConfigError(path, problems)
    return LoadedRoster(path=path, model=roster, lines=lines)
