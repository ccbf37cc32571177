"""One factory for a drill: what `pagerdrill run`, the TUI (`pagerdrill drill`) and the
tests build a drill from, and the one policy for the signals that stop it and for the
stack it started.

A `DrillFactory` holds what every drill of a workspace shares (the workspace, its
target, the role bindings, the checklist); `engine()` builds one drill's engine and
`headless()` a whole headless drill (the engineer's actions from a script or the
autopilot, the redactor, the engine, its hold on the stack). Nothing is touched until
the drill runs: a dry run or a refused script leaves the stack as it was.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pagerdrill.drill.checklist import Checklist, load_checklist
from pagerdrill.drill.engine import DrillEngine, Observer, role_bindings
from pagerdrill.drill.runner import (
    Player,
    ScriptAction,
    autopilot,
    check_script,
    load_script_lines,
    run_drill,
)
from pagerdrill.drill.stackhold import StackHold, requested_abort
from pagerdrill.journal.redact import Redactor
from pagerdrill.scenarios.check import refuse_unreadable_alerts
from pagerdrill.scenarios.model import Scenario, find_scenario, load_scenario
from pagerdrill.targets.base import Target
from pagerdrill.workspace import Workspace
from pagerdrill.workspace.config import RoleBinding

Mode = Literal["headless", "tui"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What stops a headless drill: Ctrl-C, SIGTERM, and SIGHUP (a dropped ssh connection)."""

_SAID = {int(signal.SIGINT): "Ctrl-C", int(signal.SIGHUP): "SIGHUP: the terminal went away"}


@contextmanager
def stop_signals(
    on_signal: Callable[[int], None], signals: Sequence[signal.Signals] = STOP_SIGNALS
) -> Iterator[None]:
    """While a drill holds its stack, `signals` only ask it to stop (`on_signal` gets
    the signal's number): the drill finishes what it is doing, aborts and puts everything
    back rather than dying with a fault in place. The previous handlers come back after."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        on_signal(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def stop_reason(engine: DrillEngine, default: str) -> str:
    """Why a signalled drill aborts: the reason another command gave (`stack down
    --force` writes it before its SIGTERM), else `default`."""
    return requested_abort(engine.workspace.state_dir, engine.drill_id) or default


def interrupted_text(signum: int | None) -> str:
    """How a headless drill's journal says which signal stopped it."""
    return f"interrupted ({_SAID.get(signum or 0, 'SIGTERM')})"


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: str
    at_s: float | int
    duration_s: float | int | None
    does: str


class DrillPlan(BaseModel):
    """What a drill would do, names resolved, with nothing touched (`run --dry-run`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str
    title: str
    severity: str
    params: dict[str, Any]
    roles: dict[str, str]
    quiet_s: tuple[float | int, float | int]
    faults: list[FaultPlan]
    probes: list[str]
    alerts: list[str]
    page_timeout_s: float
    recovery: list[str]
    journal: str

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass
class HeadlessDrill:
    """A drill with no TUI, built and not started: the script (or the answer key)
    plays the engineer."""

    factory: DrillFactory
    scenario: Scenario
    actions: list[ScriptAction]
    redactor: Redactor
    engine: DrillEngine
    hold: StackHold = field(init=False)

    def __post_init__(self) -> None:
        self.hold = StackHold(self.engine, self.factory.target)

    def plan(self) -> DrillPlan:
        return DrillPlan.model_validate(self.engine.plan())

    def run(
        self,
        *,
        keep_stack: bool,
        progress: Any = None,
        announce: Callable[[], None] | None = None,
        started: Callable[[DrillEngine], None] | None = None,
    ) -> None:
        """The drill on the stack it holds, brought up if need be (`announce` says so
        first, `progress` follows it) and let go after; `started` once the stack is up.
        From the lock on, a stop signal only asks: the drill aborts and reverts."""
        interrupt = threading.Event()
        got: list[int] = []

        def on_signal(signum: int) -> None:
            got.append(signum)
            interrupt.set()

        def why() -> str:
            return stop_reason(self.engine, interrupted_text(got[0] if got else None))

        # the drill lock comes first: a drill it refuses has touched nothing
        with stop_signals(on_signal):
            try:
                self.hold.bring_up(progress=progress, announce=announce)
                if started is not None:
                    started(self.engine)
                # alerts that cannot be read would never page: refused before any fault
                refuse_unreadable_alerts(
                    self.engine.scenario, self.engine.roles, self.engine.target
                )
                run_drill(self.engine, Player(self.actions), interrupt, why=why)
            finally:
                self.hold.let_go(keep_stack)


class DrillFactory:
    """Builds the drills of one workspace on one target."""

    def __init__(self, workspace: Workspace, target: Target) -> None:
        self.workspace = workspace
        self.target = target
        self.roles: dict[str, RoleBinding] = role_bindings(workspace)
        self.checklist: Checklist = load_checklist(workspace.root)[0]

    @classmethod
    def open(
        cls, workspace_root: Path | None, *, allow_remote_docker: bool = False
    ) -> DrillFactory:
        """The factory of the workspace at `workspace_root` (None: found from here), on
        the target it names."""
        from pagerdrill.targets import open_target
        from pagerdrill.workspace import open_workspace

        ws = open_workspace(workspace_root)
        return cls(ws, open_target(ws, allow_remote_docker=allow_remote_docker))

    def find(self, scenario: str) -> Path:
        """The file of scenario `scenario` (a name in the workspace, or a path)."""
        return find_scenario(self.workspace.root, scenario)

    def scenario(self, path: Path, params: Mapping[str, str] | None = None) -> Scenario:
        """The scenario at `path` with its parameters set and its roles bound."""
        return load_scenario(path, params, roles=self.roles)

    def engine(
        self,
        scenario: Scenario,
        engineer: str,
        *,
        mode: Mode = "headless",
        blind: bool = False,
        observers: Sequence[Observer] = (),
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> DrillEngine:
        extra: dict[str, Any] = {} if clock is None else {"clock": clock}
        return DrillEngine(
            scenario,
            self.workspace,
            self.target,
            engineer,
            self.checklist,
            observers=observers,
            rng=random.Random(seed),
            mode=mode,
            blind=blind,
            **extra,
        )

    def headless(
        self,
        scenario: str,
        engineer: str,
        params: Mapping[str, str],
        *,
        script: Path | None = None,
        observers: Callable[[Redactor, Scenario], Sequence[Observer]] | None = None,
        seed: int | None = None,
        page_timeout_s: float | None = None,
    ) -> HeadlessDrill:
        """A headless drill of `scenario`: the engineer's actions are the script's,
        checked against the scenario and the checklist, else the scenario's own answer
        key. `observers` are made with the drill's redactor (what the drill will set, a
        wrong password ..., never shows in what they print either)."""
        sc = self.scenario(self.find(scenario), params)
        if page_timeout_s is not None:  # this drill's own, not the scenario file's
            sc = dataclasses.replace(
                sc, model=sc.model.model_copy(update={"page_timeout_s": page_timeout_s})
            )
        if script is not None:
            actions, lines = load_script_lines(script)
            check_script(actions, sc, self.checklist, script, lines)
        else:
            actions = autopilot(sc, self.checklist)
        redactor = Redactor.for_scenario(sc, self.workspace.config)
        engine = self.engine(
            sc, engineer, observers=observers(redactor, sc) if observers else (), seed=seed
        )
        return HeadlessDrill(self, sc, actions, redactor, engine)
