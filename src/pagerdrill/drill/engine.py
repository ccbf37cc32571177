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

import os
import socket
import time

import msgspec

from pagerdrill import __version__
from pagerdrill.drill.actions import ACTIONS, EVIDENCE, Action, ActionDetail, TraineeActions
from pagerdrill.drill.core import ORDER, Observer, Phase, log, new_drill_id, role_bindings
from pagerdrill.drill.mitigations import ActionRefused
from pagerdrill.journal import JournalWriter
from pagerdrill.journal import events as ev
from pagerdrill.journal.redact import masked_scenario_text
from pagerdrill.signals import dashboard
from pagerdrill.signals.mapped import describe_probe
from pagerdrill.signals.probes import ProbeSet, make_probe
from pagerdrill.targets.base import process_start_ticks

__all__ = [
    "ACTIONS",
    "EVIDENCE",
    "ORDER",
    "Action",
    "ActionDetail",
    "ActionRefused",
    "DrillEngine",
    "Observer",
    "Phase",
    "new_drill_id",
    "role_bindings",
]


class DrillEngine(TraineeActions):
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
            "probes": [describe_probe(p, self.roles) for p in m.probes],
            "alerts": [f"{a.name}: {a.expr} for {a.for_s:g} s" for a in m.alerts],
            "page_timeout_s": m.page_timeout_s,
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
            self._emit(self._started_event())
            logs = self.workspace.config.logs
            probes = [make_probe(p, self.roles, self.target, logs) for p in self.model.probes]
            probes += dashboard.standard_probes(self.stack_rows, self.roles, self.target, logs)
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

    def _started_event(self) -> ev.DrillStarted:
        """The first event: who, where, with what tool, and a copy of the scenario and
        checklist as this drill runs them."""
        return msgspec.convert(
            dict(
                type=ev.DrillStarted.TYPE,
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
            ),
            ev.DrillStarted,
        )

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
                # health unknown (no healthcheck): running is all that can be asked of it
                outside[service] = status.state == "running" and status.health != "unhealthy"
            except Exception:
                outside[service] = False
        with self._lock:
            if self.done:
                return
            now = self.clock()
            self.samples = samples
            self._valued |= {
                (p, f) for p, s in samples.items() for f, v in s.items() if v is not None
            }
            self._emit(ev.ProbeSample(values=samples, drill_s=self.drill_s(now)))
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
                alert_event = ev.AlertFiring if change == "firing" else ev.AlertResolved
                self._emit(
                    alert_event(
                        alert=rule.name,
                        page=spec.page,
                        severity=spec.severity or m.severity,
                        summary=spec.summary,
                        expr=spec.expr,
                        drill_s=self.drill_s(now),
                    )
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

    def _maybe_page(self, now: float) -> None:
        m = self.model
        assert self._injected_at is not None
        for rule, spec in zip(self._alerts, m.alerts, strict=True):
            fired = rule.fired_at
            if rule.firing and spec.page and fired is not None and fired >= self._injected_at:
                self.page_mono = now
                self._emit(
                    ev.Page(
                        alert=spec.name,
                        severity=spec.severity or m.severity,
                        summary=spec.summary,
                        symptom=m.symptom,
                        title=None if self.blind else m.title,
                    )
                )
                self._set_phase(Phase.PAGED)
                return
        if now - self._injected_at > m.page_timeout_s:
            reason = (
                f"no alert paged within {m.page_timeout_s:g} s of the fault: the scenario's "
                "alert rules did not catch it"
            )
            refs = {r for rule in self._alerts for r in rule.expr.refs}
            silent = sorted(p if f == "value" else f"{p}.{f}" for p, f in refs - self._valued)
            if silent:
                reason += f"; alert signals that never produced a value: {', '.join(silent)}"
            self.abort(reason)

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
                ev.RecoveryVerified(
                    drill_s=self.drill_s(now),
                    held_s=round(now - self._recovered_since, 3),
                    criteria=list(m.recovery.all),
                    values={
                        p: self.samples.get(p)
                        for p in {r[0] for e in self._recovery for r in e.refs}
                    },
                )
            )
            self._set_phase(Phase.RECOVERED)
