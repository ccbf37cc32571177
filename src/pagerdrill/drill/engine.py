"""The drill engine: a state machine driven by a clock and by the engineer's actions.

    scheduled -> steady-state -> quiet -> fault-injected -> paged -> acknowledged
      -> hypothesis -> mitigated -> recovered -> closed          (or: aborted)

The phase only moves forward; milestones reached out of order (recovery seen
before a hypothesis) are recorded when they happen. Every event goes to the
journal (fsynced) before the engine acts on it; the undo record of a fault is
written before the fault touches anything. Faults revert on close, on abort, on
error, and, after a crash, through `pagerdrill recover`.

No UI here: a runner (headless, the TUI) calls `tick()` on the scenario's cadence
and `act()` with the engineer's actions; observers receive every event.
"""

from __future__ import annotations

import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pagerdrill import __version__
from pagerdrill.drill.checklist import Checklist
from pagerdrill.drill.mitigations import ActionRefused, MitigationContext, mitigation_class
from pagerdrill.errors import BadInputError, PagerdrillError
from pagerdrill.faults import Fault, FaultContext, fault_class, revert_fault
from pagerdrill.journal import DrillLock, JournalWriter
from pagerdrill.journal.redact import (
    MASK,
    mask_values,
    masked_scenario_text,
)
from pagerdrill.scenarios.model import (
    Scenario,
    grade_hypothesis,
    scenario_secrets,
    shown_choices,
    shown_decision_choices,
    shown_mitigations,
)
from pagerdrill.signals import dashboard
from pagerdrill.signals.probes import ProbeSet, RuleState, Sample, make_probe
from pagerdrill.targets.base import Target, process_start_ticks
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace import Workspace
from pagerdrill.workspace.config import RoleBinding

log = logging.getLogger("pagerdrill.drill.engine")

Observer = Callable[[dict], None]


class Phase(StrEnum):
    SCHEDULED = "scheduled"
    STEADY_STATE = "steady-state"
    QUIET = "quiet"
    INJECTED = "fault-injected"
    PAGED = "paged"
    ACKNOWLEDGED = "acknowledged"
    HYPOTHESIS = "hypothesis"
    MITIGATED = "mitigated"
    RECOVERED = "recovered"
    CLOSED = "closed"
    ABORTED = "aborted"


ORDER = list(Phase)
ACTIONS = (
    "ack", "step", "note", "hypothesis", "decision", "mitigate", "hint", "resolve",
    "pause", "resume", "abort", "evidence",
)  # fmt: skip
EVIDENCE = ("logs", "error-spans", "runbook-search", "runbook-open", "url", "signals")
"""What an engineer can be seen looking at; each is evidence of a checklist step."""


@dataclass(frozen=True)
class Action:
    kind: str
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

    def __post_init__(self) -> None:
        if self.kind not in ACTIONS:
            raise BadInputError(f"unknown action '{self.kind}' (known: {', '.join(ACTIONS)})")
        if self.kind == "evidence" and self.what not in EVIDENCE:
            raise BadInputError(f"unknown evidence '{self.what}' (known: {', '.join(EVIDENCE)})")


def role_bindings(workspace: Workspace) -> dict[str, RoleBinding]:
    """The workspace's bindings; the local reference stack binds its roles by itself."""
    bindings = dict(workspace.config.roles)
    if workspace.config.target == "local":
        from pagerdrill.refstack.spec import REFERENCE_ROLES

        for role, raw in REFERENCE_ROLES.items():
            bindings.setdefault(role, RoleBinding(**raw))
    return bindings


def new_drill_id(scenario: str, engineer: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    who = re.sub(r"[^a-z0-9]+", "-", engineer.lower()).strip("-")[:24] or "anon"
    return f"{stamp}-{scenario}-{who}-{os.urandom(2).hex()}"


@dataclass
class _FaultRun:
    spec_id: str
    fault: Fault
    due: float | None = None
    revert_at: float | None = None
    undo: dict | None = None
    injected: bool = False
    reverted: bool = False


class DrillEngine:
    def __init__(
        self,
        scenario: Scenario,
        workspace: Workspace,
        target: Target,
        engineer: str,
        checklist: Checklist,
        *,
        drills_dir: Path | None = None,
        observers: Sequence[Observer] = (),
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        blind: bool = False,
        mode: str = "headless",
    ):
        self.scenario = scenario
        self.model = scenario.model
        self.workspace = workspace
        self.target = target
        self.engineer = engineer
        self.checklist = checklist
        self.drills_dir = drills_dir or workspace.root / "drills"
        self.observers = list(observers)
        self.rng = rng or random.Random()
        self.clock = clock
        self.blind = blind
        self.mode = mode
        self.roles = RoleResolver(role_bindings(workspace), target)
        self.drill_id = new_drill_id(scenario.name, engineer)
        self.journal_path = self.drills_dir / f"{self.drill_id}.jsonl"
        self.phase = Phase.SCHEDULED
        self.stop_event = threading.Event()
        self._lock = threading.RLock()
        self._drill_lock = DrillLock(workspace.state_dir)
        self._lock_kept = False
        self.journal: JournalWriter | None = None
        self.probes: ProbeSet | None = None
        self.samples: dict[str, Sample] = {}
        self.ctx = FaultContext(
            target=target, roles=self.roles, stop=self.stop_event, report=self._report
        )
        self.faults = [
            _FaultRun(
                f.id,
                fault_class(f.kind)(
                    f.id, f.role, fault_class(f.kind).Params.model_validate(f.params), self.ctx
                ),
            )
            for f in self.model.faults
        ]
        self._alerts = [
            RuleState(a.name, scenario.expr(a.expr), a.for_s) for a in self.model.alerts
        ]
        self._guards = [
            RuleState(g.name, scenario.expr(g.expr), g.for_s) for g in self.model.guards
        ]
        self._recovery = [scenario.expr(e) for e in self.model.recovery.all]
        self._recovery_probes = {probe for e in self._recovery for probe, _ in e.refs}
        self.stack_rows = dashboard.standard_rows(self.roles.roles)
        """The Signals pane's standard rows: the same for every scenario of the workspace."""
        self.watched_rows = dashboard.scenario_rows(
            self.model.probes,
            [
                (
                    f"{a.expr}" + (f" for {a.for_s:g}s" if a.for_s else ""),
                    scenario.expr(a.expr).refs,
                )
                for a in self.model.alerts
            ],
            [
                *dashboard.hint_refs(self.model.hints),
                *(ref for e in self._recovery for ref in sorted(e.refs)),
            ],
        )
        """The scenario's own signals, shown from the page on."""
        self._steady_since: float | None = None
        self._steady_started: float | None = None
        self._recovered_since: float | None = None
        self._quiet_until: float | None = None
        self._injected_at: float | None = None
        self.page_mono: float | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._outside_down: dict[str, float] = {}
        self._held = False
        self._outside: list[str] = []
        self.steps_done: dict[str, float] = {}
        self.evidence: dict[str, list[str]] = {}
        """Per checklist step, what the engineer was seen doing for it (`logs: errors`)."""
        self.hints_used = 0
        self.recovered = False
        self.acknowledged = False
        # every change to put back, in the order it was made: ("fault", run) or
        # ("mitigation", (id, undo record, its journal seq, its class)); reverted newest first
        self._undo: list[tuple[str, Any]] = []
        self.abort_reason: str | None = None
        self.revert_failed: list[str] = []
        # what the journal never holds: the faults' secrets and the parameters feeding them
        self._secrets, self._secret_names = scenario_secrets(scenario)

    def _masked_params(self) -> dict:
        return {
            k: MASK if k in self._secret_names else mask_values(v, self._secrets)
            for k, v in self.scenario.params.items()
        }

    @property
    def hypothesis_choices(self) -> list:
        """The hypothesis choices in the order this drill shows them (journalled): a
        function of the drill id alone."""
        return shown_choices(self.model, self.drill_id)

    @property
    def decision_choices(self) -> list:
        """The decision's choices in the order this drill shows them (journalled)."""
        return shown_decision_choices(self.model, self.drill_id)

    @property
    def mitigation_choices(self) -> list:
        """The mitigations in the order this drill lists them (journalled)."""
        return shown_mitigations(self.model, self.drill_id)

    # ------------------------------------------------------------- events

    def _emit(self, type_: str, **data: Any) -> dict:
        """Journal first (durable), then tell the observers; a failing observer is
        logged and the drill goes on."""
        if self.journal is None:
            raise PagerdrillError("the drill has not started")
        event = self.journal.append(type_, **data)
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("drill observer failed on %s", type_)
        return event

    def _emit_safe(self, type_: str, **data: Any) -> dict | None:
        """Journal an event while putting the stack back: a journal that cannot be
        written must not stop the reverts that follow."""
        try:
            return self._emit(type_, **data)
        except Exception:
            log.exception("could not journal %s while reverting", type_)
            return None

    def record(self, type_: str, **data: Any) -> dict | None:
        """Journal an event of a runner's own (a refused script action ...)."""
        with self._lock:
            if self.journal is None or self.done:
                return None
            return self._emit(type_, drill_s=self.drill_s(), **data)

    def _report(self, type_: str, data: dict) -> None:
        if self.journal is not None and not self.done:
            self._emit(type_, **data)

    def _set_phase(self, phase: Phase, **data: Any) -> None:
        if ORDER.index(phase) <= ORDER.index(self.phase) and phase not in (
            Phase.CLOSED,
            Phase.ABORTED,
        ):
            return
        previous, self.phase = self.phase, phase
        self._emit("state", **{"from": previous.value, "to": phase.value}, **data)

    def _set_phase_safe(self, phase: Phase, **data: Any) -> None:
        try:
            self._set_phase(phase, **data)
        except Exception:
            self.phase = phase
            log.exception("could not journal the move to %s", phase.value)

    @property
    def done(self) -> bool:
        return self.phase in (Phase.CLOSED, Phase.ABORTED)

    # -------------------------------------------------------------- clock

    def drill_s(self, now: float | None = None) -> float | None:
        """Seconds on the drill clock: from the page, paused time left out."""
        if self.page_mono is None:
            return None
        now = self.clock() if now is None else now
        if self._paused_since is not None:
            now = self._paused_since
        return round(max(0.0, now - self.page_mono - self._paused_total), 3)

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    # -------------------------------------------------------------- start

    def plan(self) -> dict:
        """What the drill would do, names resolved, touching nothing (--dry-run)."""
        m = self.model
        return {
            "scenario": self.scenario.name,
            "title": m.title,
            "severity": m.severity,
            "params": self._masked_params(),
            "roles": {r: self.roles.service(r) for r in m.roles},
            "quiet_s": [m.quiet.min_s, m.quiet.max_s],
            "faults": [
                {
                    "id": run.spec_id,
                    "kind": run.fault.kind,
                    "at_s": self.scenario.fault(run.spec_id).at_s,
                    "duration_s": self.scenario.fault(run.spec_id).duration_s,
                    "does": run.fault.describe(),
                }
                for run in self.faults
            ],
            "probes": [f"{p.name}: {p.kind} on {self.roles.service(p.role)}" for p in m.probes],
            "alerts": [f"{a.name}: {a.expr} for {a.for_s:g} s" for a in m.alerts],
            "recovery": [*m.recovery.all, f"for {m.recovery.for_s:g} s"],
            "journal": str(self.journal_path),
        }

    def _take_lock(self) -> None:
        self._drill_lock.acquire(
            {
                "drill": self.drill_id,
                "pid": os.getpid(),
                "start_ticks": process_start_ticks(os.getpid()),
                "engineer": self.engineer,
                "scenario": self.scenario.name,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "journal": str(self.journal_path),
            }
        )

    def claim(self) -> None:
        """Take the stack's drill lock before anything starts (the stack included). The
        runner that claims keeps the lock past the drill's end, until `release`, so a
        stack it started goes down before another drill may take it."""
        if not self._drill_lock.is_held:
            self._take_lock()
        self._lock_kept = True

    def release(self) -> None:
        """Give up a lock taken by `claim`, once the drill is over (or never started)."""
        self._lock_kept = False
        self._drill_lock.release()

    def start(self) -> None:
        """Take the stack's drill lock (unless `claim` took it), open the journal, build
        the probes. Nothing on the stack is touched yet."""
        for role in self.model.roles:
            self.roles.service(role)  # every role bound, before anything else
        bound = {self.roles.service(r) for r in self.model.roles}
        self._outside = [s for s in self.target.services() if s not in bound]
        if not self._drill_lock.is_held:
            self._take_lock()
        try:
            self.journal = JournalWriter(self.journal_path, self.drill_id)
            self._emit(
                "drill.started",
                tool={"name": "pagerdrill", "version": __version__},
                host=socket.gethostname(),
                pid=os.getpid(),
                engineer=self.engineer,
                mode=self.mode,
                blind=self.blind,
                workspace=str(self.workspace.root),
                target=getattr(self.target, "name", type(self.target).__name__),
                scenario={
                    "name": self.scenario.name,
                    "title": self.model.title,
                    "severity": self.model.severity,
                    "symptom": self.model.symptom,
                    "file": str(self.scenario.path),
                    "sha256": self.scenario.sha256,
                    "params": self._masked_params(),
                    "text": masked_scenario_text(
                        self.scenario.text, self._secret_names, self._secrets
                    ),
                },
                roles={r: self.roles.service(r) for r in self.model.roles},
                checklist={
                    "hypothesis_target_s": self.checklist.hypothesis_target_s,
                    "steps": [
                        {
                            "id": s.id,
                            "title": s.title,
                            "target_s": s.target_for(self.model.severity),
                            "url": s.url,
                        }
                        for s in self.checklist.steps
                    ],
                },
                alerts=[a.model_dump() for a in self.model.alerts],
                recovery=self.model.recovery.model_dump(),
                hypotheses={
                    "shown": [c.id for c in self.hypothesis_choices],
                    "feedback": self.model.hypotheses.feedback,
                },
                # the orders the pickers show (file order puts the right one first);
                # the choices are graded by id, whatever their place
                mitigations={"shown": [m.id for m in self.mitigation_choices]},
                **(
                    {"decision": {"shown": [c.id for c in self.decision_choices]}}
                    if self.model.decision
                    else {}
                ),
            )
            probes = [make_probe(p, self.roles, self.target) for p in self.model.probes]
            probes += dashboard.standard_probes(self.stack_rows, self.roles, self.target)
            self.probes = ProbeSet(probes, clock=self.clock)
        except BaseException:
            if not self._lock_kept:
                self._drill_lock.release()
            if self.journal is not None:
                self.journal.close()
            raise
        now = self.clock()
        self._steady_started = now
        self._set_phase(Phase.STEADY_STATE)

    # --------------------------------------------------------------- tick

    def tick(self) -> None:
        """One cycle: sample the probes, then move the drill on."""
        if self.done or self.probes is None:
            return
        samples = self.probes.sample()
        outside = {}
        for service in self._outside:
            try:
                status = self.target.service_status(service)
                outside[service] = status.state == "running" and status.health == "healthy"
            except Exception:
                outside[service] = False
        with self._lock:
            if self.done:
                return
            now = self.clock()
            self.samples = samples
            self._emit("probe.sample", values=samples, drill_s=self.drill_s(now))
            try:
                self._advance(now, outside)
            except Exception as exc:  # a failure mid-drill aborts it and reverts
                log.exception("drill failed")
                self.abort(f"error: {exc}")

    def _advance(self, now: float, outside: dict[str, bool]) -> None:
        m = self.model
        for rule, spec in zip(self._alerts, m.alerts, strict=True):
            change = rule.update(self.samples, now)
            if change:
                self._emit(
                    f"alert.{change}",
                    alert=rule.name,
                    page=spec.page,
                    severity=spec.severity or m.severity,
                    summary=spec.summary,
                    expr=spec.expr,
                    drill_s=self.drill_s(now),
                )
        for g in self._guards:
            if g.update(self.samples, now) == "firing":
                guard = next(x for x in m.guards if x.name == g.name)
                self.abort(f"guard {g.name}: {guard.reason or guard.expr}")
                return
        for service, healthy in outside.items():
            if healthy:
                self._outside_down.pop(service, None)
                continue
            since = self._outside_down.setdefault(service, now)
            if now - since >= 5.0:
                self.abort(
                    f"guard: {service}, outside this scenario's roles, is unhealthy; "
                    "the drill stops rather than break more than it meant to"
                )
                return
        if self.phase == Phase.STEADY_STATE:
            self._check_steady(now)
        if self.phase in (Phase.QUIET, Phase.INJECTED) or self._injected_at is not None:
            self._drive_faults(now)
        if self.done:
            return
        if self.page_mono is None and self._injected_at is not None:
            self._maybe_page(now)
        if self.page_mono is not None and not self.recovered:
            self._check_recovery(now)
        if self.page_mono is not None:
            elapsed = self.drill_s(now) or 0.0
            if elapsed > m.max_duration_s and not self.paused:
                self.abort(f"timed out: not closed {m.max_duration_s:g} s after the page")
            elif now - self.page_mono > 2 * m.max_duration_s:  # pauses included
                self.abort(
                    f"timed out: not closed {2 * m.max_duration_s:g} s after the page, "
                    "pauses included"
                )

    def _check_steady(self, now: float) -> None:
        m = self.model
        # the quiet period starts on a settled stack: recovery holding and every alert
        # quiet (none firing, none pending), so that nothing a warm-up shows is taken
        # for the fault's doing
        holding = all(e.holds(self.samples) for e in self._recovery) and not any(
            a.firing or a.since is not None for a in self._alerts
        )
        if holding:
            self._steady_since = self._steady_since if self._steady_since is not None else now
            if now - self._steady_since >= m.steady_state.for_s:
                quiet = round(self.rng.uniform(m.quiet.min_s, m.quiet.max_s), 3)
                self._quiet_until = now + quiet
                for run in self.faults:
                    run.due = self._quiet_until + self.scenario.fault(run.spec_id).at_s
                self._set_phase(Phase.QUIET, quiet_s=quiet)
            return
        self._steady_since = None
        assert self._steady_started is not None
        if now - self._steady_started > m.steady_state.timeout_s:
            failing = [e.source for e in self._recovery if not e.holds(self.samples)]
            firing = [a.name + ("" if a.firing else " (pending)") for a in self._alerts
                      if a.firing or a.since is not None]  # fmt: skip
            self.abort(
                f"the stack never reached steady state in {m.steady_state.timeout_s:g} s "
                f"(not holding: {', '.join(failing) or 'none'}; firing: "
                f"{', '.join(firing) or 'none'})"
            )

    def _drive_faults(self, now: float) -> None:
        for run in self.faults:
            if not run.injected and run.due is not None and now >= run.due:
                noisy = [a.name for a, s in zip(self._alerts, self.model.alerts, strict=True)
                         if s.page and a.firing]  # fmt: skip
                if noisy and self._injected_at is None:
                    # a page now would not be the fault's: wait for the stack to settle
                    if not self._held:
                        self._emit("fault.held", fault=run.spec_id, firing=noisy)
                    self._held = True
                    continue
                self._inject(run, now)
                if self.done:
                    return
            elif (
                run.injected
                and not run.reverted
                and run.revert_at
                and now >= run.revert_at
                and not self._revert(run, by="schedule")
            ):
                run.revert_at = now + 5.0  # try again, and say so each time

    def _inject(self, run: _FaultRun, now: float) -> None:
        spec = self.scenario.fault(run.spec_id)
        run.undo = run.fault.prepare()
        if spec.repair is not None:
            # in the undo record, so that whoever reverts the fault repairs its harm too
            run.undo["repair"] = {
                "action": spec.repair.action,
                "role": spec.repair.role,
                "service": self.roles.service(spec.repair.role),
            }
        # write-ahead: the undo record is durable before the fault touches anything
        self._emit(
            "fault.undo",
            fault=run.spec_id,
            kind=run.fault.kind,
            role=run.fault.role,
            params=mask_values(spec.params, self._secrets),
            undo=run.undo,
        )
        run.injected = True
        self._undo.append(("fault", run))
        try:
            detail = run.fault.inject()
        except Exception as exc:
            self._emit("fault.failed", fault=run.spec_id, error=str(exc))
            self.abort(f"fault {run.spec_id} failed to inject: {exc}")
            return
        injected = self.clock()
        self._emit(
            "fault.injected",
            fault=run.spec_id,
            kind=run.fault.kind,
            detail=detail,
            inject_ms=round((injected - now) * 1000, 1),
        )
        if spec.duration_s:
            run.revert_at = injected + spec.duration_s
        self._injected_at = injected
        self._set_phase(Phase.INJECTED)

    def _revert(self, run: _FaultRun, by: str) -> bool:
        """Put one fault back; True when it is (or already was). A failure is journalled
        and the fault stays pending, so a later revert or `recover` tries again."""
        if run.reverted or not run.injected or run.undo is None:
            return True
        try:
            detail = revert_fault(run.fault, run.undo)
        except Exception as exc:
            self._emit_safe("fault.revert_failed", fault=run.spec_id, by=by, error=str(exc))
            return False
        run.reverted = True
        self._emit_safe("fault.reverted", fault=run.spec_id, by=by, detail=detail)
        return True

    def _maybe_page(self, now: float) -> None:
        m = self.model
        assert self._injected_at is not None
        for rule, spec in zip(self._alerts, m.alerts, strict=True):
            fired = rule.fired_at
            if rule.firing and spec.page and fired is not None and fired >= self._injected_at:
                self.page_mono = now
                self._emit(
                    "page",
                    alert=spec.name,
                    severity=spec.severity or m.severity,
                    summary=spec.summary,
                    symptom=m.symptom,
                    title=None if self.blind else m.title,
                )
                self._set_phase(Phase.PAGED)
                return
        if now - self._injected_at > m.page_timeout_s:
            self.abort(
                f"no alert paged within {m.page_timeout_s:g} s of the fault: the scenario's "
                "alert rules did not catch it"
            )

    def _check_recovery(self, now: float) -> None:
        m = self.model
        if not all(e.holds(self.samples) for e in self._recovery):
            self._recovered_since = None
            return
        if self._recovered_since is None:
            self._recovered_since = now
        if now - self._recovered_since >= m.recovery.for_s:
            self.recovered = True
            self._emit(
                "recovery.verified",
                drill_s=self.drill_s(now),
                held_s=round(now - self._recovered_since, 3),
                criteria=list(m.recovery.all),
                values={
                    p: self.samples.get(p) for p in {r[0] for e in self._recovery for r in e.refs}
                },
            )
            self._set_phase(Phase.RECOVERED)

    # ------------------------------------------------------------ actions

    def act(self, action: Action) -> dict:
        """Apply an engineer's (or coach's) action; returns the event it recorded."""
        with self._lock:
            if self.done:
                raise ActionRefused(f"the drill is {self.phase.value}")
            now = self.clock()
            if action.kind == "abort":
                self.abort(action.text or f"aborted by {action.by or self.engineer}")
                return {"type": "drill.aborted"}
            if action.kind in ("pause", "resume"):
                return self._pause(action, now)
            if self.page_mono is None:
                raise ActionRefused("nothing has paged yet")
            handler = getattr(self, f"_act_{action.kind}")
            return handler(action, now)

    def _pause(self, action: Action, now: float) -> dict:
        by = action.by or "coach"
        if action.kind == "pause":
            if self.paused:
                raise ActionRefused("the drill clock is already paused")
            self._paused_since = now
            return self._emit("clock.paused", by=by, drill_s=self.drill_s(now))
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
            "clock.resumed", by=by, paused_s=round(paused, 3), drill_s=self.drill_s(now)
        )

    def _step_event(self, step_id: str, now: float, **extra: Any) -> dict:
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
            "step.done",
            step=step_id,
            title=step.title,
            drill_s=at,
            target_s=target,
            over=at > target,
            **extra,
        )

    def _act_ack(self, action: Action, now: float) -> dict:
        if self.acknowledged:
            raise ActionRefused("already acknowledged")
        self.acknowledged = True
        event = self._emit("ack", by=self.engineer, drill_s=self.drill_s(now), text=action.text)
        if self.checklist.step("acknowledge") is not None and "acknowledge" not in self.steps_done:
            self._step_event("acknowledge", now)
        self._set_phase(Phase.ACKNOWLEDGED)
        return event

    def _act_step(self, action: Action, now: float) -> dict:
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

    def _act_evidence(self, action: Action, now: float) -> dict:
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
        event = self._emit(
            "evidence", step=action.step, what=action.what, about=detail or None,
            drill_s=self.drill_s(now),
        )  # fmt: skip
        step = action.step
        if step is not None and step not in self.steps_done and step != "acknowledge":
            self._step_event(step, now, evidence="; ".join(self.evidence[step]))
        return event

    def _act_note(self, action: Action, now: float) -> dict:
        if not action.text or not action.text.strip():
            raise BadInputError("a note needs text")
        return self._emit("note", text=action.text.strip(), drill_s=self.drill_s(now))

    def _act_hypothesis(self, action: Action, now: float) -> dict:
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
            "hypothesis",
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
        self._set_phase(Phase.HYPOTHESIS)
        return event

    def _act_decision(self, action: Action, now: float) -> dict:
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
            "decision",
            prompt=d.prompt,
            choice=action.choice,
            text=choices[action.choice].text,
            correct=choices[action.choice].correct,
            position=shown.index(action.choice) + 1,
            drill_s=self.drill_s(now),
        )

    def _act_hint(self, action: Action, now: float) -> dict:
        hints = self.model.hints
        if self.hints_used >= len(hints):
            raise ActionRefused("no more hints")
        text = hints[self.hints_used].text
        self.hints_used += 1
        return self._emit("hint", index=self.hints_used, text=text, drill_s=self.drill_s(now))

    def _act_mitigate(self, action: Action, now: float) -> dict:
        ids = [x.id for x in self.model.mitigations]
        if action.mitigation not in ids:
            raise BadInputError(
                f"no mitigation '{action.mitigation}' (allowed: {', '.join(ids) or 'none'})"
            )
        mit = self.scenario.mitigation(action.mitigation)
        self._emit(
            "mitigation.started", mitigation=mit.id, action=mit.action, drill_s=self.drill_s(now)
        )
        try:
            detail = self._apply_mitigation(mit, action)
        except Exception as exc:
            return self._emit(
                "mitigation.failed", mitigation=mit.id, error=str(exc), drill_s=self.drill_s()
            )
        event = self._emit(
            "mitigation",
            mitigation=mit.id,
            title=mit.title,
            action=mit.action,
            detail=detail,
            position=[m.id for m in self.mitigation_choices].index(mit.id) + 1,
            drill_s=self.drill_s(),
        )
        self._set_phase(Phase.MITIGATED)
        return event

    def _apply_mitigation(self, mit, action: Action) -> dict:
        cls = mitigation_class(mit.action)

        def write_undo(undo: dict) -> None:
            record = self._emit("mitigation.undo", mitigation=mit.id, undo=undo)
            self._undo.append(("mitigation", (mit.id, undo, record["seq"], cls)))

        ctx = MitigationContext(
            target=self.target,
            roles=self.roles,
            faults=self.faults,
            revert_fault=lambda run: self._revert(run, by="engineer"),
            write_undo=write_undo,
            source=action.source,
        )
        return cls(mit, ctx).apply()

    def _act_resolve(self, action: Action, now: float) -> dict:
        self.close(action.text)
        return {"type": "drill.closed"}

    # ------------------------------------------------------------ the end

    def _revert_all(self, by: str) -> list[str]:
        """Put everything back, the newest change first (faults and mitigations alike);
        a failure does not stop the rest. Returns what could not be put back."""
        failed = []
        for what, item in reversed(self._undo):
            if what == "fault":
                if not self._revert(item, by=by):
                    failed.append(item.spec_id)
                continue
            mit_id, undo, seq, cls = item
            try:
                detail = cls.revert(undo, self.target, self.roles)
            except Exception as exc:
                self._emit_safe("mitigation.revert_failed", mitigation=mit_id, undo_seq=seq,
                                error=str(exc))  # fmt: skip
                failed.append(mit_id)
                continue
            self._emit_safe("mitigation.reverted", mitigation=mit_id, by=by, undo_seq=seq,
                            detail=detail)  # fmt: skip
        self._undo = [
            (what, item)
            for what, item in self._undo
            if (what == "fault" and not item.reverted)
            or (what == "mitigation" and item[0] in failed)
        ]
        return failed

    def _finish(self) -> None:
        self.stop_event.set()
        try:
            if self.probes is not None:
                self.probes.close()
            if self.journal is not None:
                self.journal.close()
        finally:
            if not self._lock_kept:
                self._drill_lock.release()

    def close(self, text: str | None = None) -> None:
        with self._lock:
            if self.done:
                return
            now = self.clock()
            failed = self._revert_all(by="close")
            self._emit_safe(
                "resolve",
                by=self.engineer,
                text=text,
                drill_s=self.drill_s(now),
                recovery_verified=self.recovered,
            )
            self.revert_failed = failed
            self._set_phase_safe(Phase.CLOSED, revert_failed=failed)
            self._emit_safe(
                "drill.closed",
                recovery_verified=self.recovered,
                revert_failed=failed,
                drill_s=self.drill_s(now),
            )
            self._finish()

    def abort(self, reason: str) -> None:
        """Stop the drill and revert every fault (the newest first). Safe to call from
        any state, more than once."""
        with self._lock:
            if self.done:
                return
            # an abort cut short (by an error of its own) keeps the reason it began with
            reason = self.abort_reason or reason
            self.abort_reason = reason
            if self.journal is None:
                self.phase = Phase.ABORTED
                return
            self._emit_safe("abort.requested", reason=reason)
            failed = self._revert_all(by="abort")
            self.revert_failed = failed
            self._set_phase_safe(Phase.ABORTED, reason=reason)
            self._emit_safe(
                "drill.aborted", reason=reason, revert_failed=failed, drill_s=self.drill_s()
            )
            self._finish()
