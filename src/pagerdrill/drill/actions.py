"""What the engineer (or a coach) does in a drill: acknowledge, tick steps, show
evidence, note, state a hypothesis, decide, take hints, mitigate, pause, resolve.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pagerdrill.drill.core import Phase
from pagerdrill.drill.faultruns import FaultRuns
from pagerdrill.drill.mitigations import ActionRefused, MitigationContext, mitigation_class
from pagerdrill.errors import BadInputError
from pagerdrill.journal import events as ev
from pagerdrill.journal.events import Event
from pagerdrill.scenarios.model import grade_hypothesis

ACTIONS = (
    "ack", "step", "note", "hypothesis", "decision", "mitigate", "hint", "resolve",
    "pause", "resume", "abort", "evidence",
)  # fmt: skip
EVIDENCE = ("logs", "error-spans", "runbook-search", "runbook-open", "url", "signals")
"""What an engineer can be seen looking at; each is evidence of a checklist step."""


class ActionDetail(BaseModel):
    """What an engineer's action says besides its kind: the one list of those fields,
    for the engine's `Action` and a script's entries (`runner.ScriptAction`) alike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str | None = None
    text: str | None = None
    choice: str | None = None
    mitigation: str | None = None
    source: str | None = None
    by: str | None = None
    what: str | None = None
    """For `evidence`: one of EVIDENCE (`text` says what exactly: a query, a file, a URL)."""
    reason: str | None = None
    """For a `step` whose checklist entry asks (a prompt, choices): the engineer's why."""


class Action(ActionDetail):
    """One thing the engineer does: `Action("step", step="dashboards")`."""

    kind: str

    def __init__(self, kind: str, /, **detail: Any) -> None:
        BaseModel.__init__(self, kind=kind, **detail)

    def model_post_init(self, context: Any, /) -> None:
        if self.kind not in ACTIONS:
            raise BadInputError(f"unknown action '{self.kind}' (known: {', '.join(ACTIONS)})")
        if self.kind == "evidence" and self.what not in EVIDENCE:
            raise BadInputError(f"unknown evidence '{self.what}' (known: {', '.join(EVIDENCE)})")


class TraineeActions(FaultRuns):
    def act(self, action: Action) -> Event | None:
        """Apply an engineer's (or coach's) action; returns the event it recorded (None
        for one that ends the drill)."""
        with self._lock:
            if self.done:
                raise ActionRefused(f"the drill is {self.phase.value}")
            now = self.clock()
            if action.kind == "abort":
                self.abort(action.text or f"aborted by {action.by or self.engineer}")
                return None
            if action.kind in ("pause", "resume"):
                return self._pause(action, now)
            if self.page_mono is None:
                raise ActionRefused("nothing has paged yet")
            handler = getattr(self, f"_act_{action.kind}")
            return handler(action, now)

    def _pause(self, action: Action, now: float) -> Event:
        by = action.by or "coach"
        if action.kind == "pause":
            if self.paused:
                raise ActionRefused("the drill clock is already paused")
            self._paused_since = now
            return self._emit(ev.ClockPaused(by=by, drill_s=self.drill_s(now)))
        if not self.paused:
            raise ActionRefused("the drill clock is not paused")
        assert self._paused_since is not None
        paused = now - self._paused_since
        if self.page_mono is not None and self._paused_since >= self.page_mono:
            self._paused_total += paused
        elif self.page_mono is not None:  # paused before the page: count from the page
            self._paused_total += max(0.0, now - self.page_mono)
        self._paused_since = None
        return self._emit(
            ev.ClockResumed(by=by, paused_s=round(paused, 3), drill_s=self.drill_s(now))
        )

    def _step_event(self, step_id: str, now: float, **extra: Any) -> Event:
        step = self.checklist.step(step_id)
        if step is None:
            known = ", ".join(s.id for s in self.checklist.steps)
            raise BadInputError(f"no checklist step '{step_id}' (steps: {known})")
        if step_id in self.steps_done:
            raise ActionRefused(f"step '{step_id}' is already done")
        at = self.drill_s(now) or 0.0
        self.steps_done[step_id] = at
        target = step.target_for(self.model.severity)
        return self._emit(
            ev.StepDone(
                step=step_id,
                title=step.title,
                drill_s=at,
                target_s=target,
                over=at > target,
                **extra,
            )
        )

    def _act_ack(self, action: Action, now: float) -> Event:
        if self.acknowledged:
            raise ActionRefused("already acknowledged")
        self.acknowledged = True
        event = self._emit(ev.Ack(by=self.engineer, drill_s=self.drill_s(now), text=action.text))
        if self.checklist.step("acknowledge") is not None and "acknowledge" not in self.steps_done:
            self._step_event("acknowledge", now)
        self._set_phase(Phase.ACKNOWLEDGED)
        return event

    def _act_step(self, action: Action, now: float) -> Event:
        if not action.step:
            raise BadInputError("which step? (step: ID)")
        if action.step == "acknowledge" and not self.acknowledged:
            return self._act_ack(action, now)
        seen = self.evidence.get(action.step) or []
        step = self.checklist.step(action.step)
        if step is None or not step.asks:
            return self._step_event(
                action.step, now, evidence=action.text or "; ".join(seen) or None
            )
        # a "say why" step: the call and the reason are what the step is for
        reason = (action.reason or "").strip()
        choices = {c.id: c for c in step.choices}
        if choices and action.choice not in choices:
            raise BadInputError(
                f"step '{step.id}': {step.prompt or step.title} Which call? "
                f"(choice: {' or '.join(choices)}, and a reason)"
            )
        if not reason:
            raise BadInputError(f"step '{step.id}': {step.prompt or step.title} Say why (a reason)")
        return self._step_event(
            action.step,
            now,
            evidence="; ".join(seen) or None,
            prompt=step.prompt,
            choice=action.choice if choices else None,
            choice_text=choices[action.choice].text if choices and action.choice else None,
            reason=reason,
        )

    def _act_evidence(self, action: Action, now: float) -> Event:
        """The engineer opened the logs, searched the runbooks, opened a step's URL ...:
        journalled against the step it evidences, and that step is done then (looking is
        what the step asks), timed against its target with the evidence on it."""
        if action.step is not None and self.checklist.step(action.step) is None:
            known = ", ".join(s.id for s in self.checklist.steps)
            raise BadInputError(f"no checklist step '{action.step}' (steps: {known})")
        detail = (action.text or "").strip()
        if action.step is not None:
            self.evidence.setdefault(action.step, []).append(
                f"{action.what}: {detail}" if detail else str(action.what)
            )
        event = self._emit(ev.Evidence(step=action.step, what=action.what, about=detail or None,
            drill_s=self.drill_s(now),
        ))  # fmt: skip
        step = action.step
        if step is not None and step not in self.steps_done and step != "acknowledge":
            self._step_event(step, now, evidence="; ".join(self.evidence[step]))
        return event

    def _act_note(self, action: Action, now: float) -> Event:
        if not action.text or not action.text.strip():
            raise BadInputError("a note needs text")
        return self._emit(ev.Note(text=action.text.strip(), drill_s=self.drill_s(now)))

    def _act_hypothesis(self, action: Action, now: float) -> Event:
        if not (action.choice or (action.text and action.text.strip())):
            raise BadInputError("a hypothesis needs a choice or text")
        choices = {c.id: c for c in self.model.hypotheses.choices}
        if action.choice and action.choice not in choices:
            raise BadInputError(
                f"no hypothesis choice '{action.choice}' (choices: {', '.join(choices)})"
            )
        grade = grade_hypothesis(self.model, action.choice, action.text)
        text = choices[action.choice].text if action.choice else (action.text or "").strip()
        shown = [c.id for c in self.hypothesis_choices]
        event = self._emit(
            ev.Hypothesis(
                choice=action.choice,
                text=text,
                # `correct` keeps its meaning (true right, false wrong); null: for the lead
                correct=grade.correct,
                grade=grade.grade,
                grade_note=grade.note,
                position=shown.index(action.choice) + 1 if action.choice else None,
                drill_s=self.drill_s(now),
                target_s=self.checklist.hypothesis_target_s,
            )
        )
        self._set_phase(Phase.HYPOTHESIS)
        return event

    def _act_decision(self, action: Action, now: float) -> Event:
        d = self.model.decision
        if d is None:
            raise ActionRefused("this scenario has no decision to make")
        choices = {c.id: c for c in d.choices}
        if action.choice not in choices:
            raise BadInputError(
                f"no decision choice '{action.choice}' (choices: {', '.join(choices)})"
            )
        shown = [c.id for c in self.decision_choices]
        return self._emit(
            ev.Decision(
                prompt=d.prompt,
                choice=action.choice,
                text=choices[action.choice].text,
                correct=choices[action.choice].correct,
                position=shown.index(action.choice) + 1,
                drill_s=self.drill_s(now),
            )
        )

    def _act_hint(self, action: Action, now: float) -> Event:
        hints = self.model.hints
        if self.hints_used >= len(hints):
            raise ActionRefused("no more hints")
        text = hints[self.hints_used].text
        self.hints_used += 1
        return self._emit(ev.Hint(index=self.hints_used, text=text, drill_s=self.drill_s(now)))

    def _act_mitigate(self, action: Action, now: float) -> Event:
        ids = [x.id for x in self.model.mitigations]
        if action.mitigation not in ids:
            raise BadInputError(
                f"no mitigation '{action.mitigation}' (allowed: {', '.join(ids) or 'none'})"
            )
        mit = self.scenario.mitigation(action.mitigation)
        self._emit(
            ev.MitigationStarted(mitigation=mit.id, action=mit.action, drill_s=self.drill_s(now))
        )
        try:
            detail = self._apply_mitigation(mit, action)
        except Exception as exc:
            return self._emit(
                ev.MitigationFailed(mitigation=mit.id, error=str(exc), drill_s=self.drill_s())
            )
        event = self._emit(
            ev.Mitigation(
                mitigation=mit.id,
                title=mit.title,
                action=mit.action,
                detail=detail,
                position=[m.id for m in self.mitigation_choices].index(mit.id) + 1,
                drill_s=self.drill_s(),
            )
        )
        self._set_phase(Phase.MITIGATED)
        return event

    def _apply_mitigation(self, mit, action: Action) -> dict:
        cls = mitigation_class(mit.action)

        def write_undo(undo: dict) -> None:
            record = self._emit(ev.MitigationUndo(mitigation=mit.id, undo=undo))
            self._undo.append(("mitigation", (mit.id, undo, record.seq, cls)))

        ctx = MitigationContext(
            target=self.target,
            roles=self.roles,
            faults=self.faults,
            revert_fault=lambda run: self._revert(run, by="engineer"),
            write_undo=write_undo,
            source=action.source,
        )
        return cls(mit, ctx).apply()

    def _act_resolve(self, action: Action, now: float) -> Event | None:
        self.close(action.text)
        return None
