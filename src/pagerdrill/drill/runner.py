"""Headless drills: a script of timed engineer actions instead of a person at a TUI.

A script is YAML:

    version: 1
    actions:
      - {at: 2, do: ack}                   # 2 s after the page (drill clock)
      - {after: 1, do: step, step: dashboards}
      - {do: step, step: page-lead, choice: no-page, reason: "P2, contained; lead posted"}
      - {do: note, text: queue depth climbing}
      - {do: hypothesis, choice: consumer-down}   # or text: "..."
      - {do: decision, choice: backlog}
      - {do: mitigate, mitigation: start-api}
      - {wait: recovered}                  # until the probes verify recovery
      - {do: resolve}

`at` is seconds on the drill clock; `after` is seconds after the previous action
(the default, 0). A checklist step that asks (a `prompt`, `choices`: page the lead or
not) takes the call as `choice` and the why as `reason`. `--autopilot` builds such a
script from the scenario's answer key, which makes every scenario a self-test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pagerdrill.drill.checklist import Checklist
from pagerdrill.drill.engine import (
    ACTIONS,
    EVIDENCE,
    Action,
    ActionDetail,
    ActionRefused,
    DrillEngine,
)
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.journal.events import ScriptRefused
from pagerdrill.scenarios.model import Scenario
from pagerdrill.workspace.yamlfile import LineMap, load_yaml, validate

Verb = Literal[
    "ack", "step", "note", "hypothesis", "decision", "mitigate", "hint", "resolve",
    "pause", "resume", "abort", "evidence",
]  # fmt: skip
assert set(Verb.__args__) == set(ACTIONS)  # type: ignore[attr-defined]
Evidence = Literal["logs", "error-spans", "runbook-search", "runbook-open", "url", "signals"]
assert set(Evidence.__args__) == set(EVIDENCE)  # type: ignore[attr-defined]


MAX_SCRIPT_S = 24 * 3600.0
"""No scripted action waits longer than a day (a drill ends long before)."""


class ScriptAction(ActionDetail):
    """One entry of a script: when (`at`, `after`) and what (`do` and the fields of the
    engine's Action), or a `wait`."""

    # a finite time within a day: `1e999` reads as infinity and would never come
    at: float | None = Field(default=None, ge=0, le=MAX_SCRIPT_S, allow_inf_nan=False)
    after: float | None = Field(default=None, ge=0, le=MAX_SCRIPT_S, allow_inf_nan=False)
    wait: Literal["recovered"] | None = None
    do: Verb | None = None
    what: Evidence | None = None  # a script names its evidence when it loads

    @model_validator(mode="after")
    def _one_thing(self) -> ScriptAction:
        if (self.do is None) == (self.wait is None):
            raise ValueError("each entry has either `do` or `wait`")
        if self.at is not None and self.after is not None:
            raise ValueError("use `at` or `after`, not both")
        return self

    def action(self) -> Action:
        assert self.do is not None
        return Action(self.do, **self.model_dump(include=set(ActionDetail.model_fields)))


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    actions: list[ScriptAction] = Field(min_length=1)


def load_script(path: Path) -> list[ScriptAction]:
    return load_script_lines(path)[0]


def load_script_lines(path: Path) -> tuple[list[ScriptAction], LineMap]:
    """The script's actions and where each is in the file."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping with `actions:`")])
    return validate(Script, data, path, lines).actions, lines


def check_script(
    actions: list[ScriptAction],
    scenario: Scenario,
    checklist: Checklist,
    path: Path,
    lines: LineMap | None = None,
) -> None:
    """Names in the script (steps, choices, mitigations) exist, before the drill starts."""
    m = scenario.model
    problems: list[tuple[int | None, str]] = []
    steps = {s.id for s in checklist.steps}
    hyps = {c.id for c in m.hypotheses.choices}
    decisions = {c.id for c in m.decision.choices} if m.decision else set()
    mits = {x.id for x in m.mitigations}
    for i, a in enumerate(actions):
        where = f"actions[{i}]"

        def bad(message: str, key: str | None = None, i: int = i, where: str = where) -> None:
            loc: tuple = ("actions", i, key) if key else ("actions", i)
            problems.append((lines.line_of(loc) if lines else None, f"{where}: {message}"))

        if a.do == "step" and a.step not in steps:
            bad(f"no checklist step {a.step!r} (steps: {', '.join(sorted(steps))})", "step")
        elif a.do == "step" and a.step is not None:
            step = checklist.step(a.step)
            assert step is not None
            ids = [c.id for c in step.choices]
            if ids and a.choice not in ids:
                bad(f"step {a.step!r} asks for a choice: {' or '.join(ids)}", "choice")
            if step.asks and not (a.reason or "").strip():
                bad(f"step {a.step!r} asks why: give a `reason` ({step.prompt or step.title})")
        if a.do == "hypothesis" and a.choice is not None and a.choice not in hyps:
            bad(f"no hypothesis choice {a.choice!r} ({', '.join(sorted(hyps))})", "choice")
        if a.do == "decision" and a.choice not in decisions:
            known = ", ".join(sorted(decisions)) or "this scenario has no decision"
            bad(f"no decision choice {a.choice!r} ({known})", "choice")
        if a.do == "mitigate" and a.mitigation not in mits:
            bad(f"no mitigation {a.mitigation!r} ({', '.join(sorted(mits))})", "mitigation")
        if a.do == "resume" and a.at is not None:
            # `at` reads the drill clock, which a pause stops: it would never come
            bad("a resume cannot use `at` (the paused clock stands still); use `after`", "at")
    if problems:
        raise ConfigError(path, problems)


def autopilot(scenario: Scenario, checklist: Checklist, pace_s: float = 0.25) -> list[ScriptAction]:
    """The scenario's answer key as a script: every checklist step, the notes, the right
    hypothesis and decision, the mitigations, then resolve once recovery is verified."""
    answer = scenario.model.answer
    out = [ScriptAction(after=pace_s, do="ack", text="ack (autopilot)")]
    for step in checklist.steps:
        if step.id == "acknowledge":
            continue
        if step.asks:
            # the autopilot makes the step's first call and says it is the autopilot's
            choice = step.choices[0].id if step.choices else None
            why = f"(autopilot) {step.prompt or step.title}"
            out.append(
                ScriptAction(after=pace_s, do="step", step=step.id, choice=choice, reason=why)
            )
        else:
            out.append(ScriptAction(after=pace_s, do="step", step=step.id))
    for note in answer.notes:
        out.append(ScriptAction(after=pace_s, do="note", text=note))
    out.append(ScriptAction(after=pace_s, do="hypothesis", choice=answer.hypothesis))
    if answer.decision:
        out.append(ScriptAction(after=pace_s, do="decision", choice=answer.decision))
    for mitigation in answer.mitigations:
        out.append(ScriptAction(after=pace_s, do="mitigate", mitigation=mitigation))
    out.append(ScriptAction(wait="recovered"))
    out.append(ScriptAction(after=pace_s, do="resolve", text="recovered (autopilot)"))
    return out


class Player:
    """Plays a script against an engine, from the page on."""

    def __init__(self, actions: list[ScriptAction], clock: Callable[[], float] = time.monotonic):
        self.actions = list(actions)
        self.clock = clock
        self.index = 0
        self.last_at: float | None = None
        self.refused: list[tuple[int, str]] = []

    @property
    def finished(self) -> bool:
        return self.index >= len(self.actions)

    def play(self, engine: DrillEngine) -> None:
        """Perform every action whose time has come."""
        while not engine.done and not self.finished and engine.page_mono is not None:
            a = self.actions[self.index]
            now = self.clock()
            if a.wait == "recovered":
                if not engine.recovered:
                    return
            elif a.at is not None:
                if (engine.drill_s(now) or 0.0) < a.at:
                    return
            else:
                since = self.last_at if self.last_at is not None else engine.page_mono
                if now - since < (a.after or 0.0):
                    return
            if engine.paused and a.do not in ("resume", "abort"):
                return  # a paused clock holds the engineer's actions, not the coach's
            self.index += 1
            self.last_at = now
            if a.do is None:
                continue
            try:
                engine.act(a.action())
            except (ActionRefused, BadInputError) as exc:
                self.refused.append((self.index - 1, str(exc)))
                engine.record(ScriptRefused(index=self.index - 1, action=a.do, reason=str(exc)))


class Cadence:
    """Ticks an engine every `interval_s` of its scenario; a slow cycle is skipped, not
    made up in a burst. Runners (headless, the TUI) share it."""

    def __init__(self, engine: DrillEngine):
        self.engine = engine
        self.interval = engine.model.interval_s
        self.next_tick = engine.clock()

    def tick_if_due(self) -> bool:
        now = self.engine.clock()
        if now < self.next_tick:
            return False
        self.engine.tick()
        self.next_tick += self.interval
        if self.next_tick < now:
            self.next_tick = now + self.interval
        return True

    def wait_s(self) -> float:
        """How long until the next tick is due."""
        return max(0.0, self.next_tick - self.engine.clock())


def run_drill(
    engine: DrillEngine,
    player: Player,
    interrupt: threading.Event,
    *,
    poll_s: float = 0.05,
    why: Callable[[], str] | None = None,
) -> None:
    """Start the engine and drive it until it closes or aborts. An interrupt (Ctrl-C,
    SIGTERM, SIGHUP; `why` says which) or an error aborts it, and the abort reverts
    every fault. An error while interrupted (output to a reader that is gone) is part of
    the interrupt, not the reason the drill ended."""

    def interrupted() -> str:
        return why() if why is not None else "interrupted (Ctrl-C or SIGTERM)"

    engine.start()
    cadence = Cadence(engine)
    try:
        while not engine.done:
            if interrupt.is_set():
                engine.abort(interrupted())
                break
            cadence.tick_if_due()
            player.play(engine)
            interrupt.wait(min(poll_s, cadence.wait_s()))
    except BaseException as exc:
        engine.abort(interrupted() if interrupt.is_set() else f"error: {exc!r}")
        raise
    finally:
        if not engine.done:
            engine.abort("the runner stopped")
