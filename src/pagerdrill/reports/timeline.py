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

from pagerdrill.faults import reverted_text
from pagerdrill.journal import JournalRead, read_journal
from pagerdrill.journal.redact import Redactor
from pagerdrill.journal.summary import (
    before_fault,
    fault_injected_seq,
    hypothesis_grade,
    lead_grades,
    summarize,
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


@dataclass(frozen=True)
class Marker:
    t: float
    label: str
    who: str


@dataclass
class Timeline:
    drill: str
    journal: Path
    summary: dict[str, Any]
    entries: list[Entry]
    series: list[Series]
    markers: list[Marker]
    review: dict[str, Any] | None
    reviews: list[dict[str, Any]]
    complete: bool
    problems: list[str]
    started: dict[str, Any] = field(default_factory=dict)

    @property
    def page_t(self) -> float | None:
        return next((e.t for e in self.entries if e.kind == "page"), None)

    @property
    def fault_t(self) -> float | None:
        """When the first fault went in: signals before it are a warm-up, not the incident."""
        return next((e.t for e in self.entries if e.kind == "fault.injected"), None)

    @property
    def duration_s(self) -> float:
        """From the start to the drill's end (or its last event, when it has none)."""
        ends = [e.t for e in self.entries if e.kind in ("drill.closed", "drill.aborted")]
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

_SYSTEM_LINES: dict[str, Formatter] = {
    "fault.injected": lambda g: f"fault {g('fault')} injected ({g('kind')})",
    "fault.reverted": lambda g: reverted_text(g("fault"), g("by"), g("detail")),
    "fault.failed": lambda g: f"fault {g('fault')} failed to inject: {g('error')}",
    "fault.revert_failed": lambda g: f"fault {g('fault')} failed to revert: {g('error')}",
    "alert.firing": lambda g: f"ALERT {g('alert')} firing: {g('summary')}",
    "alert.resolved": lambda g: f"alert {g('alert')} resolved",
    "page": lambda g: f"PAGE ({g('severity')}): {g('summary')}",
    "recovery.verified": lambda g: (
        "recovery verified by the probes: " + " and ".join(g("criteria") or [])
    ),
    "mitigation.reverted": lambda g: f"mitigation {g('mitigation')} put back ({g('by')})",
    "drill.aborted": lambda g: f"drill aborted: {g('reason')}",
    "drill.closed": lambda g: (
        "drill closed"
        + (", recovery verified" if g("recovery_verified") else ", recovery NOT verified")
    ),
    "guard.tripped": lambda g: f"guard tripped: {g('reason')}",
}

_ENGINEER_LINES: dict[str, Formatter] = {
    "ack": lambda g: "acknowledged" + _opt(": ", g("text")),
    "step.done": _step_line,
    "note": lambda g: f"note: {g('text')}",
    "hint": lambda g: f"hint {g('index')} taken: {g('text')}",
    # `grade` and `graded_by` here are the effective grade (the lead's, if given)
    "hypothesis": lambda g: f"hypothesis: {g('text')} ({grade_text(g('grade'), g('graded_by'))})",
    "decision": lambda g: f"decision: {g('prompt')} → {g('text')}",
    "mitigation": lambda g: f"mitigation: {g('title')}",
    "mitigation.failed": lambda g: f"mitigation {g('mitigation')} failed: {g('error')}",
    "resolve": lambda g: "resolved" + _opt(": ", g("text")),
    "clock.paused": lambda g: f"clock paused by {g('by')}",
    "clock.resumed": lambda g: f"clock resumed by {g('by')} after {duration(g('paused_s'))}",
    "evidence": lambda g: f"opened {g('what')}" + _opt(": ", g("about")),
}


_BEFORE_FAULT_LINES: dict[str, Formatter] = {
    "alert.firing": lambda g: (
        f"alert {g('alert')} firing before the fault (not a page): {g('summary')}"
    ),
    "alert.resolved": lambda g: f"alert {g('alert')} resolved (before the fault)",
}


def _text(event: dict, before_fault: bool = False) -> tuple[str, str] | None:
    """(who, text) of an event worth a timeline line, else None. An alert before the
    fault is said to be one: a warm-up, not the incident."""
    t = event.get("type")
    g = event.get
    if before_fault and t in _BEFORE_FAULT_LINES:
        return SYSTEM, _BEFORE_FAULT_LINES[t](g)
    if t == "state":
        to = g("to")
        if to not in ("steady-state", "quiet"):
            return None  # the other phases are told by the events that moved them
        extra = f" for {duration(g('quiet_s'))}" if isinstance(g("quiet_s"), int | float) else ""
        return SYSTEM, f"drill {to}{extra}"
    if t in _SYSTEM_LINES:
        return SYSTEM, _SYSTEM_LINES[t](g)
    if t in _ENGINEER_LINES:
        if t == "step.done" and g("step") == "acknowledge":
            return None  # the ack line says it
        return ENGINEER, _ENGINEER_LINES[t](g)
    if t == "review":
        comment = f": {g('comment')}" if g("comment") else ""
        return REVIEW, f"review by {g('by')}: {str(g('verdict')).upper()}{comment}"
    if t == "hypothesis.graded":
        comment = f": {g('comment')}" if g("comment") else ""
        return REVIEW, f"hypothesis {g('attempt')} graded {g('grade')} by {g('by')}{comment}"
    return None


def _series(events: list[dict], started: dict) -> list[Series]:
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
    for e in events:
        if e.get("type") != "probe.sample" or not isinstance(e.get("values"), dict):
            continue
        for key, bucket in points.items():
            value = (e["values"].get(key[0]) or {}).get(key[1])
            if isinstance(value, int | float) and not isinstance(value, bool):
                bucket.append((float(e.get("t", 0.0)), float(value)))
    return [Series(probe, fld, points[(probe, fld)], **extra) for probe, fld, extra in wanted]


MARKED = {
    "fault.injected": ("fault", SYSTEM),
    "page": ("page", SYSTEM),
    "ack": ("ack", ENGINEER),
    "hypothesis": ("hypothesis", ENGINEER),
    "mitigation": ("mitigation", ENGINEER),
    "recovery.verified": ("recovered", SYSTEM),
    "drill.closed": ("closed", SYSTEM),
    "drill.aborted": ("aborted", SYSTEM),
}


def build(read: JournalRead, redactor: Redactor | None = None) -> Timeline:
    samples = [e for e in read.events if e.get("type") == "probe.sample"]
    events = [e for e in read.events if e.get("type") != "probe.sample"]
    redactor = redactor or Redactor.from_events(events)
    started = read.started or {}
    page = next((e for e in events if e.get("type") == "page"), None)
    page_t = _num(page.get("t")) if page else None
    entries = []
    markers = []
    problems = [f"line {n}: {m}" for n, m in read.problems]
    graded = lead_grades(events)
    fault_seq = fault_injected_seq(events)
    for e in events:
        if e.get("type") == "hypothesis":
            grade, by = hypothesis_grade(e, graded)
            e = {**e, "grade": grade, "graded_by": by}
        try:
            found = _text(e, before_fault(e, fault_seq))
        except (KeyError, TypeError, ValueError, AttributeError):
            # a hand-edited event with missing or odd fields: say so, go on
            problems.append(f"event {e.get('seq', '?')} ({e.get('type')}): unexpected content")
            continue
        t = _num(e.get("t"))
        if found:
            who, text = found
            entries.append(
                Entry(
                    seq=int(e.get("seq", 0)),
                    ts=str(e.get("ts", "")),
                    t=t,
                    page_s=round(t - page_t, 3) if page_t is not None else None,
                    who=who,
                    kind=str(e.get("type")),
                    text=redactor.text(text),
                )
            )
        if e.get("type") in MARKED:
            label, who = MARKED[e["type"]]
            if e["type"] == "hypothesis":
                label += {"right": " ✓", "wrong": " ✗"}.get(e["grade"], " ?")
            markers.append(Marker(t, label, who))
    reviews = [
        {k: redactor.text(str(v)) if isinstance(v, str) else v for k, v in e.items()
         if k in ("ts", "by", "verdict", "comment")}
        for e in events
        if e.get("type") == "review" and isinstance(e.get("by"), str)
        and e.get("verdict") in ("pass", "fail")
    ]  # fmt: skip
    summary = redactor.data(summarize(JournalRead(read.path, events, read.problems)))
    summary["review"] = reviews[-1] if reviews else None
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


def faded_line(summary: dict[str, Any]) -> str | None:
    """What every export says when the symptom went away before any mitigation."""
    at = summary.get("symptom_faded_s")
    if not isinstance(at, int | float) or isinstance(at, bool):
        return None
    return f"the alert resolved by itself at {clock(at)}, before any mitigation"


def before_fault_line(summary: dict[str, Any]) -> str | None:
    """What every export says of alerts that fired before the fault."""
    n = summary.get("alerts_before_fault")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    return f"{n} alert{'s' if n != 1 else ''} fired before the fault (warm-up, not paged)"
