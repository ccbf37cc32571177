"""The drill screen's view of the drill, from the engine's events alone: its state
(`DrillView`) and the event log's line for each event. No widgets here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pagerdrill.drill.engine import Phase
from pagerdrill.journal import events as ev
from pagerdrill.reports.timeline import grade_text
from pagerdrill.timefmt import mmss

PHASES = {p.value: p for p in Phase}


@dataclass
class DrillView:
    """The drill's state as the screen shows it, from the engine's events alone (the
    screen never reads the engine's state: one source of truth). Between events the
    drill clock runs on from the last time an event gave it."""

    clock: Callable[[], float]
    phase: Phase = Phase.SCHEDULED
    paged: bool = False
    steps_done: dict[str, float] = field(default_factory=dict)
    recovered: bool = False
    paused: bool = False
    _drill_s: float | None = None
    _seen_at: float = 0.0

    @property
    def done(self) -> bool:
        return self.phase in (Phase.CLOSED, Phase.ABORTED)

    def drill_s(self) -> float | None:
        """Seconds on the drill clock now (None before the page)."""
        if self._drill_s is None:
            return None
        if self.paused or self.done:
            return self._drill_s
        return self._drill_s + max(0.0, self.clock() - self._seen_at)

    def _at(self, drill_s: float) -> None:
        self._drill_s, self._seen_at = drill_s, self.clock()

    def apply(self, event: ev.Event) -> None:
        match event:
            case ev.State(to=to) if to in PHASES:
                self.phase = PHASES[to]
            case ev.Page():
                self.paged = True
                self._at(0.0)
            case ev.StepDone(step=step, drill_s=at):
                self.steps_done[step] = at or 0.0
            case ev.RecoveryVerified():
                self.recovered = True
            case ev.ClockPaused():
                self.paused = True
            case ev.ClockResumed():
                self.paused = False
        at = getattr(event, "drill_s", None)
        if self.paged and isinstance(at, int | float):
            self._at(float(at))


def recorded(feedback: str, event: ev.Hypothesis) -> str:
    """The trainee sees a hypothesis was recorded; its grade only with `feedback: live`."""
    said = "hypothesis recorded"
    if feedback == "live":
        said += f" ({grade_text(event.grade or None)})"
    return said


def event_line(event: ev.Event, view: DrillView, *, blind: bool, feedback: str) -> str | None:
    """The event log's line for an event, or None for one it does not show."""
    drill_s = getattr(event, "drill_s", None)
    at = f"[{mmss(drill_s)}] " if isinstance(drill_s, int | float) else ""
    match event:
        case ev.DrillStarted():
            # the drill id names the scenario: a blind drill keeps it hidden
            return "drill started (blind)" if blind else (
                f"drill started: {event.drill}"
            )  # fmt: skip
        case ev.State(to="steady-state"):
            return "checking that the stack is steady…"
        case ev.State(to="quiet"):
            return "steady. You are on call: wait for the page."
        case ev.Page():
            return f"PAGE: {event.alert}: {event.summary or ''}"
        case ev.Ack():
            return f"{at}acknowledged"
        case ev.StepDone():
            late = " (over target)" if event.over else ""
            call = event.choice_text or event.choice
            said = f": {call}" if call else ""
            said += f" (why: {event.reason})" if event.reason else ""
            return f"{at}done: {event.title}{said}{late}"
        case ev.Note():
            return f"{at}note: {event.text}"
        case ev.Hypothesis():
            return f"{at}{recorded(feedback, event)}: {event.text}"
        case ev.Decision():
            return f"{at}decision: {event.text}"
        case ev.Hint():
            return f"{at}hint {event.index}: {event.text}"
        case ev.MitigationStarted():
            return f"{at}applying mitigation {event.mitigation}…"
        case ev.Mitigation():
            return f"{at}mitigation applied: {event.title}"
        case ev.MitigationFailed():
            return f"{at}mitigation {event.mitigation} FAILED: {event.error}"
        case ev.AlertFiring() if view.paged or (event.page and view.phase is Phase.INJECTED):
            # before the page only the paging alert's firing, which the page follows
            return f"{at}alert {event.alert} firing"
        case ev.AlertResolved() if view.paged:
            return f"{at}alert {event.alert} resolved"
        case ev.RecoveryVerified():
            return f"{at}recovery verified by the probes: press r to resolve"
        case ev.AbortRequested():
            return f"aborting ({event.reason}): reverting…"
        case ev.DrillAborted():
            return f"drill aborted: {event.reason}"
        case ev.DrillClosed():
            return "drill closed"
        case ev.ClockPaused():
            return f"{at}clock paused by {event.by}"
        case ev.ClockResumed():
            return f"{at}clock resumed by {event.by}"
        case ev.Evidence():
            detail = f": {event.about}" if event.about else ""
            return f"{at}opened {event.what}{detail}"
    return None
