"""Who is paged for each tier at a given time: each level's people and the on-call
person of its schedule, with how to reach them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.model import SEVERITIES
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.escalation.schedules import ResolvedSchedule, Shift


@dataclass(frozen=True)
class Responder:
    name: str
    schedule: str | None = None
    """The schedule that puts this person on call (None: named by the level itself)."""
    shift: Shift | None = None
    contacts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "schedule": self.schedule,
            "from": self.shift.start.isoformat() if self.shift else None,
            "until": self.shift.end.isoformat() if self.shift else None,
            "override": self.shift.override if self.shift else False,
            "contacts": self.contacts,
        }


@dataclass(frozen=True)
class LevelOnCall:
    number: int
    responders: tuple[Responder, ...]
    escalate_after: int | None
    nobody_from: tuple[str, ...] = ()
    """Schedules of this level that resolve to nobody at that time."""

    def to_json(self) -> dict:
        return {
            "level": self.number,
            "escalate_after_s": self.escalate_after,
            "responders": [p.to_json() for p in self.responders],
            "nobody_from": list(self.nobody_from),
        }


@dataclass(frozen=True)
class TierOnCall:
    severity: str
    name: str | None
    response: int | None
    incident_channel: str | None
    video_bridge: str | None
    levels: tuple[LevelOnCall, ...]
    vendor: bool

    def to_json(self) -> dict:
        return {
            "severity": self.severity,
            "name": self.name,
            "response_s": self.response,
            "incident_channel": self.incident_channel,
            "video_bridge": self.video_bridge,
            "vendor": self.vendor,
            "levels": [level.to_json() for level in self.levels],
        }


def who(
    matrix: LoadedMatrix,
    roster: LoadedRoster | None,
    schedules: dict[str, ResolvedSchedule],
    at: datetime,
) -> list[TierOnCall]:
    model = matrix.model
    if model is None or not model.tiers:
        return []

    def contacts(name: str) -> dict[str, str]:
        person = roster.person(name) if roster else None
        return person.contacts.paths() if person else {}

    out = []
    for sev in SEVERITIES:
        tier = model.tiers.get(sev)
        if tier is None:
            continue
        levels = []
        for i, level in enumerate(tier.levels or []):
            responders: list[Responder] = []
            nobody: list[str] = []
            if level.schedule:
                sched = schedules.get(level.schedule)
                shift = sched.at(at) if sched else None
                if shift is None:
                    nobody.append(level.schedule)
                else:
                    responders.append(
                        Responder(shift.person, level.schedule, shift, contacts(shift.person))
                    )
            responders += [Responder(p, None, None, contacts(p)) for p in level.people]
            levels.append(
                LevelOnCall(i + 1, tuple(responders), level.escalate_after, tuple(nobody))
            )
        out.append(
            TierOnCall(
                sev,
                tier.name,
                tier.response,
                tier.incident_channel or model.incident_channel,
                tier.video_bridge or model.video_bridge,
                tuple(levels),
                tier.vendor,
            )
        )
    return out
