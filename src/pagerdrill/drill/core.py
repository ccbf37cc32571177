"""The drill engine's core: its phases, its state, its journal and its clock.

Every event goes to the journal (fsynced) before the engine acts on it, then to the
observers. The engine is assembled in layers, each a class over the one before:
`EngineCore` (here), `FaultRuns` (faults in and out, the end of the drill),
`TraineeActions` (what the engineer does), `DrillEngine` (start and the tick).
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pagerdrill.drill.checklist import Checklist
from pagerdrill.errors import PagerdrillError
from pagerdrill.faults import Fault, FaultContext, fault_class
from pagerdrill.journal import DrillLock, JournalWriter
from pagerdrill.journal import events as ev
from pagerdrill.journal.events import Event, decode_event
from pagerdrill.journal.redact import (
    MASK,
    mask_values,
)
from pagerdrill.scenarios.model import (
    Scenario,
    scenario_secrets,
    shown_choices,
    shown_decision_choices,
    shown_mitigations,
)
from pagerdrill.signals import dashboard
from pagerdrill.signals.probes import ProbeSet, RuleState, Sample
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace import Workspace
from pagerdrill.workspace.config import RoleBinding
from pagerdrill.workspace.sources import workspace_signals

log = logging.getLogger("pagerdrill.drill.engine")

Observer = Callable[[Event], None]
E = TypeVar("E", bound=Event)


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


def role_bindings(workspace: Workspace) -> dict[str, RoleBinding]:
    """The workspace's bindings; the local reference stack binds its roles by itself."""
    bindings = dict(workspace.config.roles)
    if workspace.config.target == "local":
        from pagerdrill.refstack.spec import REFERENCE_ROLES

        for role, raw in REFERENCE_ROLES.items():
            bindings.setdefault(role, RoleBinding.model_validate(raw))
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


class EngineCore:
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
        self.roles = RoleResolver(
            role_bindings(workspace), target, workspace_signals(workspace.config)
        )
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
        self._valued: set[tuple[str, str]] = set()
        """(probe, field) pairs that have had a value at least once."""
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
        self._init_rules()
        self._init_progress()
        # what the journal never holds: the faults' secrets and the parameters feeding them
        self._secrets, self._secret_names = scenario_secrets(scenario)

    def _init_rules(self) -> None:
        """The scenario's alert, guard and recovery rules, and the Signals pane's rows."""
        scenario = self.scenario
        self._alerts = [
            RuleState(a.name, scenario.expr(a.expr), a.for_s) for a in self.model.alerts
        ]
        self._guards = [
            RuleState(g.name, scenario.expr(g.expr), g.for_s) for g in self.model.guards
        ]
        self._recovery = [scenario.expr(e) for e in self.model.recovery.all]
        self._recovery_probes = {probe for e in self._recovery for probe, _ in e.refs}
        self.stack_rows = dashboard.standard_rows(self.roles.signals, self.roles.roles)
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

    def _init_progress(self) -> None:
        """Where the drill is: its timers, the engineer's progress, what to put back."""
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

    def _emit(self, event: E) -> E:
        """Journal first (durable), then tell the observers; a failing observer is
        logged and the drill goes on."""
        if self.journal is None:
            raise PagerdrillError("the drill has not started")
        event = self.journal.write(event)
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("drill observer failed on %s", event.TYPE)
        return event

    def _emit_safe(self, event: Event) -> Event | None:
        """Journal an event while putting the stack back: a journal that cannot be
        written must not stop the reverts that follow."""
        try:
            return self._emit(event)
        except Exception:
            log.exception("could not journal %s while reverting", event.TYPE)
            return None

    def record(self, event: ev.ScriptRefused) -> Event | None:
        """Journal an event of a runner's own (a refused script action ...), on the
        drill clock."""
        with self._lock:
            if self.journal is None or self.done:
                return None
            return self._emit(msgspec.structs.replace(event, drill_s=self.drill_s()))

    def _report(self, type_: str, data: dict) -> None:
        """What a fault reports while in effect (its progress, its errors)."""
        if self.journal is not None and not self.done:
            self._emit(decode_event({"type": type_, **data}))

    def _set_phase(self, phase: Phase, **data: Any) -> None:
        if ORDER.index(phase) <= ORDER.index(self.phase) and phase not in (
            Phase.CLOSED,
            Phase.ABORTED,
        ):
            return
        previous, self.phase = self.phase, phase
        self._emit(ev.State(from_=previous.value, to=phase.value, **data))

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
