"""The schedules of an escalation matrix: each resolved (a rotation, or a PagerDuty
export) so it can say who is on call when, and checked for gaps and for nobody on call."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pagerdrill.escalation.load import LoadedMatrix
from pagerdrill.escalation.model import WEEKDAYS, Matrix, Rotation
from pagerdrill.escalation.problems import (
    MAX_GAPS,
    PersonRefs,
    _dotted,
    _flagged,
    _local,
    _Report,
    _span,
)
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.escalation.schedules import (
    PDUser,
    ResolvedSchedule,
    Shift,
    Window,
    aware,
    pagerduty_layers,
    rotation_layer,
    window_seconds,
    zone,
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
        if spec.rotation is not None:
            resolved = _rotation(m, name, spec.rotation, r)
        else:
            resolved = _pagerduty(m, roster, name, str(spec.pagerduty), r)
        if resolved is not None:
            out[name] = resolved
    return out


def _rotation(m: LoadedMatrix, name: str, rot: Rotation, r: _Report) -> ResolvedSchedule | None:
    loc = ("schedules", name)
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
        return None
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
        return None
    windows = tuple(
        Window(WEEKDAYS.index(day), w.start, window_seconds(w.start, w.end))
        for w in rot.restrictions
        for day in w.days
    )
    layer = rotation_layer(rot.participants, rot.start, rot.handoff, rot.length, tz, windows)
    overrides = tuple(
        Shift(aware(o.start, tz), aware(o.end, tz), o.person or "", True) for o in rot.overrides
    )
    people = frozenset(rot.participants) | {o.person for o in rot.overrides if o.person}
    return ResolvedSchedule(name, "rotation", tz, (layer,), overrides, people)


def _pagerduty(
    m: LoadedMatrix, roster: LoadedRoster | None, name: str, export_file: str, r: _Report
) -> ResolvedSchedule | None:
    export = m.exports.get(name)
    if export is None or export.model is None:
        path = export.path if export else m.root / export_file
        for line, message in export.errors if export else [(None, "not loaded")]:
            r.add("invalid", path, line, message)
        return None

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
        return None
    people = frozenset(p for layer in layer_list for p in layer.people) | {
        o.person for o in override_list
    }
    return ResolvedSchedule(name, "pagerduty", tz, tuple(layer_list), tuple(override_list), people)


def check_schedule_people(
    m: LoadedMatrix, model: Matrix, roster: LoadedRoster | None, refs: PersonRefs, r: _Report
) -> None:
    """Everyone a schedule names is in the roster (a rotation's people, an export's
    PagerDuty users)."""
    for name, spec in model.schedules.items():
        loc = ("schedules", name)
        if spec.rotation is not None:
            for i, person in enumerate(spec.rotation.participants or []):
                refs.check(person, (*loc, "rotation", "participants", i))
            for i, o in enumerate(spec.rotation.overrides):
                if o.person:
                    refs.check(o.person, (*loc, "rotation", "overrides", i, "person"))
        elif name in m.exports and m.exports[name].model is not None and roster is not None:
            _check_export_users(m.exports[name], roster, r)


def check_coverage(
    m: LoadedMatrix,
    schedules: dict[str, ResolvedSchedule],
    now: datetime,
    until: datetime,
    days: int,
    r: _Report,
) -> None:
    """Someone is on call every minute until `until`, and now."""
    for name, sched in schedules.items():
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
