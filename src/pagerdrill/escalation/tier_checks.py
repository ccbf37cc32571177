"""The tiers of an escalation matrix: every severity has its tier, each tier answers
within the severity table's time and escalates level by level to someone reachable,
and the vendor's escalation path is there."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.model import SEVERITIES, SEVERITY_TABLE, Matrix, human_duration
from pagerdrill.escalation.problems import (
    CHANNEL,
    PersonRefs,
    _close,
    _dotted,
    _formats,
    _get,
    _local,
    _Report,
    _url,
)
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.escalation.schedules import ResolvedSchedule


@dataclass
class TierCheck:
    """What checking the tiers of one matrix needs, and what it carries from one tier to
    the next (the previous tier's response, the loops and defaults already reported)."""

    m: LoadedMatrix
    model: Matrix
    roster: LoadedRoster | None
    schedules: dict[str, ResolvedSchedule]
    refs: PersonRefs
    now: datetime
    until: datetime
    r: _Report
    flagged: set
    previous_response: tuple[str, int] | None = None
    loops: set[frozenset[str]] = field(default_factory=set)
    seen_defaults: set[str] = field(default_factory=set)

    def run(self) -> None:
        m, model, r = self.m, self.model, self.r
        tiers = model.tiers
        if tiers is None:
            if ("tiers",) not in self.flagged:
                r.add("missing", m.path, m.line(), "tiers: required (P0, P1, P2 and P3)")
            tiers = {}
        for sev in SEVERITIES:
            if sev not in tiers and model.tiers is not None:
                r.add(
                    "missing",
                    m.path,
                    m.line("tiers"),
                    f"tiers.{sev}: missing (every severity P0-P3 needs its tier; the severity "
                    f"table says {sev}: {SEVERITY_TABLE[sev][1]})",
                )
        for sev in SEVERITIES:
            if tiers.get(sev) is None:
                continue
            self._response(tiers, sev)
            _tier_links(m, model, sev, r, self.flagged, self.seen_defaults)
            self._levels(tiers, sev)
            _escalation_chain(m, tiers, sev, r, self.loops)
        _vendor(m, model, tiers, r, self.flagged)

    def _response(self, tiers: dict, sev: str) -> None:
        m, r, tier = self.m, self.r, tiers[sev]
        loc = ("tiers", sev)
        target, wording = SEVERITY_TABLE[sev]
        if tier.response is None:
            if (*loc, "response") not in self.flagged:
                r.add(
                    "missing",
                    m.path,
                    m.line(*loc),
                    f"tiers.{sev}.response: required (the severity table: {wording})",
                )
            return
        if tier.response > target:
            r.add(
                "response-target",
                m.path,
                m.line(*loc, "response"),
                f"tiers.{sev}.response: {human_duration(tier.response)} contradicts the "
                f"severity table ({sev}: respond within {human_duration(target)})",
            )
        previous = self.previous_response
        if previous and tier.response < previous[1]:
            r.add(
                "response-target",
                m.path,
                m.line(*loc, "response"),
                f"tiers.{sev}.response: {human_duration(tier.response)} is faster than "
                f"{previous[0]}'s {human_duration(previous[1])} (a lower "
                "severity cannot promise a quicker response)",
            )
        self.previous_response = (sev, tier.response)

    def _levels(self, tiers: dict, sev: str) -> None:
        m, loc = self.m, ("tiers", sev)
        levels = tiers[sev].levels
        if not levels:
            if (*loc, "levels") not in self.flagged:
                self.r.add(
                    "missing",
                    m.path,
                    m.line(*loc, "levels") or m.line(*loc),
                    f"tiers.{sev}.levels: required (at least one escalation level)",
                )
            levels = []
        for i, level in enumerate(levels):
            self._level(sev, i, level, last=i == len(levels) - 1)

    def _level(self, sev: str, i: int, level, *, last: bool) -> None:
        m, model, r = self.m, self.model, self.r
        lloc = ("tiers", sev, "levels", i)
        for j, person in enumerate(level.people):
            self.refs.check(person, (*lloc, "people", j))
        if level.schedule and level.schedule not in model.schedules:
            hint = _close(level.schedule, list(model.schedules))
            r.add(
                "unknown-schedule",
                m.path,
                m.line(*lloc, "schedule"),
                f"{_dotted(lloc)}.schedule: '{level.schedule}' is not a schedule of this "
                f"matrix (schedules: {', '.join(model.schedules) or 'none'})"
                + (f" (did you mean '{hint}'?)" if hint else ""),
            )
        if not level.people and not level.schedule:
            if i == 0:
                message = (
                    f"tiers.{sev}.levels[0]: level 1 is empty: a page reaches nobody and "
                    "waits there before anyone at level 2 hears of it (name people or a "
                    "schedule)"
                )
            else:
                message = f"{_dotted(lloc)}: level {i + 1} is empty (name people or a schedule)"
            r.add("empty-level", m.path, m.line(*lloc), message)
        if level.escalate_after is None and not last:
            r.add(
                "missing",
                m.path,
                m.line(*lloc),
                f"{_dotted(lloc)}.escalate_after: required on every level but the last "
                "(when the page goes to the next level)",
            )
        _contacts_of_level(m, self.roster, self.schedules, level, lloc, self.now, self.until, r)


def _tier_links(
    m: LoadedMatrix, model: Matrix, sev: str, r: _Report, flagged: set, seen_defaults: set[str]
) -> None:
    tier = model.tiers[sev]  # type: ignore[index]
    loc = ("tiers", sev)
    for key, fallback in (
        ("incident_channel", model.incident_channel),
        ("video_bridge", model.video_bridge),
    ):
        value = getattr(tier, key) or fallback
        own = getattr(tier, key) is not None
        where = (*loc, key) if own else (key,)
        if where in flagged or (not own and value is not None and key in seen_defaults):
            continue  # a top-level default is judged once, not once per tier
        if not own and value is not None:
            seen_defaults.add(key)
        if value is None:
            r.add(
                "missing",
                m.path,
                m.line(*loc),
                f"tiers.{sev}.{key}: required (here or for every tier at the top level)",
            )
            continue
        if key == "incident_channel" and not CHANNEL.match(value):
            r.add(
                "malformed-chat",
                m.path,
                m.line(*where),
                f"{_dotted(where)}: '{value}' is not a channel (expected #name: lower-case "
                "letters, digits, '-', '_', '.')",
            )
        if key == "video_bridge":
            _url(m.path, m.line(*where), _dotted(where), value, r)
    for where in ((*loc, "channel_webhook"),) + ((("channel_webhook",),) if sev == "P0" else ()):
        value = _get(m.data, where)
        if isinstance(value, str) and where not in flagged:
            _url(m.path, m.line(*where), _dotted(where), value, r)


def _contacts_of_level(m, roster, schedules, level, lloc, now, until, r: _Report) -> None:
    if roster is None:
        return
    who: list[tuple[str, str]] = [(p, "") for p in level.people]
    sched = schedules.get(level.schedule) if level.schedule else None
    if sched is not None:
        seen: set[str] = set()
        for shift in sched.shifts(now, until):
            if shift.person not in seen:
                seen.add(shift.person)
                who.append(
                    (
                        shift.person,
                        f" (on call for {level.schedule} from {_local(shift.start, sched.tz)})",
                    )
                )
    for name, when in who:
        person = roster.person(name)
        if person is not None and not person.contacts.paths():
            r.add(
                "no-contact",
                m.path,
                m.line(*lloc),
                f"{_dotted(lloc)}: {name}{when} has no contact path in the roster "
                f"({roster.path.name}:{roster.line_of(name) or 1}: phone, email or chat)",
            )


def _escalation_chain(
    m: LoadedMatrix, tiers: dict, sev: str, r: _Report, loops: set[frozenset[str]]
) -> None:
    tier = tiers[sev]
    loc = ("tiers", sev, "escalates_to")
    index = SEVERITIES.index(sev)
    expected = SEVERITIES[index - 1] if index > 0 else None
    target = tier.escalates_to
    if target is None:
        if expected is not None:
            r.add(
                "missing",
                m.path,
                m.line("tiers", sev),
                f"tiers.{sev}.escalates_to: required (expected {expected}, the next tier up)",
            )
        return
    # a loop: following escalates_to from here comes back to a tier already passed
    chain, current = [sev], target
    while current is not None:
        if current in chain:
            loop = frozenset(chain[chain.index(current) :])
            if loop in loops:  # one loop, reported once, at its first tier
                return
            loops.add(loop)
            r.add(
                "escalation-loop",
                m.path,
                m.line(*loc),
                f"tiers.{sev}.escalates_to: {target} loops back: "
                + " → ".join([*chain, current])
                + " (escalation must end at P0)",
            )
            return
        chain.append(current)
        nxt = tiers.get(current)
        current = nxt.escalates_to if nxt is not None else None
    if target != expected:
        how = "goes down" if SEVERITIES.index(target) > index else "skips"
        skipped = ", ".join(SEVERITIES[SEVERITIES.index(target) + 1 : index])
        detail = f"past {skipped}" if how == "skips" else f"from {sev}"
        r.add(
            "escalation-skip",
            m.path,
            m.line(*loc),
            f"tiers.{sev}.escalates_to: {target} {how} {detail} "
            + (f"(expected {expected}, the next tier up)" if expected else "(P0 is the top tier)"),
        )


def _vendor(m: LoadedMatrix, model: Matrix, tiers: dict, r: _Report, flagged: set) -> None:
    vendor = model.vendor
    if vendor is None:
        if ("vendor",) not in flagged:
            r.add(
                "missing",
                m.path,
                m.line(),
                "vendor: required (the vendor's escalation path: name, tier, contacts)",
            )
        return
    for key in ("name", "tier", "contacts"):
        if not getattr(vendor, key) and ("vendor", key) not in flagged:
            r.add("missing", m.path, m.line("vendor"), f"vendor.{key}: required")
    for i, contact in enumerate(vendor.contacts or []):
        loc = ("vendor", "contacts", i)
        paths = {k: v for k, v in contact.model_dump().items() if k != "name" and v}
        if not paths and not any((*loc, k) in flagged for k in ("phone", "email", "chat")):
            r.add(
                "no-contact",
                m.path,
                m.line(*loc),
                f"{_dotted(loc)}: no contact path (phone, email or chat)",
            )
        _formats(m.path, lambda *k, loc=loc: m.line(*loc, *k), _dotted(loc), paths, r, flagged, loc)
    for key in ("webhook", "portal"):
        value = getattr(vendor, key)
        if value and ("vendor", key) not in flagged:
            _url(m.path, m.line("vendor", key), f"vendor.{key}", value, r)
    if not any(t.vendor for t in tiers.values()):
        r.add(
            "missing",
            m.path,
            m.line("vendor"),
            "vendor: no tier goes on to it (set vendor: true on the tiers that escalate "
            "to the vendor)",
        )
