"""The drill screen: the page, the checklist, the signals and the event log, and
every key the engineer drills with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Label, OptionList, Static

from pagerdrill.drill.engine import Action, DrillEngine, Phase
from pagerdrill.journal import events as ev
from pagerdrill.targets.base import Target
from pagerdrill.timefmt import mmss
from pagerdrill.tui.drillview import DrillView, event_line, recorded
from pagerdrill.tui.modals import (
    DecisionPicker,
    HypothesisPicker,
    MitigationPicker,
    NoteInput,
    StepPrompt,
)
from pagerdrill.tui.panes import LogsScreen, RunbookScreen
from pagerdrill.tui.signals import SignalsPane
from pagerdrill.tui.wrapping import EventLog, Hanging

LOGS = "logs"


KEYS = [
    ("a", "acknowledge the page"),
    ("1-9", "tick checklist step N"),
    ("enter", "tick the highlighted step"),
    ("↑ ↓", "move in the checklist"),
    ("o", "open the highlighted step's link (its URL, or its pane)"),
    ("l", "every service's logs (e errors, v service, / filter)"),
    ("s", "error spans: warning and error lines grouped by trace_id"),
    ("/", "search the runbooks; enter opens one"),
    ("n", "write a note"),
    ("h", "state a hypothesis (a choice or free text)"),
    ("m", "apply a mitigation"),
    ("d", "make the scenario's decision"),
    ("i", "take the next hint"),
    ("r", "resolve (once the probes verify recovery)"),
    ("p", "coach: pause or resume the drill clock"),
    ("?", "this help"),
    ("q / ctrl+c", "quit: aborts the drill and reverts every fault"),
]


def help_text() -> Text:
    """Every key of the drill screen (the `?` panel)."""
    lines = Text()
    lines.append("Keys", style="bold")
    lines.append("  (esc or ? closes this)\n", style="dim")
    for key, what in KEYS:
        lines.append(f"{key:>11}  ", style="bold")
        lines.append(f"{what}\n")
    return lines


class DrillScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "ack", "Ack"),
        Binding("n", "note", "Note"),
        Binding("h", "hypothesis", "Hypothesis"),
        Binding("m", "mitigate", "Mitigate"),
        Binding("d", "decision", "Decision"),
        Binding("i", "hint", "Hint"),
        Binding("r", "resolve", "Resolve"),
        Binding("o", "open_step", "Open"),
        Binding("l", "logs", "Logs"),
        Binding("s", "spans", "Spans"),
        Binding("slash", "runbooks", "Runbooks"),
        Binding("p", "pause", "Pause"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "close_help", show=False),
        *[Binding(str(i), f"tick_step({i - 1})", show=False) for i in range(1, 10)],
    ]

    @dataclass
    class Act(Message):
        """An action for the engine: the app sends it off the UI thread."""

        action: Action

    @dataclass
    class Looked(Message):
        """The engineer looked at something: evidence of a checklist step."""

        step: str
        what: str
        detail: str

    @dataclass
    class OpenLink(Message):
        """A checklist step's link, for the browser or the clipboard."""

        step: str
        url: str

    def __init__(self, engine: DrillEngine, target: Target) -> None:
        super().__init__(id="drill-screen")
        self.engine = engine
        self.target = target
        self.page: ev.Page | None = None
        self.view = DrillView(engine.clock)
        self.feedback = engine.model.hypotheses.feedback
        self._shown: dict[str, tuple] = {}
        self._clock_asked: bool | None = None
        """The clock the coach last asked for (True: paused) until its event arrives:
        a second `p` before then asks for the opposite of the first, not for it again."""

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="banner")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Label("Checklist", classes="panel-title")
                yield OptionList(*self._step_prompts(), id="checklist")
            yield SignalsPane(self.engine.stack_rows, self.engine.watched_rows, id="signals")
        yield Static(help_text(), id="help-panel")
        yield EventLog(max_lines=200, id="events")
        yield Static(id="keys")

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self.query_one("#help-panel").display = False
        self.query_one("#checklist", OptionList).highlighted = 0
        self.refresh_status()
        self.set_interval(0.5, self.refresh_status)

    # ----------------------------------------------------------- rendering

    def _step_prompts(self) -> list[Hanging]:
        """Each step: a title too long for the pane wraps under its text (after the
        "N [ ] "), and its target and time stay together at the right of its last row."""
        sev = self.engine.model.severity
        out = []
        for i, step in enumerate(self.engine.checklist.steps, 1):
            target = step.target_for(sev)
            done = self.view.steps_done.get(step.id)
            head = Text()
            head.append(f"{i} ", style="bold")
            head.append("[✓] " if done is not None else "[ ] ", style="green" if done else "")
            title = Text(step.title)
            if step.url:
                title.append(" ↗", style="cyan")
            tail = Text(f"≤{mmss(target)}", style="dim")
            if done is not None:
                late = done > target
                tail.append(
                    f"  {mmss(done)}" + (" over target" if late else ""),
                    style="bold red" if late else "green",
                )
            out.append(Hanging(head, title, tail))
        return out

    def refresh_checklist(self) -> None:
        checklist = self.query_one("#checklist", OptionList)
        for i, prompt in enumerate(self._step_prompts()):
            checklist.replace_option_prompt_at_index(i, prompt)

    def highlight_next_open_step(self) -> None:
        """After a tick the highlight leaves a done step for the next open one (wrapping
        to the first), so enter and `o` act on a step still to do."""
        checklist = self.query_one("#checklist", OptionList)
        steps = self.engine.checklist.steps
        at = checklist.highlighted
        if at is None or not 0 <= at < len(steps) or steps[at].id not in self.view.steps_done:
            return
        order = [*range(at + 1, len(steps)), *range(at)]
        for i in order:
            if steps[i].id not in self.view.steps_done:
                checklist.highlighted = i
                return

    def phase_text(self) -> str:
        phase = self.view.phase
        if not self.view.paged:
            # before the page: never tell when (or whether) the fault is in
            return {
                Phase.SCHEDULED: "starting",
                Phase.STEADY_STATE: "steady-state: checking the stack",
                Phase.QUIET: "quiet: on call, the page can come any time",
                Phase.INJECTED: "quiet: on call, the page can come any time",
                Phase.ABORTED: "aborted",
                Phase.CLOSED: "closed",
            }.get(phase, phase.value)
        return phase.value

    def refresh_status(self) -> None:
        t = Text()
        t.append(" pagerdrill ", style="bold reverse")
        t.append(f" {self.phase_text()}")
        drill = self.view.drill_s()
        if drill is not None:
            t.append("   drill ")
            t.append(mmss(drill), style="bold")
            if self.view.paused:
                t.append(" (paused)", style="yellow")
        t.append(f"   {self.engine.engineer}", style="dim")
        self._show("#status", t, layout=False)  # one line, always
        self._show("#keys", self.keys_text(), layout=True)  # one line or two

    def _show(self, selector: str, text: Text, layout: bool) -> None:
        """Update a Static only when its text changed: an idle drill repaints nothing
        but the clock once a second."""
        key = (text.plain, tuple(text.spans))
        if self._shown.get(selector) == key:
            return
        self._shown[selector] = key
        self.query_one(selector, Static).update(text, layout=layout)

    def keys_text(self) -> Text:
        """The key bar: every key, on as many lines as the width needs (two at 80)."""
        width = max(20, self.size.width or 80)
        keys = Text()
        used = 0
        for key, what in (
            ("a", "ack"),
            ("1-9", "step"),
            ("o", "open"),
            ("n", "note"),
            ("h", "hypothesis"),
            ("m", "mitigate"),
            ("d", "decide"),
            ("i", "hint"),
            ("l", "logs"),
            ("s", "spans"),
            ("/", "runbooks"),
            ("r", "resolve"),
            ("p", "pause"),
            ("?", "help"),
            ("q", "quit"),
        ):
            on = self.view.recovered if key == "r" else True
            cell = len(key) + len(what) + 3
            if used and used + cell > width:
                keys.append("\n")
                used = 0
            keys.append(f" {key}", style="bold" if on else "dim")
            keys.append(f" {what} ", style="" if on else "dim")
            used += cell
        return keys

    def on_resize(self) -> None:
        self.refresh_status()
        events = self.query_one("#events", EventLog)
        self.call_after_refresh(events.scroll_end, animate=False)

    def show_page(self, event: ev.Page) -> None:
        self.page = event
        banner = self.query_one("#banner", Static)
        t = Text()
        t.append(f"PAGE {event.severity or ''} {event.alert}", style="bold")
        if event.title:
            t.append(f" · {event.title}")
        if event.summary:
            t.append(f"\n{event.summary}")
        t.append(f"\n{(event.symptom or '').strip()}")
        alert = next((a for a in self.engine.model.alerts if a.name == event.alert), None)
        if alert is not None and alert.runbook:
            t.append(f"\nrunbook: runbooks/{alert.runbook}.md (/ to open)", style="bold")
        banner.update(t)
        banner.display = True
        self.query_one("#signals", SignalsPane).page()
        events = self.query_one("#events", EventLog)
        self.call_after_refresh(events.scroll_end, animate=False)  # once shrunk

    def update_signals(self, values: dict) -> None:
        self.query_one("#signals", SignalsPane).sample(values)

    def write(self, line: str) -> None:
        # always follows its newest line, also once the page's banner shrinks the pane
        self.query_one("#events", EventLog).write_line(line)

    def apply_event(self, event: ev.Event) -> None:
        """Render one journal event (on the UI thread)."""
        if isinstance(event, ev.ProbeSample):
            self.update_signals(event.values)
            return
        self.view.apply(event)
        if isinstance(event, ev.Page):
            self.show_page(event)
        line = event_line(event, self.view, blind=self.engine.blind, feedback=self.feedback)
        if line is not None:
            self.write(line)
        match event:
            case ev.Ack():
                self.refresh_checklist()
            case ev.StepDone():
                self.refresh_checklist()
                self.highlight_next_open_step()
            case ev.Hypothesis():
                self.app.notify(recorded(self.feedback, event), timeout=6)
            case ev.RecoveryVerified():
                self.refresh_bindings()
            case ev.ClockPaused() | ev.ClockResumed() if self._clock_asked == self.view.paused:
                self._clock_asked = None
        self.refresh_status()

    # ------------------------------------------------------------- actions

    def act(self, action: Action) -> None:
        self.post_message(self.Act(action))

    def record(self, step: str, what: str, detail: str) -> None:
        # straight to the app: the panes this screen opens record while it is under them
        self.app.post_message(self.Looked(step, what, detail))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resolve":
            return True if self.view.recovered and not self.view.done else None
        return True

    def action_ack(self) -> None:
        self.act(Action("ack"))

    def action_tick_step(self, index: int) -> None:
        steps = self.engine.checklist.steps
        if not 0 <= index < len(steps):
            return
        step = steps[index]
        self.query_one("#checklist", OptionList).highlighted = index
        if not step.asks or step.id in self.view.steps_done:
            self.act(Action("step", step=step.id))
            return

        def answer(result: tuple[str | None, str] | None) -> None:
            if result:
                choice, reason = result
                self.act(Action("step", step=step.id, choice=choice, reason=reason))

        choices = [(c.id, c.text) for c in step.choices]
        self.app.push_screen(StepPrompt(step.title, step.prompt, choices), answer)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "checklist":
            self.action_tick_step(event.option_index)

    def action_note(self) -> None:
        def save(text: str | None) -> None:
            if text:
                self.act(Action("note", text=text))

        self.app.push_screen(NoteInput(), save)

    def action_hypothesis(self) -> None:
        def pick(result: tuple[str | None, str | None] | None) -> None:
            if result:
                choice, text = result
                self.act(Action("hypothesis", choice=choice, text=text))

        # in the drill's shuffled order (journalled), never the scenario file's
        choices = [(c.id, c.text) for c in self.engine.hypothesis_choices]
        self.app.push_screen(HypothesisPicker(choices), pick)

    def action_mitigate(self) -> None:
        def pick(mitigation: str | None) -> None:
            if mitigation:
                self.act(Action("mitigate", mitigation=mitigation))

        # in the drill's shuffled order (journalled), never the scenario file's
        mitigations = [(m.id, m.title) for m in self.engine.mitigation_choices]
        self.app.push_screen(MitigationPicker(mitigations), pick)

    def action_decision(self) -> None:
        decision = self.engine.model.decision
        if decision is None:
            self.write("this scenario has no decision to make")
            return

        def pick(choice: str | None) -> None:
            if choice:
                self.act(Action("decision", choice=choice))

        # in the drill's shuffled order (journalled), never the scenario file's
        choices = [(c.id, c.text) for c in self.engine.decision_choices]
        self.app.push_screen(DecisionPicker(decision.prompt, choices), pick)

    def action_hint(self) -> None:
        self.act(Action("hint"))

    def action_resolve(self) -> None:
        self.act(Action("resolve", text="resolved from the TUI"))

    def action_help(self) -> None:
        """Show or hide the keys: a panel over the drill screen (its own layer), not a
        screen of its own, so nothing under it is laid out again."""
        panel = self.query_one("#help-panel")
        panel.display = not panel.display

    def action_close_help(self) -> None:
        if self.query_one("#help-panel").display:
            self.action_help()

    def action_logs(self) -> None:
        self._open_logs(spans=False)

    def action_spans(self) -> None:
        self._open_logs(spans=True)

    def _open_logs(self, spans: bool) -> None:
        if not self.app.is_screen_installed(LOGS):
            formats = self.engine.workspace.config.logs
            screen = LogsScreen(self.target, self.record, spans=spans, formats=formats)
            self.app.install_screen(screen, LOGS)
        logs = self.app.get_screen(LOGS)
        assert isinstance(logs, LogsScreen)
        logs.open_as(spans)
        self.app.push_screen(LOGS)

    def action_runbooks(self) -> None:
        self.app.push_screen(RunbookScreen(self.engine.workspace.root, self.record))

    def action_pause(self) -> None:
        paused = self.view.paused if self._clock_asked is None else self._clock_asked
        self._clock_asked = not paused
        self.act(Action("resume" if paused else "pause", by="coach"))

    def action_open_step(self) -> None:
        """The highlighted step's link: the team's URL from checklist.yaml, opened in
        the browser; without one, the pane that stands in for it."""
        index = self.query_one("#checklist", OptionList).highlighted
        steps = self.engine.checklist.steps
        if index is None or not 0 <= index < len(steps):
            return
        step = steps[index]
        if step.url:
            self.post_message(self.OpenLink(step.id, step.url))
            return
        builtin = {
            "dashboards": None,
            "logs": self.action_logs,
            "error-spans": self.action_spans,
            "recurrence": self.action_runbooks,
        }
        if step.id not in builtin:
            self.app.notify(f"'{step.title}' has no link (set url: in checklist.yaml)")
            return
        opener = builtin[step.id]
        if opener is None:  # the signals panel is the drill's dashboard
            self.record(step.id, "signals", "the drill's signals panel")
            self.query_one("#signals").focus()
            return
        opener()
