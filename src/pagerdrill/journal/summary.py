"""What a drill came to, computed from its journal alone (times against targets,
the hypothesis, recovery). The headless runner prints it; reports build on it.

`summary_of` gives the typed `Summary`; `summarize` the same as the JSON object the
exports and `run --json` print (keys and order as they always were)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from pagerdrill.journal import JournalRead
from pagerdrill.journal import events as ev

GRADES = ("right", "wrong", "ungraded")
E = TypeVar("E", bound=ev.Event)


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    target_s: float
    done_s: float | None
    met: bool
    choice: str | None
    reason: str | None


class StatedHypothesis(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    at_s: float | None
    text: str | None
    choice: str | None
    grade: str
    graded_by: str | None
    note: str | None


class HypothesisResult(msgspec.Struct, frozen=True, kw_only=True):
    first_s: float | None
    first_text: str | None
    correct: bool
    first_correct: bool
    correct_s: float | None
    target_s: float | None
    attempts: int
    first_grade: str | None
    first_graded_by: str | None
    grade: str | None
    to_grade: int
    stated: list[StatedHypothesis]


class DecisionResult(msgspec.Struct, frozen=True, kw_only=True):
    choice: str | None
    correct: bool | None


class FaultResult(msgspec.Struct, frozen=True, kw_only=True):
    """When each step of a fault's life was journalled (UTC), and who reverted it."""

    id: str
    undo: str | UnsetType = UNSET
    kind: str | UnsetType | None = UNSET
    injected: str | UnsetType = UNSET
    failed: str | UnsetType = UNSET
    revert_failed: str | UnsetType = UNSET
    reverted: str | UnsetType = UNSET
    reverted_by: str | UnsetType = UNSET


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    drill: str
    journal: str
    complete: bool
    problems: list[str]
    outcome: str
    abort_reason: str | None
    engineer: str | None
    scenario: str | None
    title: str | None
    severity: str | None
    started: str | None
    ended: str | None
    alert_fired: bool
    alerts_before_fault: int
    symptom_faded_s: float | None
    paged: bool
    paged_at: str | None
    page_alert: str | None
    time_to_ack_s: float | None
    steps: list[StepResult]
    hypothesis: HypothesisResult
    decision: DecisionResult | None
    time_to_mitigate_s: float | None
    recovery_verified: bool
    time_to_recovery_s: float | None
    hints_used: int
    notes: int
    paused_s: float
    faults: list[FaultResult]
    revert_failed: list[str]

    def to_json(self) -> dict[str, Any]:
        """The JSON object the exports and `run --json` print (keys in this order)."""
        return msgspec.to_builtins(self)


def outcome(read: JournalRead) -> str:
    if any(isinstance(e, ev.DrillClosed) for e in read.typed):
        return "closed"
    if any(isinstance(e, ev.DrillAborted) for e in read.typed):
        return "aborted"
    return "crashed"


def _first(events: Sequence[ev.Event], kind: type[E]) -> E | None:
    return next((e for e in events if isinstance(e, kind)), None)


def lead_grades(events: Sequence[ev.Event]) -> dict[int, ev.HypothesisGraded]:
    """The lead's grade of each hypothesis (by the hypothesis event's seq): the latest
    `hypothesis.graded` for it counts."""
    return {
        e.of: e
        for e in events
        if isinstance(e, ev.HypothesisGraded) and e.of is not None and e.grade in ("right", "wrong")
    }


def hypothesis_grade(
    event: ev.Hypothesis, graded: dict[int, ev.HypothesisGraded]
) -> tuple[str, str | None]:
    """(grade, who graded it) of a hypothesis event: the lead's latest grade, else the
    drill's own. A journal from before grades had three outcomes says only `correct`
    (true right, false wrong)."""
    lead = graded.get(event.seq)
    if lead is not None and lead.grade is not None:
        return lead.grade, lead.by
    if event.grade in GRADES:
        return str(event.grade), None
    if isinstance(event.correct, bool):
        return ("right" if event.correct else "wrong"), None
    return "ungraded", None


def fault_injected_seq(events: Sequence[ev.Event]) -> int | None:
    """Where the first fault went in; None when none did."""
    first = _first(events, ev.FaultInjected)
    return first.seq if first is not None else None


def before_fault(event: ev.Event, fault_seq: int | None) -> bool:
    """Whether an event came before any fault was in (a warm-up, not the incident)."""
    return fault_seq is None or event.seq < fault_seq


def symptom_faded(events: Sequence[ev.Event], page: ev.Page | None) -> ev.AlertResolved | None:
    """The paging alert's first `alert.resolved` after the page when no mitigation came
    before it: the symptom went away by itself, whatever the engineer did."""
    if page is None:
        return None
    seen_page = False
    for e in events:
        if e is page:
            seen_page = True
        elif not seen_page:
            continue
        elif isinstance(e, ev.Mitigation):
            return None
        elif isinstance(e, ev.AlertResolved) and e.alert == page.alert:
            return e
    return None


def _stated(hyps: list[ev.Hypothesis], events: Sequence[ev.Event]) -> list[StatedHypothesis]:
    graded = lead_grades(events)
    out = []
    for hyp in hyps:
        grade, by = hypothesis_grade(hyp, graded)
        note = hyp.grade_note if by is None and hyp.grade_note is not UNSET else None
        out.append(
            StatedHypothesis(
                seq=hyp.seq,
                at_s=hyp.drill_s,
                text=hyp.text,
                choice=hyp.choice,
                grade=grade,
                graded_by=by,
                note=note,
            )
        )
    return out


def _hypothesis(events: Sequence[ev.Event], target_s: float | None) -> HypothesisResult:
    hyps = [e for e in events if isinstance(e, ev.Hypothesis)]
    stated = _stated(hyps, events)
    first_right = next(
        (hyp for hyp, x in zip(hyps, stated, strict=True) if x.grade == "right"), None
    )
    grades = {x.grade for x in stated}
    # one right is enough; an ungraded one may still be, until the lead says
    overall = next((g for g in ("right", "ungraded", "wrong") if g in grades), None)
    return HypothesisResult(
        first_s=hyps[0].drill_s if hyps else None,
        first_text=hyps[0].text if hyps else None,
        correct=bool(first_right),
        first_correct=bool(stated and stated[0].grade == "right"),
        correct_s=first_right.drill_s if first_right else None,
        target_s=target_s,
        attempts=len(hyps),
        first_grade=stated[0].grade if stated else None,
        first_graded_by=stated[0].graded_by if stated else None,
        grade=overall,
        to_grade=sum(1 for x in stated if x.grade == "ungraded"),
        stated=stated,
    )


def _steps(events: Sequence[ev.Event], started: ev.DrillStarted) -> list[StepResult]:
    done = {e.step: e for e in events if isinstance(e, ev.StepDone)}
    out = []
    for s in started.checklist.steps:
        if s.id is None or s.title is None or s.target_s is None:
            continue  # a hand-edited step: nothing to time
        e = done.get(s.id)
        at = e.drill_s if e else None
        choice = (e.choice_text or e.choice or None) if e else None
        out.append(
            StepResult(
                id=s.id,
                title=s.title,
                target_s=s.target_s or 0.0,
                done_s=at,
                met=at is not None and at <= (s.target_s or 0.0),
                choice=choice if isinstance(choice, str) else None,
                reason=(e.reason or None) if e else None,
            )
        )
    return out


def _faults(events: Sequence[ev.Event]) -> list[FaultResult]:
    fields: dict[str, dict[str, Any]] = {}
    for e in events:
        if isinstance(e, ev.FAULT_EVENTS) and e.fault:
            f = fields.setdefault(e.fault, {"id": e.fault})
            f[e.TYPE.removeprefix("fault.")] = e.ts
            if isinstance(e, ev.FaultUndo):
                f["kind"] = e.kind
            if isinstance(e, ev.FaultReverted):
                f["reverted_by"] = e.by
    return [FaultResult(**f) for f in fields.values()]


def summary_of(read: JournalRead) -> Summary:
    events = read.typed
    started = read.typed_started or ev.DrillStarted()
    scenario = started.scenario
    page = _first(events, ev.Page)
    ack = _first(events, ev.Ack)
    decision = next((e for e in reversed(events) if isinstance(e, ev.Decision)), None)
    mitigation = _first(events, ev.Mitigation)
    recovery = _first(events, ev.RecoveryVerified)
    aborted = _first(events, ev.DrillAborted)
    end = next((e for e in events if isinstance(e, ev.DrillClosed | ev.DrillAborted)), None)
    paused = sum(e.paused_s for e in events if isinstance(e, ev.ClockResumed))
    fault_seq = fault_injected_seq(events)
    alerts = [e for e in events if isinstance(e, ev.AlertFiring)]
    warmup = [e for e in alerts if before_fault(e, fault_seq)]
    faded = symptom_faded(events, page)
    return Summary(
        drill=read.drill_id,
        journal=str(read.path),
        complete=read.complete,
        problems=[f"line {n}: {m}" for n, m in read.problems],
        outcome=outcome(read),
        abort_reason=aborted.reason if aborted else None,
        engineer=started.engineer,
        scenario=scenario.name,
        title=scenario.title,
        severity=scenario.severity,
        started=started.ts or None,
        ended=end.ts if end else None,
        alert_fired=len(alerts) > len(warmup),
        alerts_before_fault=len(warmup),
        symptom_faded_s=faded.drill_s if faded else None,
        paged=page is not None,
        paged_at=page.ts if page else None,
        page_alert=(page.alert or None) if page else None,
        time_to_ack_s=ack.drill_s if ack else None,
        steps=_steps(events, started),
        hypothesis=_hypothesis(events, started.checklist.hypothesis_target_s),
        decision=DecisionResult(choice=decision.choice, correct=decision.correct)
        if decision
        else None,
        time_to_mitigate_s=mitigation.drill_s if mitigation else None,
        recovery_verified=recovery is not None,
        time_to_recovery_s=recovery.drill_s if recovery else None,
        hints_used=sum(1 for e in events if isinstance(e, ev.Hint)),
        notes=sum(1 for e in events if isinstance(e, ev.Note)),
        paused_s=round(paused, 3),
        faults=_faults(events),
        revert_failed=list(getattr(end, "revert_failed", None) or []) if end else [],
    )


def summarize(read: JournalRead) -> dict[str, Any]:
    """The summary as the JSON object the exports and `run --json` print."""
    return summary_of(read).to_json()


def exit_code(summary: Summary) -> int:
    """0 only when the drill closed with recovery verified by the probes and everything
    it changed was put back."""
    ok = summary.outcome == "closed" and summary.recovery_verified
    return 0 if ok and not summary.revert_failed else 1
