"""Who is on call when: workspace rotations and PagerDuty schedule exports, resolved
offline into shifts (start, end, person) over any span of time.

Both kinds compile into the same layers, so a rotation and its PagerDuty twin give the
same people at every minute. The rules, as PagerDuty applies them:

- a turn of whole days hands off at the same local time every day, across
  daylight-saving changes (a 09:00 handoff stays at 09:00 in the schedule's time
  zone); a turn of another length is counted in elapsed time;
- a local time the clock skips is read with the offset before the change, a time it
  repeats is its first occurrence (PEP 495's fold=0);
- restrictions limit a layer to windows of the day or week; outside them the layer
  has nobody, and a lower layer (or nobody) shows through;
- later layers win over earlier ones, overrides win over every layer.

Shifts are computed from interval boundaries, never minute by minute, so a gap check
over weeks costs one pass over the handoffs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

DAY = 86400


@dataclass(frozen=True)
class Shift:
    """One person on call from `start` to `end` (UTC), from a layer or an override."""

    start: datetime
    end: datetime
    person: str
    override: bool = False

    def to_json(self) -> dict:
        return {
            "person": self.person,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "override": self.override,
        }


@dataclass(frozen=True)
class Window:
    """A weekly window: starts on `weekday` (0 = Monday) at local `start`, lasts `seconds`."""

    weekday: int
    start: time
    seconds: int


@dataclass(frozen=True)
class Layer:
    tz: ZoneInfo
    people: tuple[str, ...]
    turn_seconds: int
    anchor: datetime
    """The start of the first person's turn: naive local time for whole-day turns, UTC otherwise."""
    start: datetime | None = None
    end: datetime | None = None
    windows: tuple[Window, ...] = ()

    @property
    def wall_clock(self) -> bool:
        return self.turn_seconds % DAY == 0

    def _boundary(self, k: int) -> datetime:
        if self.wall_clock:
            return to_utc(self.anchor + timedelta(days=k * self.turn_seconds // DAY), self.tz)
        return self.anchor + timedelta(seconds=k * self.turn_seconds)

    def _anchor_utc(self) -> datetime:
        return self._boundary(0)

    def turns(self, since: datetime, until: datetime) -> list[Shift]:
        elapsed = (since - self._anchor_utc()).total_seconds()
        k = int(elapsed // self.turn_seconds) - 1  # a DST hour may move a boundary by one
        out = []
        while True:
            start, end = self._boundary(k), self._boundary(k + 1)
            if start >= until:
                break
            if end > since:
                out.append(Shift(start, end, self.people[k % len(self.people)]))
            k += 1
        return out

    def open_windows(self, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        if not self.windows:
            return [(since, until)]
        first = since.astimezone(self.tz).date() - timedelta(days=8)
        last = until.astimezone(self.tz).date() + timedelta(days=1)
        spans = []
        day = first
        while day <= last:
            for w in self.windows:
                if day.weekday() == w.weekday:
                    local = datetime.combine(day, w.start)
                    spans.append(
                        (
                            to_utc(local, self.tz),
                            to_utc(local + timedelta(seconds=w.seconds), self.tz),
                        )
                    )
            day += timedelta(days=1)
        return merge_spans(
            [(max(a, since), min(b, until)) for a, b in spans if b > since and a < until]
        )

    def shifts(self, since: datetime, until: datetime) -> list[Shift]:
        lo = max(since, self.start) if self.start else since
        hi = min(until, self.end) if self.end else until
        if lo >= hi:
            return []
        out = []
        windows = self.open_windows(lo, hi)
        for turn in self.turns(lo, hi):
            for a, b in windows:
                s, e = max(turn.start, a, lo), min(turn.end, b, hi)
                if s < e:
                    out.append(Shift(s, e, turn.person))
        return out


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time in `tz` as a UTC instant (fold=0: see the module's rules)."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def merge_spans(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def overlay(base: list[Shift], top: list[Shift]) -> list[Shift]:
    """`base` with `top` laid over it: where a top shift is, it wins."""
    cuts = merge_spans((s.start, s.end) for s in top)
    out = list(top)
    for shift in base:
        pieces = [(shift.start, shift.end)]
        for a, b in cuts:
            next_pieces = []
            for s, e in pieces:
                if b <= s or a >= e:
                    next_pieces.append((s, e))
                    continue
                if s < a:
                    next_pieces.append((s, a))
                if b < e:
                    next_pieces.append((b, e))
            pieces = next_pieces
        out.extend(Shift(s, e, shift.person, shift.override) for s, e in pieces if s < e)
    return sorted(out, key=lambda x: x.start)


def _joined(shifts: list[Shift]) -> list[Shift]:
    out: list[Shift] = []
    for s in sorted(shifts, key=lambda x: x.start):
        last = out[-1] if out else None
        if last and last.end == s.start and last.person == s.person and last.override == s.override:
            out[-1] = Shift(last.start, s.end, s.person, s.override)
        else:
            out.append(s)
    return out


@dataclass(frozen=True)
class ResolvedSchedule:
    """A schedule ready to answer "who, when": its layers (lowest first) and overrides."""

    name: str
    kind: Literal["rotation", "pagerduty"]
    tz: ZoneInfo
    layers: tuple[Layer, ...]
    overrides: tuple[Shift, ...] = ()
    people: frozenset[str] = field(default_factory=frozenset)
    """Everyone the schedule can put on call (layers and overrides)."""

    def shifts(self, since: datetime, until: datetime) -> list[Shift]:
        result: list[Shift] = []
        for layer in self.layers:
            result = overlay(result, layer.shifts(since, until))
        mine = [
            Shift(max(o.start, since), min(o.end, until), o.person, True)
            for o in self.overrides
            if o.end > since and o.start < until
        ]
        return _joined(overlay(result, mine))

    def at(self, when: datetime) -> Shift | None:
        """The shift holding `when`, whole (its real start and end, not cut at `when`)."""
        for shift in self.shifts(when - timedelta(days=40), when + timedelta(days=40)):
            if shift.start <= when < shift.end:
                return shift
        return None

    def gaps(
        self, since: datetime, until: datetime, min_seconds: int = 60
    ) -> list[tuple[datetime, datetime]]:
        """Spans of at least `min_seconds` with nobody on call (minute resolution)."""
        covered = merge_spans((s.start, s.end) for s in self.shifts(since, until))
        out, cursor = [], since
        for a, b in covered:
            if (a - cursor).total_seconds() >= min_seconds:
                out.append((cursor, a))
            cursor = max(cursor, b)
        if (until - cursor).total_seconds() >= min_seconds:
            out.append((cursor, until))
        return out


def zone(name: str) -> ZoneInfo:
    """An IANA zone, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"'{name}' is not an IANA time zone (e.g. Europe/Berlin)") from None


def aware(value: datetime, tz: ZoneInfo) -> datetime:
    """A datetime as UTC; a naive one is local time in `tz`."""
    if value.tzinfo is None:
        return to_utc(value, tz)
    return value.astimezone(UTC)


def window_seconds(start: time, end: time) -> int:
    seconds = (end.hour * 3600 + end.minute * 60 + end.second) - (
        start.hour * 3600 + start.minute * 60 + start.second
    )
    return seconds % DAY or DAY


# --------------------------------------------------------------- PagerDuty's export


class _PD(BaseModel):
    # An API answer carries many fields pagerdrill does not read (self, html_url,
    # rendered entries ...) and gains new ones over time: those are ignored; the fields
    # read are typed and required.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PDUser(_PD):
    id: str = Field(min_length=1)
    type: str | None = None
    summary: str | None = None


class PDLayerUser(_PD):
    user: PDUser


class PDRestriction(_PD):
    type: Literal["daily_restriction", "weekly_restriction"]
    start_time_of_day: time
    duration_seconds: int = Field(gt=0, le=7 * DAY)
    start_day_of_week: int | None = Field(default=None, ge=1, le=7)


class PDLayer(_PD):
    id: str | None = None
    name: str | None = None
    start: datetime
    end: datetime | None = None
    rotation_virtual_start: datetime
    rotation_turn_length_seconds: int = Field(gt=0, le=366 * DAY)
    users: list[PDLayerUser] = Field(min_length=1)
    restrictions: list[PDRestriction] = []


class PDEntry(_PD):
    start: datetime
    end: datetime
    user: PDUser


class PDSubschedule(_PD):
    rendered_schedule_entries: list[PDEntry] = []


class PDSchedule(_PD):
    id: str | None = None
    name: str | None = None
    time_zone: str
    schedule_layers: list[PDLayer] = Field(min_length=1)
    overrides_subschedule: PDSubschedule | None = None


class PDExport(_PD):
    """`GET /schedules/{id}` as PagerDuty answers it (`{"schedule": {...}}`), optionally
    with the `overrides` list of `GET /schedules/{id}/overrides` beside it."""

    schedule: PDSchedule
    overrides: list[PDEntry] = []


def rotation_layer(
    participants: list[str],
    start: date,
    handoff: time,
    length: int,
    tz: ZoneInfo,
    windows: tuple[Window, ...] = (),
) -> Layer:
    local = datetime.combine(start, handoff)
    anchor = local if length % DAY == 0 else to_utc(local, tz)
    # nobody is on call from a rotation before its first handoff
    return Layer(
        tz=tz,
        people=tuple(participants),
        turn_seconds=length,
        anchor=anchor,
        start=to_utc(local, tz),
        windows=windows,
    )


def pagerduty_layers(export: PDExport, name_of) -> tuple[ZoneInfo, list[Layer], list[Shift]]:
    """The export's layers (lowest first) and overrides; `name_of(user)` maps a
    PagerDuty user to the name shown (the roster's, where the roster knows it)."""
    sched = export.schedule
    tz = zone(sched.time_zone)
    layers = []
    for layer in sched.schedule_layers:
        windows: list[Window] = []
        for r in layer.restrictions:
            if r.type == "daily_restriction":
                windows += [Window(d, r.start_time_of_day, r.duration_seconds) for d in range(7)]
            else:
                windows.append(
                    Window((r.start_day_of_week or 1) - 1, r.start_time_of_day, r.duration_seconds)
                )
        virtual = layer.rotation_virtual_start
        if layer.rotation_turn_length_seconds % DAY == 0:
            anchor = aware(virtual, tz).astimezone(tz).replace(tzinfo=None)
        else:
            anchor = aware(virtual, tz)
        layers.append(
            Layer(
                tz=tz,
                people=tuple(name_of(u.user) for u in layer.users),
                turn_seconds=layer.rotation_turn_length_seconds,
                anchor=anchor,
                start=aware(layer.start, tz),
                end=aware(layer.end, tz) if layer.end else None,
                windows=tuple(windows),
            )
        )
    entries = list(export.overrides)
    if sched.overrides_subschedule:
        entries += sched.overrides_subschedule.rendered_schedule_entries
    overrides = sorted(
        {Shift(aware(e.start, tz), aware(e.end, tz), name_of(e.user), True) for e in entries},
        key=lambda s: s.start,
    )
    return tz, layers, overrides
