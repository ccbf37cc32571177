"""A stand-in target for the engine's logic: services that run or stop, environment
overrides, starts and restarts that can be made to fail, and a clock the test moves.
No process, no socket: a drill or `recover` on it is pure logic."""

from __future__ import annotations

from pathlib import Path

from pagerdrill.errors import StackError
from pagerdrill.journal import read_journal
from pagerdrill.targets.base import ServiceStatus

SERVICES = ("redis-cache", "api", "rt", "game", "traffic")


class StandIn:
    """The reference stack's services, all running and healthy at first."""

    name = "stand-in"

    def __init__(self) -> None:
        self.state = dict.fromkeys(SERVICES, "running")
        self.env: dict[str, dict[str, str]] = {s: {} for s in self.state}
        self.failing_starts = 0
        self.failing_restarts = 0
        self.started_as = "running"
        """The state a start leaves a service in (`starting`: one that never comes up)."""
        self.journal: Path | None = None
        self.journalled_at_restart: list[list[str]] = []
        """The journal's event types at each restart: what was written before it."""

    def services(self) -> list[str]:
        return list(self.state)

    def service_status(self, service: str) -> ServiceStatus:
        up = self.state[service] == "running"
        return ServiceStatus(service, self.state[service], "healthy" if up else "unknown")  # type: ignore[arg-type]

    def status(self) -> list[ServiceStatus]:
        return [self.service_status(s) for s in self.state]

    def service_endpoints(self, service: str) -> dict:
        return {}

    def is_up(self) -> bool:
        return True

    def stop(self, service: str) -> None:
        self.state[service] = "stopped"

    def start(self, service: str) -> None:
        if self.failing_starts:
            self.failing_starts -= 1
            raise StackError(service, "would not start")
        self.state[service] = self.started_as

    def overrides(self, service: str) -> dict[str, str]:
        return dict(self.env[service])

    def environment(self, service: str) -> dict[str, str]:
        return self.overrides(service)

    def restart(self, service: str, env=None, *, reset_env: bool = False) -> None:
        if self.failing_restarts:
            self.failing_restarts -= 1
            raise StackError(service, "would not restart")
        if self.journal is not None:
            self.journalled_at_restart.append(
                [e["type"] for e in read_journal(self.journal).events]
            )
        self.env[service] = ({} if reset_env else self.env[service]) | dict(env or {})
        self.state[service] = "running"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stand_in_scenario(
    *,
    fault: str = "",
    max_duration_s: int = 60,
    choices: str = "  choices: [{id: down, text: down, correct: true}]\n",
    before_answer: str = "",
) -> str:
    """The stand-in drill's scenario: api stopped, paged while it is down, recovered
    once it runs. `fault`: more of the fault's flow mapping (`, duration_s: 5`);
    `choices`: the hypotheses' lines; `before_answer`: sections before the answer key."""
    return f"""
title: Stand-in
severity: P2
symptom: api is down
roles: [api]
interval_s: 1
quiet: {{min_s: 0, max_s: 0}}
steady_state: {{for_s: 0, timeout_s: 30}}
max_duration_s: {max_duration_s}
faults:
  - {{id: stop-api, kind: stop-service, role: api{fault}}}
probes:
  - {{name: api, kind: service, role: api}}
alerts:
  - {{name: api-down, expr: api.up == 0, summary: api is down}}
recovery:
  all: ["api.up == 1"]
  for_s: 0
root_cause: stopped
hypotheses:
{choices}{before_answer}answer: {{hypothesis: down}}
"""


def stand_in_drill(
    tmp_path: Path,
    text: str,
    checklist_root: Path | None = None,
    config: dict | None = None,
    **engine,
):
    """A drill of scenario `text` on a new stand-in target, not started yet: the engine,
    the target, the clock the test moves and the workspace (`config`: its pagerdrill.yaml,
    default the reference one). `engine`: more of DrillEngine's keywords (engineer,
    mode ...)."""
    from helpers import write_workspace
    from pagerdrill.drill.checklist import load_checklist
    from pagerdrill.drill.engine import DrillEngine
    from pagerdrill.scenarios.model import parse_scenario
    from pagerdrill.workspace import load_workspace

    ws = load_workspace(write_workspace(tmp_path / "ws", config))
    sc = parse_scenario(text, tmp_path / "stand-in.yaml")
    target, clock = StandIn(), Clock()
    checklist, _ = load_checklist(checklist_root)
    engineer = engine.pop("engineer", "ci")
    drill = DrillEngine(sc, ws, target, engineer, checklist, clock=clock, **engine)
    target.journal = drill.journal_path
    return drill, target, clock, ws


def advance(engine, clock: Clock, seconds: float, step: float = 1.0) -> None:
    """Move the clock `seconds` on, a tick each `step`, or until the drill is done."""
    end = clock.now + seconds
    while clock.now < end and not engine.done:
        clock.now += step
        engine.tick()
