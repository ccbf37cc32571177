"""The matrix's models: severity tiers, their escalation levels, channels and bridges,
the schedules they page, and the vendor's escalation path.

Strict about keys and types (unknown keys refused with a did-you-mean); lenient about
presence, so that a half-filled matrix loads and `validate` can report every missing
field with its line instead of stopping at the first.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from pagerdrill.workspace.config import Model

Severity = Literal["P0", "P1", "P2", "P3"]
SEVERITIES: tuple[Severity, ...] = ("P0", "P1", "P2", "P3")

#: The seed's severity table (its deployment plan's alert response procedures): the
#: response target of each tier in seconds, and who it escalates to.
SEVERITY_TABLE: dict[str, tuple[int, str]] = {
    "P0": (15 * 60, "on-call engineer + CTO (immediate, 15 min)"),
    "P1": (3600, "engineering team lead (within 1 h)"),
    "P2": (4 * 3600, "engineering team (within 4 h)"),
    "P3": (24 * 3600, "development team (within 24 h)"),
}

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*$")


def parse_duration(value: Any) -> Any:
    """`15m`, `1 h`, `24 hours`, `7d` as seconds; a bare number is minutes. Anything
    else is passed on for pydantic to refuse."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value * 60)
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match and match.group(2) in _UNITS:
            return int(float(match.group(1)) * _UNITS[match.group(2)])
        raise ValueError(f"{value!r} is not a duration (expected e.g. 15m, 1h, 4h, 24h, 7d)")
    return value


Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]
"""Seconds, written as `15m`, `1h`, `7d` (a bare number is minutes)."""


def human_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        # hours up to a day: the severity table speaks of 24 h
        if seconds >= size and seconds % size == 0 and not (unit == "d" and seconds <= 86400):
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _clock(value: Any) -> Any:
    """`"09:00"` (YAML 1.1 reads an unquoted 09:00 as a number of minutes: refuse that)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write the time in quotes, as "09:00" (unquoted, YAML reads a number)')
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        parts = [int(p) for p in value.strip().split(":")]
        if parts[0] == 24 and all(p == 0 for p in parts[1:]):
            return time(0, 0)
        return time(parts[0], parts[1], parts[2] if len(parts) > 2 else 0)
    return value


Clock = Annotated[time, BeforeValidator(_clock)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _every_day() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Restriction(Model):
    """A window of the week when the rotation is on call (outside it, nobody from it is)."""

    days: list[Weekday] = Field(default_factory=lambda: _every_day(), min_length=1)
    """The days a window starts on."""

    start: Clock = Field(alias="from")
    """Local start of the window (schedule time zone)."""

    end: Clock = Field(alias="to")
    """Local end; earlier than `from` means the window runs past midnight."""


class Override(Model):
    """Someone else on call for a while (a swap, a holiday cover)."""

    person: str | None = None
    start: datetime
    """Local time of the schedule's time zone unless an offset is given."""
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class Rotation(Model):
    """A rotation kept in the workspace: participants take turns in order."""

    participants: list[str] | None = None
    """Roster names, in the order they take the pager."""

    start: date | None = None
    """The date of the first handoff: the first participant's turn starts at the handoff time."""

    length: Duration | None = None
    """One turn (`1d`, `7d`, `12h`). Whole days hand off at the same local time across a
    daylight-saving change; other lengths are counted in elapsed hours."""

    handoff: Clock | None = None
    """Local time of the handoff."""

    time_zone: str | None = None
    """An IANA time zone (Europe/Berlin)."""

    restrictions: list[Restriction] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)


class ScheduleSpec(Model):
    """A schedule: a rotation defined here, or a PagerDuty export read offline."""

    rotation: Rotation | None = None
    pagerduty: str | None = None
    """A file (relative to the workspace) holding PagerDuty's `GET /schedules/{id}` answer."""

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.rotation is None) == (self.pagerduty is None):
            raise ValueError("give either rotation: or pagerduty: (one of them)")
        return self


class Level(Model):
    """One escalation level: who is paged together, and how long before the next level."""

    people: list[str] = Field(default_factory=list)
    """Roster names paged at this level."""

    schedule: str | None = None
    """A schedule whose on-call person is paged at this level."""

    escalate_after: Duration | None = None
    """Unacknowledged this long, the page goes to the next level (the last level may omit it)."""


class Tier(Model):
    """A severity tier: its response target, levels, channel and bridge."""

    name: str | None = None
    description: str | None = None
    response: Duration | None = None
    """The response target (the seed's: P0 15 min, P1 1 h, P2 4 h, P3 24 h)."""

    incident_channel: str | None = None
    """The chat channel incidents of this tier are worked in (default: the matrix's)."""

    channel_webhook: str | None = None
    """An incoming webhook that posts to that channel (probed by `--online`)."""

    video_bridge: str | None = None
    """The bridge URL (default: the matrix's)."""

    levels: list[Level] | None = None
    escalates_to: Severity | None = None
    """The next tier up when this one's levels are exhausted (none for P0)."""

    vendor: bool = False
    """Whether an incident of this tier goes on to the vendor's escalation path."""


class VendorContact(Model):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    chat: str | None = None


class Vendor(Model):
    """The vendor's escalation path (the seed's customer-team Tier 3 path to its vendor)."""

    name: str | None = None
    tier: str | None = None
    """What the vendor calls this path (`Tier 3`)."""

    contacts: list[VendorContact] | None = None
    webhook: str | None = None
    """The vendor's paging webhook (probed by `--online`)."""

    portal: str | None = None
    """Where its tickets are filed."""


class Matrix(Model):
    """`escalation-matrix.yaml`."""

    version: Literal[1] = 1
    team: str | None = None
    roster: str = "readiness/roster.yaml"
    """The roster file, relative to the workspace."""

    incident_channel: str | None = None
    channel_webhook: str | None = None
    video_bridge: str | None = None
    schedules: dict[str, ScheduleSpec] = Field(default_factory=dict)
    tiers: dict[Severity, Tier] | None = None
    vendor: Vendor | None = None
