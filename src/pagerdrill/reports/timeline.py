"""A drill's timeline, computed from its journal alone: what happened, when (wall clock
and T+ from the page), the times against targets, the latest review, and the signals
the alert rules watched. Every exporter is a pure function of a `Timeline`.

A journal that is cut short, from an older or newer schema, or hand-edited still
gives a timeline of whatever is valid; `complete` is False and `problems` says why.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from msgspec import UNSET

from pagerdrill.faults import reverted_text
from pagerdrill.journal import JournalRead, read_journal
from pagerdrill.journal import events as ev
from pagerdrill.journal.redact import Redactor
from pagerdrill.journal.summary import (
    Summary,
    before_fault,
    fault_injected_seq,
    hypothesis_grade,
    lead_grades,
    summary_of,
)
from pagerdrill.timefmt import clock, duration

# who an entry belongs to: the engineer's actions, the system's events, the lead's review
ENGINEER, SYSTEM, REVIEW = "engineer", "system", "review"

THRESHOLD = re.compile(
    r"^\s*(?P<probe>[a-z][a-z0-9_]*)(?:\.(?P<field>[a-z_]+))?\s*(?P<op>>=|<=|>|<|==)\s*"
    r"(?P<value>-?\d+(?:\.\d+)?)\s*$"
)


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    seq: int
    ts: str
    t: float
    """Seconds since the drill started."""
    page_s: float | None
    """Seconds from the page (negative before it); None when nothing paged."""
    who: str
    kind: str
    text: str


@dataclass(frozen=True)
class Series:
    """One signal over time, with the threshold of the alert rule that watches it."""

    probe: str
    field: str
    points: list[tuple[float, float]]
    """(seconds since the drill started, value)."""
    threshold: float | None = None
    op: str | None = None
    alert: str | None = None

    @property
    def label(self) -> str:
        return self.probe if self.field == "value" else f"{self.probe}.{self.field}"


class ReviewNote(msgspec.Struct, frozen=True, kw_only=True):
    """A lead's review with a verdict, redacted, as the exports show it."""

    ts: str
    by: str
    verdict: str
    comment: str | None


@dataclass(frozen=True)
class Marker:
    t: float
    label: str
    who: str


@dataclass
class Timeline:
    drill: str
    journal: Path
    summary: Summary
    """Redacted, as every export shows it."""
    entries: list[Entry]
    series: list[Series]
    markers: list[Marker]
    review: ReviewNote | None
    reviews: list[ReviewNote]
    complete: bool
    problems: list[str]
    started: dict[str, Any] = field(default_factory=dict)

    @property
    def page_t(self) -> float | None:
        return next((e.t for e in self.entries if e.kind == ev.Page.TYPE), None)

    @property
    def fault_t(self) -> float | None:
        """When the first fault went in: signals before it are a warm-up, not the incident."""
        return next((e.t for e in self.entries if e.kind == ev.FaultInjected.TYPE), None)

    @property
    def duration_s(self) -> float:
        """From the start to the drill's end (or its last event, when it has none)."""
        ends = [e.t for e in self.entries if e.kind in ev.TERMINAL]
        if ends:
            return ends[0]
        drill = [e.t for e in self.entries if e.who != REVIEW]
        return max(drill, default=0.0)


def _opt(prefix: str, value: Any) -> str:
    return f"{prefix}{value}" if value else ""


GRADE_TEXT = {"right": "right", "wrong": "wrong", "ungraded": "for the lead to grade"}


def grade_text(grade: str | None, by: str | None = None) -> str:
    """How a hypothesis's grade reads: right, wrong, or for the lead to grade; a grade
    the lead gave says who."""
    text = GRADE_TEXT.get(grade or "", "for the lead to grade")
    return f"{text}, graded by {by}" if by else text


def _step_line(g: Callable[[str], Any]) -> str:
    line = f"{g('title')}"
    if g("choice_text") or g("choice"):
        line += f": {g('choice_text') or g('choice')}"
    if g("reason"):
        line += f" (why: {g('reason')})"
    return line + (" (over target)" if g("over") else "")


Formatter = Callable[[Callable[[str], Any]], str]

_SYSTEM_LINES: dict[type[ev.Event], Formatter] = {
    ev.FaultInjected: lambda g: f"fault {g('fault')} injected ({g('kind')})",
    ev.FaultReverted: lambda g: reverted_text(g("fault"), g("by"), g("detail")),
    ev.FaultFailed: lambda g: f"fault {g('fault')} failed to inject: {g('error')}",
    ev.FaultRevertFailed: lambda g: f"fault {g('fault')} failed to revert: {g('error')}",
    ev.AlertFiring: lambda g: f"ALERT {g('alert')} firing: {g('summary')}",
    ev.AlertResolved: lambda g: f"alert {g('alert')} resolved",
    ev.Page: lambda g: f"PAGE ({g('severity')}): {g('summary')}",
    ev.RecoveryVerified: lambda g: (
        "recovery verified by the probes: " + " and ".join(g("criteria") or [])
    ),
    ev.MitigationReverted: lambda g: f"mitigation {g('mitigation')} put back ({g('by')})",
    ev.DrillAborted: lambda g: f"drill aborted: {g('reason')}",
    ev.DrillClosed: lambda g: (
        "drill closed"
        + (", recovery verified" if g("recovery_verified") else ", recovery NOT verified")
    ),
    ev.GuardTripped: lambda g: f"guard tripped: {g('reason')}",
}

_ENGINEER_LINES: dict[type[ev.Event], Formatter] = {
    ev.Ack: lambda g: "acknowledged" + _opt(": ", g("text")),
    ev.StepDone: _step_line,
    ev.Note: lambda g: f"note: {g('text')}",
    ev.Hint: lambda g: f"hint {g('index')} taken: {g('text')}",
    # `grade` and `graded_by` here are the effective grade (the lead's, if given)
    ev.Hypothesis: lambda g: f"hypothesis: {g('text')} ({grade_text(g('grade'), g('graded_by'))})",
    ev.Decision: lambda g: f"decision: {g('prompt')} → {g('text')}",
    ev.Mitigation: lambda g: f"mitigation: {g('title')}",
    ev.MitigationFailed: lambda g: f"mitigation {g('mitigation')} failed: {g('error')}",
    ev.Resolve: lambda g: "resolved" + _opt(": ", g("text")),
    ev.ClockPaused: lambda g: f"clock paused by {g('by')}",
    ev.ClockResumed: lambda g: f"clock resumed by {g('by')} after {duration(g('paused_s'))}",
    ev.Evidence: lambda g: f"opened {g('what')}" + _opt(": ", g("about")),
}


_BEFORE_FAULT_LINES: dict[type[ev.Event], Formatter] = {
    ev.AlertFiring: lambda g: (
        f"alert {g('alert')} firing before the fault (not a page): {g('summary')}"
    ),
    ev.AlertResolved: lambda g: f"alert {g('alert')} resolved (before the fault)",
}


def _getter(event: ev.Event, extra: dict[str, Any]) -> Callable[[str], Any]:
    """A field of the event (None when it has none), or of `extra` first."""

    def g(name: str) -> Any:
        if name in extra:
            return extra[name]
        value = getattr(event, name, None)
        return None if value is UNSET else value

    return g


def _text(
    event: ev.Event, before_fault: bool = False, extra: dict[str, Any] | None = None
) -> tuple[str, str] | None:
    """(who, text) of an event worth a timeline line, else None. An alert before the
    fault is said to be one: a warm-up, not the incident."""
    kind = type(event)
    g = _getter(event, extra or {})
    if before_fault and kind in _BEFORE_FAULT_LINES:
        return SYSTEM, _BEFORE_FAULT_LINES[kind](g)
    match event:
        case ev.State(to=to):
            if to not in ("steady-state", "quiet"):
                return None  # the other phases are told by the events that moved them
            quiet = event.quiet_s
            extra_text = f" for {duration(quiet)}" if isinstance(quiet, int | float) else ""
            return SYSTEM, f"drill {to}{extra_text}"
        case ev.StepDone(step="acknowledge"):
            return None  # the ack line says it
        case ev.Review():
            comment = f": {event.comment}" if event.comment else ""
            return REVIEW, f"review by {event.by}: {str(event.verdict).upper()}{comment}"
        case ev.HypothesisGraded():
            comment = f": {event.comment}" if event.comment else ""
            return REVIEW, (
                f"hypothesis {event.attempt} graded {event.grade} by {event.by}{comment}"
            )
    if kind in _SYSTEM_LINES:
        return SYSTEM, _SYSTEM_LINES[kind](g)
    if kind in _ENGINEER_LINES:
        return ENGINEER, _ENGINEER_LINES[kind](g)
    return None


def _series(samples: list[ev.ProbeSample], started: dict) -> list[Series]:
    """The signals the alert rules and recovery criteria read, in that order."""
    wanted: list[tuple[str, str, dict]] = []
    for rule in started.get("alerts") or []:
        m = THRESHOLD.match(str(rule.get("expr", "")))
        if m:
            key = (m["probe"], m["field"] or "value")
            if all(key != w[:2] for w in wanted):
                wanted.append((*key, {"threshold": float(m["value"]), "op": m["op"],
                                      "alert": rule.get("name")}))  # fmt: skip
    for source in (started.get("recovery") or {}).get("all") or []:
        m = THRESHOLD.match(str(source))
        if m:
            key = (m["probe"], m["field"] or "value")
            if all(key != w[:2] for w in wanted):
                wanted.append((*key, {}))
    points: dict[tuple[str, str], list[tuple[float, float]]] = {w[:2]: [] for w in wanted}
    for e in samples:
        for key, bucket in points.items():
            value = (e.values.get(key[0]) or {}).get(key[1])
            if isinstance(value, int | float) and not isinstance(value, bool):
                bucket.append((float(e.t), float(value)))
    return [Series(probe, fld, points[(probe, fld)], **extra) for probe, fld, extra in wanted]


MARKED: dict[type[ev.Event], tuple[str, str]] = {
    ev.FaultInjected: ("fault", SYSTEM),
    ev.Page: ("page", SYSTEM),
    ev.Ack: ("ack", ENGINEER),
    ev.Hypothesis: ("hypothesis", ENGINEER),
    ev.Mitigation: ("mitigation", ENGINEER),
    ev.RecoveryVerified: ("recovered", SYSTEM),
    ev.DrillClosed: ("closed", SYSTEM),
    ev.DrillAborted: ("aborted", SYSTEM),
}


def _reviews(events: list[ev.Event], redactor: Redactor) -> list[ReviewNote]:
    """The lead's reviews with a verdict, oldest first."""
    return [
        ReviewNote(
            ts=e.ts,
            by=redactor.text(e.by),
            verdict=str(e.verdict),
            comment=redactor.text(e.comment) if isinstance(e.comment, str) else e.comment,
        )
        for e in events
        if isinstance(e, ev.Review) and isinstance(e.by, str) and e.verdict in ("pass", "fail")
    ]


def build(read: JournalRead, redactor: Redactor | None = None) -> Timeline:
    samples = [e for e in read.typed if isinstance(e, ev.ProbeSample)]
    events = [e for e in read.typed if not isinstance(e, ev.ProbeSample)]
    raw = [e for e in read.events if e.get("type") != ev.ProbeSample.TYPE]
    redactor = redactor or Redactor.from_events(raw)
    started = read.started or {}
    page = next((e for e in events if isinstance(e, ev.Page)), None)
    page_t = page.t if page else None
    entries = []
    markers = []
    problems = [f"line {n}: {m}" for n, m in read.problems]
    graded = lead_grades(events)
    fault_seq = fault_injected_seq(events)
    for e in events:
        extra: dict[str, Any] = {}
        if isinstance(e, ev.Hypothesis):
            grade, by = hypothesis_grade(e, graded)
            extra = {"grade": grade, "graded_by": by}
        try:
            found = _text(e, before_fault(e, fault_seq), extra)
        except (KeyError, TypeError, ValueError, AttributeError):
            # an event with missing or odd fields: say so, go on
            problems.append(f"event {e.seq} ({e.TYPE}): unexpected content")
            continue
        if found:
            who, text = found
            entries.append(
                Entry(
                    seq=e.seq,
                    ts=e.ts,
                    t=e.t,
                    page_s=round(e.t - page_t, 3) if page_t is not None else None,
                    who=who,
                    kind=e.TYPE,
                    text=redactor.text(text),
                )
            )
        if type(e) in MARKED:
            label, who = MARKED[type(e)]
            if isinstance(e, ev.Hypothesis):
                label += {"right": " ✓", "wrong": " ✗"}.get(extra["grade"], " ?")
            markers.append(Marker(e.t, label, who))
    reviews = _reviews(events, redactor)
    summary = redactor.model(summary_of(JournalRead(read.path, raw, read.problems, _typed=events)))
    return Timeline(
        drill=read.drill_id,
        journal=read.path,
        summary=summary,
        entries=entries,
        series=_series(samples, started),
        markers=markers,
        review=reviews[-1] if reviews else None,
        reviews=reviews,
        complete=read.complete and len(problems) == len(read.problems),
        problems=problems,
        started=started,
    )


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def load(path: Path, redactor: Redactor | None = None, samples: bool | int = True) -> Timeline:
    """The timeline of `path`; `samples` as in `read_journal` (the signals need them,
    a text export does not)."""
    return build(read_journal(path, samples=samples), redactor)


def load_redacted(path: Path, workspace_config: Any = None, samples: bool | int = True) -> Timeline:
    """The timeline of `path` with the drill's and the workspace's secrets masked: what
    every export shows."""
    read = read_journal(path, samples=samples)
    return build(read, Redactor.from_events(read.events, workspace_config))


def wall(ts: str) -> str:
    """HH:MM:SS (UTC) of an ISO timestamp, or the text itself when it is not one."""
    try:
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).strftime("%H:%M:%S")
    except ValueError:
        return ts


def peak_points(series: Series, fault_t: float | None) -> list[tuple[float, float]]:
    """The points a peak is taken from: from the fault on. Before it the stack was
    warming up, and no peak of the incident comes from there (no fault: none)."""
    if fault_t is None:
        return []
    return [p for p in series.points if p[0] >= fault_t]


def signal_summary(
    series: Series, page_t: float | None, fault_t: float | None = None
) -> dict[str, Any]:
    """First, peak and last value, and when the alert threshold was first crossed; the
    peak and the crossing from the fault on (see `peak_points`)."""
    values = [v for _, v in series.points]
    if not values:
        return {"first": "-", "peak": "-", "last": "-", "crossed": None}
    after = peak_points(series, fault_t)
    peak_text = "-"
    if after:
        peak = (
            max(v for _, v in after) if series.op in (">", ">=", None) else min(v for _, v in after)
        )
        peak_text = f"{peak:.4g}"
    crossed = None
    if series.threshold is not None and series.op:
        ops = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
               "==": float.__eq__}  # fmt: skip
        for t, v in after:
            if ops[series.op](v, series.threshold):
                crossed = clock(t - page_t) if page_t is not None else duration(t)
                break
    return {"first": f"{values[0]:.4g}", "peak": peak_text, "last": f"{values[-1]:.4g}",
            "crossed": crossed}  # fmt: skip


def faded_line(summary: Summary) -> str | None:
    """What every export says when the symptom went away before any mitigation."""
    at = summary.symptom_faded_s
    if at is None:
        return None
    return f"the alert resolved by itself at {clock(at)}, before any mitigation"


def before_fault_line(summary: Summary) -> str | None:
    """What every export says of alerts that fired before the fault."""
    n = summary.alerts_before_fault
    if n <= 0:
        return None
    return f"{n} alert{'s' if n != 1 else ''} fired before the fault (warm-up, not paged)"
