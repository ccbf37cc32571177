"""The start screen: pick a scenario (or a blind one) and say who is drilling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from pagerdrill.drill.engine import DrillEngine
from pagerdrill.drill.factory import DrillFactory
from pagerdrill.errors import PagerdrillError
from pagerdrill.tui.readiness import ReadinessPanel, StartReadiness, assigned_first, is_assigned

log = logging.getLogger("pagerdrill.tui")

BLIND_ID = "blind"
BLIND_TEXT = "Blind: a random scenario, name hidden until the end"


@dataclass(frozen=True)
class ScenarioEntry:
    """A scenario as the start screen lists it: never its root cause."""

    path: Path
    name: str
    title: str
    severity: str
    symptom: str


def scenario_entries(factory: DrillFactory) -> list[ScenarioEntry]:
    """The workspace's scenarios as the start screen lists them; one that does not load
    is left off (and logged), the others stay."""
    from pagerdrill.scenarios.model import scenario_files

    entries = []
    for path in scenario_files(factory.workspace.root):
        try:
            m = factory.scenario(path).model
        except PagerdrillError as exc:
            log.warning("scenario %s left off the start screen: %s", path, exc)
            continue
        entries.append(ScenarioEntry(path, m.name or path.stem, m.title, m.severity, m.symptom))
    return entries


EngineBuilder = Callable[[Path, str, bool], DrillEngine]
"""(scenario file, engineer, blind) -> an engine, not started."""


@dataclass(frozen=True)
class StartChoices:
    scenarios: list[ScenarioEntry]
    engineer: str
    build: EngineBuilder
    readiness: StartReadiness | None = None
    """The engineer's readiness (items left, the scenario the lead assigned), if known."""


class StartScreen(Screen[None]):
    """Pick a scenario (or a blind one) and say who is drilling."""

    @dataclass
    class Picked(Message):
        """The engineer picked a scenario (None: a blind one) and said who drills."""

        entry: ScenarioEntry | None
        engineer: str

    def __init__(self, choices: StartChoices) -> None:
        super().__init__(id="start-screen")
        self.choices = choices

    def compose(self) -> ComposeResult:
        options = []
        ready = self.choices.readiness
        names = [(e.name, e.path.stem) for e in self.choices.scenarios]
        for i in assigned_first(names, ready):
            entry = self.choices.scenarios[i]
            t = Text()
            if is_assigned(ready, *names[i]):
                t.append(f"★ assigned by {ready and ready.assigned_by}  ", style="bold yellow")
            t.append(entry.title, style="bold")
            t.append(f"  ({entry.severity})\n", style="dim")
            t.append(entry.symptom.strip())
            options.append(Option(t, id=f"scenario-{i}"))
        options.append(Option(Text(BLIND_TEXT, style="italic"), id=BLIND_ID))
        with Vertical(id="start"):
            yield Label("Pick a scenario (enter starts the drill)", classes="panel-title")
            yield OptionList(*options, id="scenarios")
            if ready is not None:
                yield ReadinessPanel(ready)
            yield Label("Engineer", classes="panel-title")
            yield Input(value=self.choices.engineer, placeholder="who is drilling", id="engineer")
        yield Static(Text(" enter start   tab engineer / scenarios   q quit"), id="start-keys")

    def on_mount(self) -> None:
        self.query_one("#scenarios", OptionList).highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        scenarios = self.query_one("#scenarios", OptionList)
        index = scenarios.highlighted
        if index is not None:
            self.pick(scenarios.get_option_at_index(index).id)

    def pick(self, option_id: str | None) -> None:
        engineer = self.query_one("#engineer", Input).value.strip()
        if not engineer:
            self.notify("type who is drilling first", severity="warning")
            self.query_one("#engineer", Input).focus()
            return
        entry = None
        if option_id and option_id.startswith("scenario-"):
            entry = self.choices.scenarios[int(option_id.removeprefix("scenario-"))]
        self.post_message(self.Picked(entry, engineer))
