"""A drill screen in a known state, for snapshots: the real scenario, checklist and
runbooks of this repo, a stand-in target whose logs are fixed, a clock that does not
move, and the engine's events fed to the screen as the engine would send them.
Nothing runs: no stack, no probes, no journal; every pixel is the same each time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import REPO, write_workspace
from pagerdrill.drill.engine import DrillEngine, Phase
from pagerdrill.drill.factory import DrillFactory
from pagerdrill.journal import events as ev
from pagerdrill.scenarios.model import load_scenario
from pagerdrill.targets.base import ServiceStatus
from pagerdrill.tui.app import DrillApp
from pagerdrill.tui.screens.start import ScenarioEntry, StartChoices
from pagerdrill.workspace import load_workspace

SCENARIO = "bullmq-backpressure"
DRILL_ID = "20261122T090000Z-bullmq-backpressure-dana-0000"
T0 = 1000.0
PAGED_AT = 1060.0


def _log(ts: str, level: str, service: str, message: str, trace: str | None, **fields) -> str:
    record = {"timestamp": f"2026-11-22T09:{ts}+00:00", "level": level, "service": service,
              "trace_id": trace, "message": message, **fields}  # fmt: skip
    return json.dumps(record)


LOGS = {
    "api": [
        _log("00:58.101", "info", "api", "GET /api/markets/7 200", "a1" * 16, status=200),
        _log("01:00.220", "info", "api", "shutting down", None),
    ],
    "game": [
        _log("01:02.310", "warning", "game", "queue add slow: 812 ms", "b2" * 16),
        _log("01:03.400", "error", "game", "queue add failed: timeout", "c3" * 16),
    ],
    "traffic": [
        _log(
            "01:04.500",
            "error",
            "traffic",
            "GET /api/markets/3 failed: connection refused",
            "d4" * 16,
            route="/api/markets/{market_id}",
        ),
        _log("01:04.900", "info", "traffic", "POST /api/bets 502", "e5" * 16, status=502),
    ],
    "redis-cache": ["11:M 22 Nov 2026 09:00:01.000 * Ready to accept connections"],
    "rt": [_log("01:05.000", "info", "rt", "3 clients connected", None)],
}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StandIn:
    name = "stand-in"

    def services(self) -> list[str]:
        return list(LOGS)

    def logs(self, service: str, tail: int = 50) -> list[str]:
        return LOGS[service][-tail:]

    def service_status(self, service: str) -> ServiceStatus:
        state = "stopped" if service == "api" else "running"
        return ServiceStatus(service, state, "healthy" if state == "running" else "unknown")

    def service_endpoints(self, service: str) -> dict:
        return {}

    def is_up(self) -> bool:
        return True


def workspace(tmp: Path) -> Path:
    root = write_workspace(tmp / "ws")
    shutil.copytree(REPO / "runbooks", root / "runbooks")
    return root


def demo_engine(tmp: Path, name: str = SCENARIO) -> tuple[DrillEngine, Clock]:
    """The engine as the TUI's factory builds it, on the stand-in and the still clock."""
    factory = DrillFactory(load_workspace(workspace(tmp)), StandIn())  # type: ignore[arg-type]
    sc = factory.scenario(REPO / "scenarios" / f"{name}.yaml")
    clock = Clock()
    engine = factory.engine(sc, "Dana", mode="tui", clock=clock)
    engine.drill_id = DRILL_ID
    engine.journal_path = factory.workspace.root / "drills" / f"{DRILL_ID}.jsonl"
    return engine, clock


def demo_app(tmp: Path, name: str = SCENARIO) -> DrillApp:
    """The app over the demo engine; actions are kept in `app.sent`, never run."""
    engine, _ = demo_engine(tmp, name)
    app = DrillApp(engine, engine.target, ensure_stack=False, autostart=False)
    app.sent = []  # type: ignore[attr-defined]
    app.act = app.sent.append  # type: ignore[method-assign, attr-defined]
    return app


def sample_values(i: int) -> dict:
    """The probes' values `i` seconds into the demo: the api stops at 12 s, the queue's
    waiting count climbs, settling stops; the rest of the stack goes on."""
    down = i >= 12
    waiting = (i - 12) * 9 if down else 0
    return {
        # the scenario's probes name catalogue signals: one value each, in its unit
        "waiting": {"value": waiting},
        "api_up": {"value": 0 if down else 1},
        "settled": {"value": 0.0 if down else 5.0},
        "produced": {"value": 5.0},
        "stack.api_5xx": {"value": None if down else 0.0, "rate": None if down else 0.0},
        "stack.traffic_errors": {"value": 0.4 if down else 0.0, "rate": None},
        "stack.traffic_p95": {"value": 0.006 + (i % 3) / 1000, "rate": None},
        "stack.cache_hits": {"value": 500.0, "rate": None if down else 4.0 + (i % 2)},
        "stack.cache_misses": {"value": 20.0, "rate": None if down else 0.0},
        "stack.queue": {"value": waiting, "waiting": waiting, "delayed": 3},
        "stack.rt_accepted": {"value": 3.0, "rate": 0.0},
        "stack.rt_refused": {"value": 0.0, "rate": 0.0},
    }


def paged_events(engine: DrillEngine) -> list[ev.Event]:
    """What the engine sends up to 1:30 into the drill: the quiet, the page, the
    engineer's first steps, the queue's depth climbing."""
    alert = engine.model.alerts[0]
    out: list[ev.Event] = [
        ev.DrillStarted(drill=DRILL_ID),
        ev.State(from_="scheduled", to="steady-state"),
        ev.State(from_="steady-state", to="quiet"),
    ]
    for i in range(40):
        out.append(ev.ProbeSample(values=sample_values(i)))
    out += [
        ev.State(from_="quiet", to="fault-injected"),
        ev.AlertFiring(alert=alert.name),
        ev.Page(
            alert=alert.name,
            severity=engine.model.severity,
            summary=alert.summary,
            symptom=engine.model.symptom,
            title=engine.model.title,
        ),
        ev.State(from_="fault-injected", to="paged"),
        ev.Ack(drill_s=12.0),
        ev.StepDone(step="acknowledge", title="Acknowledge", drill_s=12.0),
        ev.State(from_="paged", to="acknowledged"),
        ev.StepDone(step="dashboards", title="Open the dashboards", drill_s=41.0),
        ev.Note(drill_s=75.0, text="waiting climbs ~9/s since 09:01; api not answering /healthz"),
    ]
    return out


def page(app: DrillApp, clock: Clock | None = None) -> None:
    """Put the engine in the paged, acknowledged state at 1:30 and render its events."""
    engine = app.engine
    engine.page_mono = PAGED_AT
    engine.phase = Phase.ACKNOWLEDGED
    engine.acknowledged = True
    engine.steps_done.update({"acknowledge": 12.0, "dashboards": 41.0})
    for event in paged_events(engine):
        # the clock reads what it read when the engine sent the event
        at = getattr(event, "drill_s", None)
        if isinstance(engine.clock, Clock):
            engine.clock.now = PAGED_AT + (at or 0.0)
        app.drill_screen.apply_event(event)
    if isinstance(engine.clock, Clock):
        engine.clock.now = PAGED_AT + 90.0
    app.drill_screen.refresh_checklist()
    app.drill_screen.refresh_status()  # the clock's tick


def start_app(tmp: Path) -> DrillApp:
    """The start screen over the repo's scenarios (nothing is built or started)."""
    entries = []
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        m = load_scenario(path).model
        entries.append(ScenarioEntry(path, m.name or path.stem, m.title, m.severity, m.symptom))

    def build(path: Path, who: str, blind: bool = False) -> DrillEngine:
        raise AssertionError("a snapshot never starts a drill")

    return DrillApp(None, StandIn(), False, start=StartChoices(entries, "Dana", build),
                    autostart=False)  # fmt: skip
