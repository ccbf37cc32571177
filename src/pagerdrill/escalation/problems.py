"""What an escalation check reports, and the small checks every part of it shares: a
problem with its file and line, placeholders, URL and contact formats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pagerdrill.errors import did_you_mean
from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.timefmt import hours_minutes
from pagerdrill.workspace.config import Model

Kind = Literal[
    "invalid",
    "missing",
    "placeholder",
    "unknown-person",
    "unknown-schedule",
    "malformed-phone",
    "malformed-email",
    "malformed-url",
    "malformed-chat",
    "malformed-time-zone",
    "malformed-ssh-key",
    "schedule-gap",
    "nobody-on-call",
    "no-contact",
    "empty-level",
    "escalation-loop",
    "escalation-skip",
    "response-target",
    "unreachable",
]


class Problem(Model):
    """One thing wrong, where it is, and whether it blocks the on-call go/no-go."""

    kind: Kind
    file: str
    line: int | None
    message: str
    blocker: bool = True

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\bTBD\b|\bTODO\b|\bTBA\b|\bFIXME\b|^\s*\[[^\]]+\]\s*$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
CHAT = re.compile(r"^[@#]?[\w][\w.\-]{0,79}$")
CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/\S*)?$")
SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$"
)

MAX_GAPS = 5


def is_placeholder(value: object) -> bool:
    if value is None:
        return True
    return isinstance(value, str) and (not value.strip() or bool(PLACEHOLDER.search(value)))


@dataclass
class _Report:
    problems: list[Problem]

    def add(self, kind: Kind, path: Path, line: int | None, message: str) -> None:
        self.problems.append(Problem(kind=kind, file=str(path), line=line, message=message))


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _placeholders(data: object, loc: tuple, m: LoadedMatrix, r: _Report, found: set) -> None:
    """Every `{{TBD}}`, TBD, TODO, `[Phone Number]`, empty value of the raw document."""
    if isinstance(data, dict):
        for key, value in data.items():
            _placeholders(value, (*loc, key), m, r, found)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _placeholders(value, (*loc, index), m, r, found)
    elif (data is None or isinstance(data, str)) and is_placeholder(data):
        shown = "empty" if data is None or not str(data).strip() else f"'{data}'"
        found.add(loc)
        r.add(
            "placeholder",
            m.path,
            m.lines.line_of(loc),
            f"{_dotted(loc)}: {shown} is a placeholder (fill in the real value)",
        )


def _flagged(m: LoadedMatrix) -> set:
    found: set = set()
    _placeholders(m.data, (), m, _Report([]), found)
    return found


def _get(data: object, loc: tuple) -> object:
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _url(path: Path, line: int | None, what: str, value: str, r: _Report) -> None:
    if not URL.match(value):
        r.add(
            "malformed-url",
            path,
            line,
            f"{what}: '{value}' is not a URL (expected http:// or https:// and a host)",
        )


def _formats(path, line_of, prefix: str, paths: dict, r: _Report, flagged: set, loc: tuple) -> None:
    for key, value in paths.items():
        if (*loc, key) in flagged or is_placeholder(value):
            continue
        if key == "phone" and not E164.match(value):
            r.add(
                "malformed-phone",
                path,
                line_of(key),
                f"{prefix}.phone: '{value}' is not E.164 (expected + and the country code, "
                "digits only: +4915112345678)",
            )
        elif key == "email" and not EMAIL.match(value):
            r.add(
                "malformed-email",
                path,
                line_of(key),
                f"{prefix}.email: '{value}' is not an email address (expected name@domain.tld)",
            )
        elif key == "chat" and not CHAT.match(value):
            r.add(
                "malformed-chat",
                path,
                line_of(key),
                f"{prefix}.chat: '{value}' is not a chat handle (expected @name, no spaces)",
            )


def _close(name: str, names: list[str]) -> str | None:
    return did_you_mean(name, names)


def _local(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _span(delta: timedelta) -> str:
    return hours_minutes(delta.total_seconds())


class PersonRefs:
    """Each name the matrix gives a person is checked against the roster, once where it
    is written; a name already flagged as a placeholder is not reported again."""

    def __init__(
        self, m: LoadedMatrix, roster: LoadedRoster | None, r: _Report, flagged: set
    ) -> None:
        self.m, self.roster, self.r, self.flagged = m, roster, r, flagged

    def check(self, name: str, loc: tuple) -> None:
        if loc in self.flagged or self.roster is None or self.roster.person(name) is not None:
            return
        hint = self.roster.suggest(name)
        self.r.add(
            "unknown-person",
            self.m.path,
            self.m.line(*loc),
            f"{_dotted(loc)}: '{name}' is not in the roster ({self.roster.path.name})"
            + (f" (did you mean '{hint}'?)" if hint else ""),
        )
