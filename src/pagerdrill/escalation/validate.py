"""Every problem that would leave a page unanswered, each with its file and line.

`validate(matrix, roster, now, days)` is pure: the files are already loaded and the
time is passed in, so the readiness gate and the tests fix "now". Each problem is a
blocker: a matrix with any of them is not validated end to end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pagerdrill.errors import did_you_mean
from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.model import (
    SEVERITIES,
    SEVERITY_TABLE,
    WEEKDAYS,
    Matrix,
    human_duration,
)
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.escalation.schedules import (
    PDUser,
    ResolvedSchedule,
    Window,
    aware,
    pagerduty_layers,
    rotation_layer,
    window_seconds,
    zone,
)
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


def resolve_schedules(
    m: LoadedMatrix, roster: LoadedRoster | None, r: _Report | None = None
) -> dict[str, ResolvedSchedule]:
    """Each schedule of the matrix ready to resolve; what keeps one from resolving goes
    to `r` (when given) and leaves it out."""
    r = r or _Report([])
    out: dict[str, ResolvedSchedule] = {}
    if m.model is None:
        return out
    for name, spec in m.model.schedules.items():
        loc = ("schedules", name)
        if spec.rotation is not None:
            rot = spec.rotation
            missing = [
                key
                for key in ("participants", "start", "length", "handoff", "time_zone")
                if not getattr(rot, key)
            ]
            for key in missing:
                if (*loc, "rotation", key) not in _flagged(m):
                    r.add(
                        "missing",
                        m.path,
                        m.line(*loc, "rotation"),
                        f"schedules.{name}.rotation.{key}: required (a rotation needs "
                        "participants, start, length, handoff and time_zone)",
                    )
            if missing:
                continue
            assert rot.time_zone and rot.start and rot.handoff and rot.length and rot.participants
            try:
                tz = zone(rot.time_zone)
            except ValueError as exc:
                r.add(
                    "malformed-time-zone",
                    m.path,
                    m.line(*loc, "rotation", "time_zone"),
                    f"schedules.{name}.rotation.time_zone: {exc}",
                )
                continue
            windows = tuple(
                Window(WEEKDAYS.index(day), w.start, window_seconds(w.start, w.end))
                for w in rot.restrictions
                for day in w.days
            )
            layer = rotation_layer(
                rot.participants, rot.start, rot.handoff, rot.length, tz, windows
            )
            from pagerdrill.escalation.schedules import Shift

            overrides = tuple(
                Shift(aware(o.start, tz), aware(o.end, tz), o.person or "", True)
                for o in rot.overrides
            )
            people = frozenset(rot.participants) | {o.person for o in rot.overrides if o.person}
            out[name] = ResolvedSchedule(name, "rotation", tz, (layer,), overrides, people)
            continue
        export = m.exports.get(name)
        if export is None or export.model is None:
            path = export.path if export else m.root / str(spec.pagerduty)
            for line, message in export.errors if export else [(None, "not loaded")]:
                r.add("invalid", path, line, message)
            continue

        def name_of(user: PDUser) -> str:
            known = roster.by_pagerduty_id(user.id) if roster else None
            if known is None and roster and user.summary and roster.person(user.summary):
                known = roster.person(user.summary)
            return known.name if known else f"{user.summary or '?'} ({user.id})"

        try:
            tz, layer_list, override_list = pagerduty_layers(export.model, name_of)
        except ValueError as exc:
            r.add(
                "malformed-time-zone",
                export.path,
                export.lines.line_of(("schedule", "time_zone")),
                f"schedule.time_zone: {exc}",
            )
            continue
        people = frozenset(p for layer in layer_list for p in layer.people) | {
            o.person for o in override_list
        }
        out[name] = ResolvedSchedule(
            name, "pagerduty", tz, tuple(layer_list), tuple(override_list), people
        )
    return out


def _flagged(m: LoadedMatrix) -> set:
    found: set = set()
    _placeholders(m.data, (), m, _Report([]), found)
    return found


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
    paged: set[str] = set()

    def person_ref(name: str, loc: tuple) -> None:
        if loc in flagged:
            return
        if roster is not None and roster.person(name) is None:
            hint = roster.suggest(name)
            r.add(
                "unknown-person",
                m.path,
                m.line(*loc),
                f"{_dotted(loc)}: '{name}' is not in the roster ({roster.path.name})"
                + (f" (did you mean '{hint}'?)" if hint else ""),
            )
        else:
            paged.add(name)

    # schedules: people, pagerduty users, gaps, nobody now
    for name, spec in model.schedules.items():
        loc = ("schedules", name)
        if spec.rotation is not None:
            for i, person in enumerate(spec.rotation.participants or []):
                person_ref(person, (*loc, "rotation", "participants", i))
            for i, o in enumerate(spec.rotation.overrides):
                if o.person:
                    person_ref(o.person, (*loc, "rotation", "overrides", i, "person"))
        elif name in m.exports and m.exports[name].model is not None and roster is not None:
            _check_export_users(m.exports[name], roster, r)
    for name, sched in schedules.items():
        loc = ("schedules", name)
        path, line = _schedule_place(m, name)
        gaps = sched.gaps(now, until)
        for start, end in gaps[:MAX_GAPS]:
            r.add(
                "schedule-gap",
                path,
                line,
                f"schedules.{name}: nobody on call from {_local(start, sched.tz)} to "
                f"{_local(end, sched.tz)} ({_span(end - start)}; every minute of the next "
                f"{days} days needs someone)",
            )
        if len(gaps) > MAX_GAPS:
            r.add(
                "schedule-gap",
                path,
                line,
                f"schedules.{name}: {len(gaps) - MAX_GAPS} more gaps in the next {days} days",
            )
        if sched.at(now) is None:
            r.add(
                "nobody-on-call",
                path,
                line,
                f"schedules.{name}: resolves to nobody at {_local(now, sched.tz)} "
                "(a page now reaches no human)",
            )
        for shift in sched.shifts(now, until):
            if roster is not None and roster.person(shift.person):
                paged.add(shift.person)

    # tiers
    tiers = model.tiers
    if tiers is None:
        if ("tiers",) not in flagged:
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
    previous_response: tuple[str, int] | None = None
    loops: set[frozenset[str]] = set()
    seen_defaults: set[str] = set()
    for sev in SEVERITIES:
        tier = tiers.get(sev)
        if tier is None:
            continue
        loc = ("tiers", sev)
        target, wording = SEVERITY_TABLE[sev]
        if tier.response is None:
            if (*loc, "response") not in flagged:
                r.add(
                    "missing",
                    m.path,
                    m.line(*loc),
                    f"tiers.{sev}.response: required (the severity table: {wording})",
                )
        else:
            if tier.response > target:
                r.add(
                    "response-target",
                    m.path,
                    m.line(*loc, "response"),
                    f"tiers.{sev}.response: {human_duration(tier.response)} contradicts the "
                    f"severity table ({sev}: respond within {human_duration(target)})",
                )
            if previous_response and tier.response < previous_response[1]:
                r.add(
                    "response-target",
                    m.path,
                    m.line(*loc, "response"),
                    f"tiers.{sev}.response: {human_duration(tier.response)} is faster than "
                    f"{previous_response[0]}'s {human_duration(previous_response[1])} (a lower "
                    "severity cannot promise a quicker response)",
                )
            previous_response = (sev, tier.response)
        _tier_links(m, model, sev, r, flagged, seen_defaults)
        levels = tier.levels
        if not levels:
            if (*loc, "levels") not in flagged:
                r.add(
                    "missing",
                    m.path,
                    m.line(*loc, "levels") or m.line(*loc),
                    f"tiers.{sev}.levels: required (at least one escalation level)",
                )
            levels = []
        for i, level in enumerate(levels):
            lloc = (*loc, "levels", i)
            for j, person in enumerate(level.people):
                person_ref(person, (*lloc, "people", j))
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
            if level.escalate_after is None and i < len(levels) - 1:
                r.add(
                    "missing",
                    m.path,
                    m.line(*lloc),
                    f"{_dotted(lloc)}.escalate_after: required on every level but the last "
                    "(when the page goes to the next level)",
                )
            _contacts_of_level(m, roster, schedules, level, lloc, now, until, r)
        _escalation_chain(m, tiers, sev, r, loops)

    _vendor(m, model, tiers, r, flagged)
    return r.problems


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


def _check_export_users(export, roster: LoadedRoster, r: _Report) -> None:
    sched = export.model.schedule
    refs: list[tuple[tuple, PDUser]] = [
        (("schedule", "schedule_layers", i, "users", j, "user", "id"), u.user)
        for i, layer in enumerate(sched.schedule_layers)
        for j, u in enumerate(layer.users)
    ]
    refs += [(("overrides", i, "user", "id"), e.user) for i, e in enumerate(export.model.overrides)]
    reported: set[str] = set()
    for loc, user in refs:
        known = roster.by_pagerduty_id(user.id) or (
            roster.person(user.summary) if user.summary else None
        )
        if known is None and user.id not in reported:
            reported.add(user.id)
            r.add(
                "unknown-person",
                export.path,
                export.lines.line_of(loc),
                f"{_dotted(loc)}: PagerDuty user {user.id} ({user.summary or 'no name'}) is not "
                f"in the roster (give its person pagerduty: {user.id})",
            )


def _schedule_place(m: LoadedMatrix, name: str) -> tuple[Path, int | None]:
    return m.path, m.line("schedules", name)


def _close(name: str, names: list[str]) -> str | None:
    return did_you_mean(name, names)


def _local(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _span(delta: timedelta) -> str:
    return hours_minutes(delta.total_seconds())


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
