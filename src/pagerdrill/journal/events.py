"""Every journal event as a frozen model, and the one decode of a journal line into it.

The journal on disk stays JSON Lines, schema version 1: an event is the envelope
(`v`, `seq`, `ts`, `t`, `type`, `drill`) and then its own fields, in the order each
class declares them, which is the order the journal has always had them. A field
that is `UNSET` is left out of the line, as the writers always left it out; a field
newer than the first journals has a default, so an old journal still decodes.

Every field has a default, as every reader has always taken a field that is not
there (a hand-edited line, a journal older than the field); a field of the wrong kind
is an error. Readers match on the classes (`match event: case FaultInjected(): ...`); the event
type's string lives once, as the class's tag (`FaultInjected.TYPE`).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from pagerdrill.errors import PagerdrillError

SCHEMA_VERSION = 1
ENVELOPE = ("v", "seq", "ts", "t", "type", "drill")

Mapping = dict[str, Any]
"""A free-form part of an event (a fault's undo record, a probe's sample): what goes
in it belongs to the fault, mitigation or probe that wrote it."""


class JournalEventError(PagerdrillError):
    """A journal line that is not an event this pagerdrill knows, or not of its shape."""


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """The envelope every journal event carries. A new event (not yet written) has
    `seq` -1; the journal writer gives it its place."""

    TYPE: ClassVar[str]
    v: int = SCHEMA_VERSION
    seq: int = -1
    ts: str = ""
    t: float = 0.0
    drill: str = ""


# ------------------------------------------------------------ the drill's copy


class ToolInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str = "pagerdrill"
    version: str = ""


class ScenarioCopy(msgspec.Struct, frozen=True, kw_only=True):
    """The scenario as the drill ran it (secrets masked)."""

    name: str | None = None
    title: str | None = None
    severity: str | None = None
    symptom: str | None = None
    file: str | UnsetType = UNSET
    sha256: str | UnsetType = UNSET
    params: Mapping | UnsetType = UNSET
    text: str | UnsetType = UNSET


class StepCopy(msgspec.Struct, frozen=True, kw_only=True):
    """A checklist step as the drill ran it (a hand-edited one may lack a part)."""

    id: str | None = None
    title: str | None = None
    target_s: float | None = None
    url: str | UnsetType | None = UNSET


class ChecklistCopy(msgspec.Struct, frozen=True, kw_only=True):
    hypothesis_target_s: float | None = None
    steps: list[StepCopy] = msgspec.field(default_factory=list)


class Shown(msgspec.Struct, frozen=True, kw_only=True):
    """The order a picker showed its choices in (by id)."""

    shown: list[str] = msgspec.field(default_factory=list)
    feedback: str | UnsetType = UNSET


class DrillStarted(Event, frozen=True, kw_only=True, tag="drill.started"):
    tool: ToolInfo = msgspec.field(default_factory=ToolInfo)
    host: str | None = None
    pid: int | None = None
    engineer: str | None = None
    mode: str | None = None
    blind: bool = False
    workspace: str | None = None
    target: str | None = None
    scenario: ScenarioCopy = msgspec.field(default_factory=ScenarioCopy)
    roles: dict[str, str] = msgspec.field(default_factory=dict)
    checklist: ChecklistCopy = msgspec.field(default_factory=ChecklistCopy)
    alerts: list[Mapping] = msgspec.field(default_factory=list)
    recovery: Mapping = msgspec.field(default_factory=dict)
    hypotheses: Shown | UnsetType = UNSET
    mitigations: Shown | UnsetType = UNSET
    decision: Shown | UnsetType = UNSET


class State(Event, frozen=True, kw_only=True, tag="state"):
    """The drill moved to another phase."""

    from_: str = msgspec.field(name="from", default="")
    to: str = ""
    quiet_s: float | UnsetType = UNSET
    revert_failed: list[str] | UnsetType = UNSET
    reason: str | UnsetType = UNSET


class ProbeSample(Event, frozen=True, kw_only=True, tag="probe.sample"):
    values: dict[str, Mapping] = msgspec.field(default_factory=dict)
    drill_s: float | None = None


# ---------------------------------------------------------------- alerts, page


class _AlertChange(Event, frozen=True, kw_only=True):
    alert: str = ""
    page: bool = True
    severity: str | None = None
    summary: str | None = None
    expr: str | None = None
    drill_s: float | None = None


class AlertFiring(_AlertChange, frozen=True, kw_only=True, tag="alert.firing"):
    pass


class AlertResolved(_AlertChange, frozen=True, kw_only=True, tag="alert.resolved"):
    pass


class Page(Event, frozen=True, kw_only=True, tag="page"):
    alert: str = ""
    severity: str | None = None
    summary: str | None = None
    symptom: str | None = None
    title: str | None = None


class GuardTripped(Event, frozen=True, kw_only=True, tag="guard.tripped"):
    reason: str | None = None


# ---------------------------------------------------------------------- faults


class FaultHeld(Event, frozen=True, kw_only=True, tag="fault.held"):
    """A fault was due while a paging alert fired: it waits for the stack to settle."""

    fault: str = ""
    firing: list[str] = msgspec.field(default_factory=list)


class FaultUndo(Event, frozen=True, kw_only=True, tag="fault.undo"):
    """Written before the fault touches anything: what `recover` needs to put it back."""

    fault: str = ""
    kind: str | None = None
    role: str | None = None
    params: Mapping = msgspec.field(default_factory=dict)
    undo: Mapping = msgspec.field(default_factory=dict)


class FaultFailed(Event, frozen=True, kw_only=True, tag="fault.failed"):
    fault: str = ""
    error: str = ""


class FaultInjected(Event, frozen=True, kw_only=True, tag="fault.injected"):
    fault: str = ""
    kind: str | None = None
    detail: Mapping = msgspec.field(default_factory=dict)
    inject_ms: float | None = None


class FaultProgress(Event, frozen=True, kw_only=True, tag="fault.progress"):
    fault: str = ""
    wave: Mapping | None = None


class FaultError(Event, frozen=True, kw_only=True, tag="fault.error"):
    """A fault in effect hit an error of its own (the drill goes on)."""

    fault: str = ""
    error: str = ""


class FaultRevertFailed(Event, frozen=True, kw_only=True, tag="fault.revert_failed"):
    fault: str = ""
    by: str | None = None
    error: str = ""


class FaultReverted(Event, frozen=True, kw_only=True, tag="fault.reverted"):
    fault: str = ""
    by: str | None = None
    detail: Mapping = msgspec.field(default_factory=dict)


# ------------------------------------------------------- the engineer's actions


class Ack(Event, frozen=True, kw_only=True, tag="ack"):
    by: str | None = None
    drill_s: float | None = None
    text: str | None = None


class StepDone(Event, frozen=True, kw_only=True, tag="step.done"):
    step: str = ""
    title: str = ""
    drill_s: float | None = None
    target_s: float | None = None
    over: bool = False
    evidence: str | UnsetType | None = UNSET
    prompt: str | UnsetType | None = UNSET
    choice: str | UnsetType | None = UNSET
    choice_text: str | UnsetType | None = UNSET
    reason: str | UnsetType = UNSET


class Evidence(Event, frozen=True, kw_only=True, tag="evidence"):
    step: str | None = None
    what: str | None = None
    about: str | None = None
    drill_s: float | None = None


class Note(Event, frozen=True, kw_only=True, tag="note"):
    text: str = ""
    drill_s: float | None = None


class Hypothesis(Event, frozen=True, kw_only=True, tag="hypothesis"):
    choice: str | None = None
    text: str | None = None
    correct: bool | None = None
    """True right, False wrong, None for the lead to grade."""
    grade: str | UnsetType | None = UNSET
    """right, wrong or ungraded (journals from before grades say only `correct`)."""
    grade_note: str | UnsetType | None = UNSET
    position: int | UnsetType | None = UNSET
    """Where the choice was in the list the drill showed (1 is the first)."""
    drill_s: float | None = None
    target_s: float | None = None


class Decision(Event, frozen=True, kw_only=True, tag="decision"):
    prompt: str | None = None
    choice: str | None = None
    text: str | None = None
    correct: bool | None = None
    position: int | UnsetType | None = UNSET
    drill_s: float | None = None


class Hint(Event, frozen=True, kw_only=True, tag="hint"):
    index: int = 0
    text: str = ""
    drill_s: float | None = None


class ClockPaused(Event, frozen=True, kw_only=True, tag="clock.paused"):
    by: str | None = None
    drill_s: float | None = None


class ClockResumed(Event, frozen=True, kw_only=True, tag="clock.resumed"):
    by: str | None = None
    paused_s: float = 0.0
    drill_s: float | None = None


class ScriptRefused(Event, frozen=True, kw_only=True, tag="script.refused"):
    """A scripted action the engine refused (the script goes on)."""

    drill_s: float | None = None
    index: int = 0
    action: str | None = None
    reason: str = ""


# ----------------------------------------------------------------- mitigations


class MitigationStarted(Event, frozen=True, kw_only=True, tag="mitigation.started"):
    mitigation: str = ""
    action: str | None = None
    drill_s: float | None = None


class MitigationFailed(Event, frozen=True, kw_only=True, tag="mitigation.failed"):
    mitigation: str = ""
    error: str = ""
    drill_s: float | None = None


class MitigationUndo(Event, frozen=True, kw_only=True, tag="mitigation.undo"):
    mitigation: str = ""
    undo: Mapping = msgspec.field(default_factory=dict)


class Mitigation(Event, frozen=True, kw_only=True, tag="mitigation"):
    """A mitigation applied."""

    mitigation: str = ""
    title: str | None = None
    action: str | None = None
    detail: Mapping = msgspec.field(default_factory=dict)
    position: int | UnsetType | None = UNSET
    drill_s: float | None = None


class MitigationRevertFailed(Event, frozen=True, kw_only=True, tag="mitigation.revert_failed"):
    mitigation: str = ""
    undo_seq: int | UnsetType = UNSET
    error: str = ""


class MitigationReverted(Event, frozen=True, kw_only=True, tag="mitigation.reverted"):
    mitigation: str = ""
    by: str | None = None
    undo_seq: int | UnsetType | None = UNSET
    detail: Mapping = msgspec.field(default_factory=dict)


# --------------------------------------------------------------------- the end


class RecoveryVerified(Event, frozen=True, kw_only=True, tag="recovery.verified"):
    drill_s: float | None = None
    held_s: float | None = None
    criteria: list[str] = msgspec.field(default_factory=list)
    values: dict[str, Mapping | None] = msgspec.field(default_factory=dict)


class Resolve(Event, frozen=True, kw_only=True, tag="resolve"):
    by: str | None = None
    text: str | None = None
    drill_s: float | None = None
    recovery_verified: bool = False


class AbortRequested(Event, frozen=True, kw_only=True, tag="abort.requested"):
    reason: str = ""


class DrillClosed(Event, frozen=True, kw_only=True, tag="drill.closed"):
    recovery_verified: bool = False
    revert_failed: list[str] = msgspec.field(default_factory=list)
    drill_s: float | None = None


class DrillAborted(Event, frozen=True, kw_only=True, tag="drill.aborted"):
    reason: str | None = None
    revert_failed: list[str] | UnsetType = UNSET
    drill_s: float | UnsetType | None = UNSET
    recovered: bool | UnsetType = UNSET
    """Set by `recover`: the drill crashed and recover put the stack back."""


class RecoverStarted(Event, frozen=True, kw_only=True, tag="recover.started"):
    """`pagerdrill recover` took up a drill that did not close."""

    problems: list[str] = msgspec.field(default_factory=list)
    """The journal's unreadable lines, as recover found them."""


class RecoverFinished(Event, frozen=True, kw_only=True, tag="recover.finished"):
    reverted: list[str] = msgspec.field(default_factory=list)


# ------------------------------------------------------------- the lead's review


class HypothesisGraded(Event, frozen=True, kw_only=True, tag="hypothesis.graded"):
    by: str | None = None
    of: int | None = None
    """The seq of the hypothesis event graded."""
    attempt: int | None = None
    grade: str | None = None
    comment: str | None = None


class Review(Event, frozen=True, kw_only=True, tag="review"):
    by: str | None = None
    verdict: str | None = None
    comment: str | None = None
    statement: str | UnsetType = UNSET
    signature: str | UnsetType = UNSET


AnyEvent = (
    DrillStarted
    | State
    | ProbeSample
    | AlertFiring
    | AlertResolved
    | Page
    | GuardTripped
    | FaultHeld
    | FaultUndo
    | FaultFailed
    | FaultInjected
    | FaultProgress
    | FaultError
    | FaultRevertFailed
    | FaultReverted
    | Ack
    | StepDone
    | Evidence
    | Note
    | Hypothesis
    | Decision
    | Hint
    | ClockPaused
    | ClockResumed
    | ScriptRefused
    | MitigationStarted
    | MitigationFailed
    | MitigationUndo
    | Mitigation
    | MitigationRevertFailed
    | MitigationReverted
    | RecoveryVerified
    | Resolve
    | AbortRequested
    | DrillClosed
    | DrillAborted
    | RecoverStarted
    | RecoverFinished
    | HypothesisGraded
    | Review
)

EVENT_TYPES: dict[str, type[Event]] = {}
for _cls in AnyEvent.__args__:
    _cls.TYPE = str(_cls.__struct_config__.tag)
    EVENT_TYPES[_cls.TYPE] = _cls

TERMINAL = (DrillClosed.TYPE, DrillAborted.TYPE)
FAULT_EVENTS = (FaultUndo, FaultInjected, FaultReverted, FaultFailed, FaultRevertFailed)
"""The events of a fault's life, in the order a fault goes through them."""


def decode_event(source: bytes | str | Mapping, *, line: int | None = None) -> Event:
    """One journal line (or its decoded JSON object) as its event class. An unknown
    type or a field of the wrong kind raises JournalEventError saying which, with the
    line number when given."""
    where = f"line {line}: " if line is not None else ""
    if isinstance(source, bytes | str):
        try:
            source = json.loads(source)
        except ValueError as exc:
            raise JournalEventError(f"{where}not valid JSON ({exc})") from None
    if not isinstance(source, dict):
        raise JournalEventError(f"{where}not a journal event (expected a JSON object)")
    kind = source.get("type")
    if not isinstance(kind, str):
        raise JournalEventError(f"{where}not a journal event (no `type`)")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise JournalEventError(
            f"{where}unknown event type '{kind}' (known: {', '.join(sorted(EVENT_TYPES))})"
        )
    try:
        return msgspec.convert(source, cls)
    except msgspec.ValidationError as exc:
        path = str(exc).rsplit(" - at ", 1)
        at = path[1].strip("`").removeprefix("$.").removeprefix("$") if len(path) == 2 else ""
        what = path[0]
        raise JournalEventError(
            f"{where}{kind} event: " + (f"`{at}`: {what}" if at else what)
        ) from None


def event_fields(event: Event) -> Mapping:
    """The event's own fields (the envelope left out), as the journal line has them:
    in declared order, `UNSET` ones left out."""
    data = msgspec.to_builtins(event, enc_hook=str)
    return {k: v for k, v in data.items() if k not in ENVELOPE}


def event_dict(event: Event) -> Mapping:
    """The event as its journal line's JSON object: the envelope first, then its fields."""
    head = {"v": event.v, "seq": event.seq, "ts": event.ts, "t": event.t, "type": event.TYPE,
            "drill": event.drill}  # fmt: skip
    return head | event_fields(event)
