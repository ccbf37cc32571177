"""`pagerdrill drill`: the interactive drill, a Textual app over `DrillEngine`.

The app renders the engine's state and sends the engineer's actions; it never blocks
on the stack. Bringing the stack up, the probe cycle (`engine.tick()`), every
`engine.act()` (a mitigation restarts services) and the abort all run in thread
workers. The engine's events come back as messages (`post_message` is thread-safe
and never waits on the UI, so an engine thread holding its lock cannot deadlock
against the UI thread). Before the page nothing on screen tells when the fault
comes or what it is: the quiet period's length and the fault events are not shown.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from pagerdrill.drill.engine import Action, ActionRefused, DrillEngine, Phase
from pagerdrill.drill.runner import Cadence
from pagerdrill.drill.stackhold import StackHold, requested_abort
from pagerdrill.errors import BadInputError, PagerdrillError
from pagerdrill.reports.timeline import before_fault_line, faded_line, grade_text
from pagerdrill.targets.base import Target
from pagerdrill.timefmt import mmss
from pagerdrill.tui.panes import LogsScreen, RunbookScreen, key_bar
from pagerdrill.tui.readiness import (
    ReadinessPanel,
    StartReadiness,
    assigned_first,
    is_assigned,
    start_readiness,
)
from pagerdrill.tui.signals import SignalsPane
from pagerdrill.tui.wrapping import EventLog, Hanging, hang
from pagerdrill.workspace import default_engineer

log = logging.getLogger("pagerdrill.tui")

QUIT_REASON = "quit from the TUI"
LOGS = "logs"
EXIT_GRACE_S = 3.0

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


# ---------------------------------------------------------------- messages


class EngineEvent(Message):
    """An event the engine journalled (sent from whichever thread drove the engine)."""

    def __init__(self, event: dict) -> None:
        super().__init__()
        self.event = event


class StackLine(Message):
    """A line of progress while the stack comes up."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Notice(Message):
    """Something the engineer should see (an action refused, an error)."""

    def __init__(self, text: str, severity: str = "warning") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class DrillFinished(Message):
    """The engine closed or aborted; the summary is computed from the journal."""

    def __init__(self, summary: dict) -> None:
        super().__init__()
        self.summary = summary


class QuitDone(Message):
    """The abort (and its reverts) finished: the app can exit."""


# ---------------------------------------------------------------- modals


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Quit the drill?", classes="dialog-title")
            yield Label("The drill is aborted and every fault is reverted.")
            with Horizontal(classes="buttons"):
                yield Button("Quit (y)", variant="error", id="yes")
                yield Button("Go on (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Reverting(ModalScreen[None]):
    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("reverting…", id="reverting")
            yield Label("putting every fault back before exiting", classes="dim")


class NoteInput(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Note (enter saves, esc cancels)", classes="dialog-title")
            yield Input(placeholder="what you see, what you did", id="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HypothesisPicker(ModalScreen[tuple[str | None, str | None] | None]):
    """The scenario's choices, or free text: dismisses with (choice, text)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Hypothesis: pick one (enter) or type your own", classes="dialog-title")
            yield OptionList(
                *[Option(text, id=cid) for cid, text in self.choices], id="hypothesis-choices"
            )
            yield Input(placeholder="or in your own words (enter)", id="hypothesis-text")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss((event.option.id, None))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss((None, text) if text else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DecisionPicker(ModalScreen[str | None]):
    """The scenario's decision: its prompt and choices; dismisses with the choice id.
    The prompt wraps, whole, and the dialog scrolls where the terminal cannot hold it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#decision-choices"

    def __init__(self, prompt: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.prompt = prompt
        self.choices = choices

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="decision"):
            yield Static(f"Decision: {self.prompt}", classes="dialog-title", markup=False)
            yield OptionList(
                *[Option(text, id=cid) for cid, text in self.choices], id="decision-choices"
            )
            yield Label("enter picks, esc cancels", classes="dim")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class StepPrompt(ModalScreen[tuple[str | None, str] | None]):
    """A checklist step that asks ("decide whether to page the lead, and say why"): its
    prompt, the call to make (its choices) and the reason; dismisses with (call, why)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str | None, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.step_title = title
        self.prompt = prompt
        self.choices = choices
        self.choice: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.step_title, classes="dialog-title")
            if self.prompt:
                yield Label(self.prompt, id="step-prompt")
            if self.choices:
                yield OptionList(
                    *[Option(text, id=cid) for cid, text in self.choices], id="step-choices"
                )
            yield Input(placeholder="why (enter saves, esc cancels)", id="step-reason")

    def on_mount(self) -> None:
        if not self.choices:
            self.query_one(Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choice = event.option.id
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        reason = event.value.strip()
        if self.choices and self.choice is None:
            # the call on screen is the highlighted one, picked with enter or not
            highlighted = self.query_one(OptionList).highlighted
            if highlighted is not None:
                self.choice = self.choices[highlighted][0]
        if self.choices and self.choice is None:
            self.app.notify("pick the call first (↑ ↓, enter)", severity="warning")
            self.query_one(OptionList).focus()
        elif not reason:
            self.app.notify("say why", severity="warning")
        else:
            self.dismiss((self.choice, reason))

    def action_cancel(self) -> None:
        self.dismiss(None)


class MitigationPicker(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, mitigations: list[tuple[str, str]]) -> None:
        super().__init__()
        self.mitigations = mitigations

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Mitigation: pick one (enter), esc cancels", classes="dialog-title")
            if self.mitigations:
                yield OptionList(
                    *[Option(f"{title}  [{mid}]", id=mid) for mid, title in self.mitigations],
                    id="mitigations",
                )
            else:
                yield Label("this scenario lists no mitigations")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def help_text() -> Text:
    """Every key of the drill screen (the `?` panel)."""
    lines = Text()
    lines.append("Keys", style="bold")
    lines.append("  (esc or ? closes this)\n", style="dim")
    for key, what in KEYS:
        lines.append(f"{key:>11}  ", style="bold")
        lines.append(f"{what}\n")
    return lines


# ---------------------------------------------------------------- summary


def summary_text(summary: dict, root_cause: str | None = None, width: int = 80) -> Text:
    """The summary for a terminal `width` columns wide: the step titles' column is as
    wide as the longest title, within what the times leave of the width (30 at least);
    a longer title wraps under its own text, and its target and time stay in their
    columns on its last row, so every step's times line up."""
    out = Text()
    longest = max((len(step["title"]) for step in summary["steps"]), default=0)
    title_w = max(30, min(longest, width - 30))
    if summary["outcome"] == "closed":
        verified = summary["recovery_verified"]
        out.append(
            "Drill closed, recovery " + ("verified\n" if verified else "NOT verified\n"),
            style="bold green" if verified else "bold yellow",
        )
    else:
        out.append(f"Drill {summary['outcome']}", style="bold red")
        out.append(f": {summary.get('abort_reason') or ''}\n")
    out.append(
        f"{summary.get('title') or summary.get('scenario')} ({summary.get('severity')}), "
        f"engineer {summary.get('engineer')}\n"
    )
    if summary["paged"]:
        out.append(f"paged by {summary.get('page_alert')}; ")
        out.append(f"acknowledged at {mmss(summary.get('time_to_ack_s'))}\n")
    else:
        out.append("no page\n")
    out.append("\nChecklist" + " " * (title_w - 7) + "target   done\n", style="bold")
    for step in summary["steps"]:
        rows = hang(Text("  "), Text(step["title"]), title_w + 2)
        for row in rows[:-1]:
            out.append_text(row)
            out.append("\n")
        last = rows[-1]
        last.pad_right(title_w + 2 - last.cell_len)
        out.append_text(last)
        done = step["done_s"]
        out.append(f"{mmss(step['target_s']):>6}  ")
        if done is None:
            out.append("    —\n", style="dim")
        elif step["met"]:
            out.append(f"{mmss(done):>5} ✓\n", style="green")
        else:
            out.append(f"{mmss(done):>5} over target\n", style="red")
    hyp = summary["hypothesis"]
    out.append("\nHypothesis: ", style="bold")
    if hyp["attempts"]:
        grade = hyp["grade"]
        at = hyp["correct_s"] if grade == "right" else hyp["first_s"]
        style = {"right": "green", "wrong": "red"}.get(grade, "yellow")
        out.append(grade_text(grade), style=style)
        out.append(f" at {mmss(at)} (target {mmss(hyp['target_s'])}); first: {hyp['first_text']}\n")
    else:
        out.append("none given\n")
    if root_cause and summary["paged"]:
        out.append("Root cause: ", style="bold")
        out.append(root_cause.strip() + "\n")
    decision = summary.get("decision")
    if decision:
        out.append("Decision: ", style="bold")
        right = decision.get("correct")
        out.append(f"{decision.get('choice')} ")
        out.append(
            "(right)\n" if right else "(not the expected call)\n",
            style="green" if right else "yellow",
        )
    out.append(f"Hints used: {summary.get('hints_used', 0)}; notes: {summary.get('notes', 0)}\n")
    out.append("Mitigated at ", style="bold")
    out.append(f"{mmss(summary.get('time_to_mitigate_s'))}; ")
    out.append("recovery verified at ", style="bold")
    out.append(f"{mmss(summary.get('time_to_recovery_s'))}\n")
    for line in (faded_line(summary), before_fault_line(summary)):
        if line:  # what every export says of the drill, the summary says too
            out.append(line[0].upper() + line[1:] + "\n", style="yellow")
    if summary.get("revert_failed"):
        out.append(
            f"NOT reverted: {', '.join(summary['revert_failed'])} (run `pagerdrill recover`)\n",
            style="bold red",
        )
    out.append("\nJournal: ", style="bold")
    out.append(f"{summary['journal']}\n")
    return out


class SummaryScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape,enter", "app.quit", "Quit"),
        Binding("s,c", "export", "Slack timeline"),
    ]

    def __init__(self, summary: dict, root_cause: str | None = None, config: Any = None) -> None:
        super().__init__(id="summary-screen")
        self.summary = summary
        self.root_cause = root_cause
        self.config = config
        self.exported: Path | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="summary"):
            yield Static(self._text(), id="summary-text")
        keys = key_bar(("s", "copy the timeline for Slack (and save it)"), ("q", "quit"))
        yield Static(keys, id="summary-keys")

    def _text(self) -> Text:
        return summary_text(self.summary, self.root_cause, width=self.app.size.width)

    def on_resize(self) -> None:
        self.query_one("#summary-text", Static).update(self._text())

    def action_export(self) -> None:
        """The timeline in the seed's Slack-paste form, redacted: saved next to the
        journal and put on the clipboard (OSC 52, where the terminal allows it)."""
        from pagerdrill.reports.text import slack_text, write_export
        from pagerdrill.reports.timeline import load_redacted

        journal = Path(self.summary["journal"])
        out = journal.with_suffix(".slack.txt")
        try:
            text = slack_text(load_redacted(journal, self.config, samples=False))
            write_export(out, text)
        except (OSError, PagerdrillError) as exc:
            self.app.notify(f"could not export the timeline: {exc}", severity="error")
            return
        self.exported = out
        self.app.copy_to_clipboard(text)
        self.app.notify(f"timeline copied; saved to {out}", timeout=10)


# ---------------------------------------------------------------- drill screen


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

    def __init__(self, engine: DrillEngine) -> None:
        super().__init__(id="drill-screen")
        self.engine = engine
        self.page: dict | None = None
        self._shown: dict[str, tuple] = {}

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
            done = self.engine.steps_done.get(step.id)
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
        if at is None or not 0 <= at < len(steps) or steps[at].id not in self.engine.steps_done:
            return
        order = [*range(at + 1, len(steps)), *range(at)]
        for i in order:
            if steps[i].id not in self.engine.steps_done:
                checklist.highlighted = i
                return

    def phase_text(self) -> str:
        phase = self.engine.phase
        if self.engine.page_mono is None:
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
        e = self.engine
        t = Text()
        t.append(" pagerdrill ", style="bold reverse")
        t.append(f" {self.phase_text()}")
        drill = e.drill_s()
        if drill is not None:
            t.append("   drill ")
            t.append(mmss(drill), style="bold")
            if e.paused:
                t.append(" (paused)", style="yellow")
        t.append(f"   {e.engineer}", style="dim")
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
            on = self.engine.recovered if key == "r" else True
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

    def show_page(self, event: dict) -> None:
        self.page = event
        banner = self.query_one("#banner", Static)
        t = Text()
        t.append(f"PAGE {event.get('severity') or ''} {event.get('alert')}", style="bold")
        if event.get("title"):
            t.append(f" · {event['title']}")
        if event.get("summary"):
            t.append(f"\n{event['summary']}")
        t.append(f"\n{(event.get('symptom') or '').strip()}")
        alert = next((a for a in self.engine.model.alerts if a.name == event.get("alert")), None)
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

    def apply_event(self, event: dict) -> None:
        """Render one journal event (on the UI thread)."""
        kind = event.get("type")
        paged = self.engine.page_mono is not None or kind == "page"
        at = f"[{mmss(event['drill_s'])}] " if event.get("drill_s") is not None else ""
        if kind == "probe.sample":
            self.update_signals(event.get("values") or {})
            return
        if kind == "drill.started":
            # the drill id names the scenario: a blind drill keeps it hidden
            self.write(
                "drill started (blind)"
                if self.engine.blind
                else f"drill started: {event.get('drill')}"
            )
        elif kind == "state" and event.get("to") == "steady-state":
            self.write("checking that the stack is steady…")
        elif kind == "state" and event.get("to") == "quiet":
            self.write("steady. You are on call: wait for the page.")
        elif kind == "page":
            self.show_page(event)
            self.write(f"PAGE: {event.get('alert')}: {event.get('summary') or ''}")
        elif kind == "ack":
            self.write(f"{at}acknowledged")
            self.refresh_checklist()
        elif kind == "step.done":
            late = " (over target)" if event.get("over") else ""
            call = event.get("choice_text") or event.get("choice")
            said = f": {call}" if call else ""
            said += f" (why: {event['reason']})" if event.get("reason") else ""
            self.write(f"{at}done: {event.get('title')}{said}{late}")
            self.refresh_checklist()
            self.highlight_next_open_step()
        elif kind == "note":
            self.write(f"{at}note: {event.get('text')}")
        elif kind == "hypothesis":
            # the trainee sees it was recorded; the grade only with `feedback: live`
            said = "hypothesis recorded"
            if self.engine.model.hypotheses.feedback == "live":
                said += f" ({grade_text(event.get('grade'))})"
            self.write(f"{at}{said}: {event.get('text')}")
            self.app.notify(said, timeout=6)
        elif kind == "decision":
            self.write(f"{at}decision: {event.get('text')}")
        elif kind == "hint":
            self.write(f"{at}hint {event.get('index')}: {event.get('text')}")
        elif kind == "mitigation.started":
            self.write(f"{at}applying mitigation {event.get('mitigation')}…")
        elif kind == "mitigation":
            self.write(f"{at}mitigation applied: {event.get('title')}")
        elif kind == "mitigation.failed":
            self.write(f"{at}mitigation {event.get('mitigation')} FAILED: {event.get('error')}")
        elif kind in ("alert.firing", "alert.resolved") and paged:
            self.write(f"{at}alert {event.get('alert')} {kind.removeprefix('alert.')}")
        elif kind == "recovery.verified":
            self.write(f"{at}recovery verified by the probes: press r to resolve")
            self.refresh_bindings()
        elif kind == "abort.requested":
            self.write(f"aborting ({event.get('reason')}): reverting…")
        elif kind == "drill.aborted":
            self.write(f"drill aborted: {event.get('reason')}")
        elif kind == "drill.closed":
            self.write("drill closed")
        elif kind == "clock.paused":
            self.write(f"{at}clock paused by {event.get('by')}")
        elif kind == "clock.resumed":
            self.write(f"{at}clock resumed by {event.get('by')}")
        elif kind == "evidence":
            detail = f": {event['about']}" if event.get("about") else ""
            self.write(f"{at}opened {event.get('what')}{detail}")
        self.refresh_status()

    # ------------------------------------------------------------- actions

    @property
    def drill_app(self) -> DrillApp:
        assert isinstance(self.app, DrillApp)
        return self.app

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resolve":
            return True if self.engine.recovered and not self.engine.done else None
        return True

    def action_ack(self) -> None:
        self.drill_app.act(Action("ack"))

    def action_tick_step(self, index: int) -> None:
        steps = self.engine.checklist.steps
        if not 0 <= index < len(steps):
            return
        step = steps[index]
        self.query_one("#checklist", OptionList).highlighted = index
        if not step.asks or step.id in self.engine.steps_done:
            self.drill_app.act(Action("step", step=step.id))
            return

        def answer(result: tuple[str | None, str] | None) -> None:
            if result:
                choice, reason = result
                self.drill_app.act(Action("step", step=step.id, choice=choice, reason=reason))

        choices = [(c.id, c.text) for c in step.choices]
        self.app.push_screen(StepPrompt(step.title, step.prompt, choices), answer)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "checklist":
            self.action_tick_step(event.option_index)

    def action_note(self) -> None:
        def save(text: str | None) -> None:
            if text:
                self.drill_app.act(Action("note", text=text))

        self.app.push_screen(NoteInput(), save)

    def action_hypothesis(self) -> None:
        def pick(result: tuple[str | None, str | None] | None) -> None:
            if result:
                choice, text = result
                self.drill_app.act(Action("hypothesis", choice=choice, text=text))

        # in the drill's shuffled order (journalled), never the scenario file's
        choices = [(c.id, c.text) for c in self.engine.hypothesis_choices]
        self.app.push_screen(HypothesisPicker(choices), pick)

    def action_mitigate(self) -> None:
        def pick(mitigation: str | None) -> None:
            if mitigation:
                self.drill_app.act(Action("mitigate", mitigation=mitigation))

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
                self.drill_app.act(Action("decision", choice=choice))

        # in the drill's shuffled order (journalled), never the scenario file's
        choices = [(c.id, c.text) for c in self.engine.decision_choices]
        self.app.push_screen(DecisionPicker(decision.prompt, choices), pick)

    def action_hint(self) -> None:
        self.drill_app.act(Action("hint"))

    def action_resolve(self) -> None:
        self.drill_app.act(Action("resolve", text="resolved from the TUI"))

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
            self.app.install_screen(
                LogsScreen(self.drill_app.target, self.drill_app.record, spans=spans), LOGS
            )
        logs = self.app.get_screen(LOGS)
        assert isinstance(logs, LogsScreen)
        logs.open_as(spans)
        self.app.push_screen(LOGS)

    def action_runbooks(self) -> None:
        self.app.push_screen(RunbookScreen(self.engine.workspace.root, self.drill_app.record))

    def action_pause(self) -> None:
        self.drill_app.act(Action("resume" if self.engine.paused else "pause", by="coach"))

    def action_open_step(self) -> None:
        """The highlighted step's link: the team's URL from checklist.yaml, opened in
        the browser; without one, the pane that stands in for it."""
        index = self.query_one("#checklist", OptionList).highlighted
        steps = self.engine.checklist.steps
        if index is None or not 0 <= index < len(steps):
            return
        step = steps[index]
        if step.url:
            self.drill_app.open_step_url(step.id, step.url)
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
            self.drill_app.record(step.id, "signals", "the drill's signals panel")
            self.query_one("#signals").focus()
            return
        opener()


# ---------------------------------------------------------------- start screen

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
        assert isinstance(self.app, DrillApp)
        self.app.start_scenario(entry, engineer)


# ---------------------------------------------------------------- the app


class DrillApp(App[None]):
    """One drill, interactive. Dependencies come in: the engine (not started) and the
    target; with `ensure_stack` the app brings the stack up first if it is down.

    Without an engine, `start` lists the scenarios first and builds the engine once the
    engineer picks one. With `autostart=False` the drill is never started (tests)."""

    CSS_PATH = "drill.tcss"
    TITLE = "pagerdrill drill"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "request_quit", "Quit"),
        Binding("ctrl+c", "request_quit", "Quit", priority=True, show=False),
    ]

    def __init__(
        self,
        engine: DrillEngine | None,
        target: Target,
        ensure_stack: bool = True,
        *,
        start: StartChoices | None = None,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        if engine is None and start is None:
            raise ValueError("DrillApp needs an engine or the start choices")
        self.target = target
        self.ensure_stack = ensure_stack
        self.start = start
        self.autostart = autostart
        self._engine: DrillEngine | None = None
        self._drill_screen: DrillScreen | None = None
        self.summary: dict | None = None
        self.quitting = False
        self.keep_stack = True
        """False: take the stack down on exit when this app brought it up."""
        self.hold: StackHold | None = None
        """The drill's hold on the stack: its lock, and whether it started the stack."""
        self._recorded: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        if engine is not None:
            self._use(engine)

    def _use(self, engine: DrillEngine) -> None:
        self._engine = engine
        self.hold = StackHold(engine, self.target)
        self._drill_screen = DrillScreen(engine)
        engine.observers.append(self._observe)

    @property
    def engine(self) -> DrillEngine:
        assert self._engine is not None, "no scenario picked yet"
        return self._engine

    @property
    def drill_screen(self) -> DrillScreen:
        assert self._drill_screen is not None, "no scenario picked yet"
        return self._drill_screen

    # ----------------------------------------------------- engine threads

    def _observe(self, event: dict) -> None:
        """Engine observer: called on the thread driving the engine, maybe under its
        lock; posting a message never waits on the UI."""
        self.post_message(EngineEvent(event))

    def _say(self, text: str) -> None:
        self.post_message(StackLine(text))

    def _progress(self, event: Any) -> None:
        phase = "already running" if event.phase == "running" else event.phase
        self.post_message(StackLine(f"  {event.service:<12} {phase:<16} {event.elapsed_s:6.2f} s"))

    @work(thread=True, exclusive=True, group="drive", exit_on_error=False)
    def drive(self) -> None:
        """Bring the stack up, start the engine, tick it on the scenario's cadence."""
        worker = get_current_worker()
        engine = self.engine

        def stopping() -> bool:
            return worker.is_cancelled or self._stop.is_set()

        assert self.hold is not None
        try:
            # the drill lock before anything starts: a drill it refuses touches nothing
            self.hold.bring_up(
                self._progress,
                ensure=self.ensure_stack,
                announce=lambda: self._say("starting the stack:"),
            )
            if self.hold.started_stack:
                self.post_message(StackLine("the stack is up"))
            if stopping() or engine.done:
                return
            engine.start()
            cadence = Cadence(engine)
            while not engine.done and not stopping():
                cadence.tick_if_due()
                self._wake.wait(cadence.wait_s())
                self._wake.clear()
        except Exception as exc:
            log.exception("the drill failed")
            engine.abort(f"error: {exc!r}")
            self.post_message(Notice(f"the drill failed: {exc}", "error"))
        if engine.done and not stopping() and engine.journal is not None:
            self._finished()

    def _finished(self) -> None:
        from pagerdrill.journal import read_journal
        from pagerdrill.journal.summary import summarize

        try:
            summary = summarize(read_journal(self.engine.journal_path))
        except Exception as exc:
            log.exception("could not summarize the drill")
            self.post_message(Notice(f"could not read the journal: {exc}", "error"))
            return
        self.post_message(DrillFinished(summary))

    def act(self, action: Action) -> None:
        """Send an action to the engine, off the UI thread."""
        self._act(action)

    @work(thread=True, group="act", exit_on_error=False)
    def _act(self, action: Action) -> None:
        try:
            self.engine.act(action)
        except (ActionRefused, BadInputError) as exc:
            self.post_message(Notice(str(exc)))
        except Exception as exc:
            log.exception("action %s failed", action.kind)
            self.post_message(Notice(f"{action.kind} failed: {exc}", "error"))
        finally:
            self._wake.set()

    def record(self, step: str, what: str, detail: str) -> None:
        """Journal that the engineer looked at something (once per thing), as evidence
        of a checklist step. Before the page there is nothing to evidence."""
        if self._engine is None or self.engine.page_mono is None or self.engine.done:
            return
        key = (step, what, detail)
        if key in self._recorded:
            return
        self._recorded.add(key)
        self.act(Action("evidence", step=step, what=what, text=detail))

    @work(thread=True, group="browser", exit_on_error=False)
    def _browse(self, url: str) -> None:
        import webbrowser

        try:
            opened = webbrowser.open(url)
        except Exception as exc:
            opened = False
            log.warning("could not open %s: %s", url, exc)
        if not opened:
            self.post_message(Notice(f"no browser opened {url}: it is on the clipboard"))

    def open_step_url(self, step: str, url: str) -> None:
        """A checklist step's link (a dashboard, a trace or log query): in the browser
        when there is a graphical one (or $BROWSER names one); a text browser would take
        the terminal, so without one the link goes to the clipboard."""
        import os
        import sys

        self.record(step, "url", url)
        self.copy_to_clipboard(url)
        graphical = bool(
            os.environ.get("BROWSER")
            or os.environ.get("DISPLAY")
            or os.environ.get("WAYLAND_DISPLAY")
            or sys.platform == "darwin"
        )
        if graphical:
            self.notify(f"opening {url}", timeout=4)
            self._browse(url)
        else:
            self.notify(f"{url} (copied: no graphical browser here)", timeout=8)

    @work(thread=True, group="quit", exit_on_error=False)
    def _abort_and_exit(self) -> None:
        try:
            self.engine.abort(QUIT_REASON)
        except Exception:
            log.exception("abort failed")
        finally:
            self.post_message(QuitDone())

    # ----------------------------------------------------------- UI thread

    def on_mount(self) -> None:
        if self._engine is None:
            assert self.start is not None
            self.push_screen(StartScreen(self.start))
        else:
            self.push_screen(self.drill_screen)
            self._go()

    def _go(self) -> None:
        if self.autostart:
            self.drive()

    def start_scenario(self, entry: ScenarioEntry | None, engineer: str) -> None:
        """From the start screen: build the engine (None: blind, a random scenario)."""
        assert self.start is not None and self._engine is None
        blind = entry is None
        if entry is None:
            entry = random.Random().choice(self.start.scenarios)
        try:
            engine = self.start.build(entry.path, engineer, blind)
        except PagerdrillError as exc:
            what = "the blind scenario" if blind else entry.name
            self.notify(f"cannot start {what}: {exc}", severity="error", timeout=10)
            return
        self._use(engine)
        self.switch_screen(self.drill_screen)
        self._go()

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if event.get("type") == "page":
            self.bell()
        if self._drill_screen is not None and self._drill_screen.is_mounted:
            self.drill_screen.apply_event(event)

    def on_stack_line(self, message: StackLine) -> None:
        if self._drill_screen is not None and self._drill_screen.is_mounted:
            self.drill_screen.write(message.text)

    def on_notice(self, message: Notice) -> None:
        self.notify(message.text, severity=message.severity)  # type: ignore[arg-type]

    def on_drill_finished(self, message: DrillFinished) -> None:
        if self.quitting:
            return
        self.summary = message.summary
        root_cause = self.engine.model.root_cause if self.engine.page_mono is not None else None
        self.push_screen(SummaryScreen(message.summary, root_cause, self.engine.workspace.config))

    def on_quit_done(self, _message: QuitDone) -> None:
        self.exit()

    def action_request_quit(self) -> None:
        if self.quitting:
            return
        if self._engine is None or self.engine.done:
            self.exit()
            return
        if isinstance(self.screen, ConfirmQuit):
            return
        self.push_screen(ConfirmQuit(), self._quit_confirmed)

    def _quit_confirmed(self, yes: bool | None) -> None:
        if not yes:
            return
        if self.engine.done:
            self.exit()
            return
        self.quitting = True
        self._stop.set()
        self._wake.set()
        self.push_screen(Reverting())
        self._abort_and_exit()

    def _abort_now(self, reason: str) -> None:
        self._stop.set()
        self._wake.set()
        if self._engine is not None and not self._engine.done:
            try:
                self._engine.abort(reason)
            except Exception:
                log.exception("abort on exit failed")

    def on_unmount(self) -> None:
        """Whatever ended the app, a drill still running is aborted (and reverted), and
        the drill lock let go unless a stack this drill started is still to go down
        (`run` does that once the app is gone)."""
        self._abort_now("the TUI exited")
        if self.hold is not None and not (self.hold.started_stack and not self.keep_stack):
            try:
                self.hold.let_go(keep_stack=True)
            except Exception:
                log.exception("could not let go of the stack")

    def _on_signal(self, signum: int, _frame: Any) -> None:
        """SIGHUP (the terminal went away) or SIGTERM: revert first, then exit. With
        its terminal gone the app may never finish exiting (its writes have nowhere to
        go): once the drill is reverted, a few seconds is all it gets."""
        import os
        import signal

        self.quitting = True
        reason = f"the TUI got {signal.Signals(signum).name}"
        if self._engine is not None:
            asked = requested_abort(self._engine.workspace.state_dir, self._engine.drill_id)
            reason = asked or reason  # `stack down --force` says why
        self._abort_now(reason)
        if self.hold is not None:
            with contextlib.suppress(Exception):
                self.hold.let_go(self.keep_stack)

        def hard_exit() -> None:
            os._exit(128 + signum)

        timer = threading.Timer(EXIT_GRACE_S, hard_exit)
        timer.daemon = True
        timer.start()
        self.exit()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        import signal

        previous = {}
        for sig in (signal.SIGHUP, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        try:
            return super().run(*args, **kwargs)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._abort_now("the TUI exited")
            if self.hold is not None:
                if self.hold.started_stack and not self.keep_stack:
                    print("taking down the stack this drill started (--keep-stack keeps it)")
                try:
                    self.hold.let_go(self.keep_stack)
                except Exception as exc:
                    print(f"could not take the stack down: {exc}")


def make_app(
    workspace_root: Path | None,
    scenario: str | None,
    engineer: str | None,
    params: dict[str, str],
    *,
    ensure_stack: bool = True,
    autostart: bool = True,
    blind: bool = False,
    allow_remote_docker: bool = False,
) -> DrillApp:
    """The app over real objects, built as `pagerdrill run` builds them. Without a
    scenario the app opens on the start screen (the workspace's scenarios, or blind);
    `blind` skips it for a random scenario whose name stays hidden."""
    from pagerdrill.drill.checklist import load_checklist
    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.scenarios.model import find_scenario, load_scenario, scenario_files
    from pagerdrill.targets import open_target
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace_root)
    target = open_target(ws, allow_remote_docker=allow_remote_docker)
    roles = role_bindings(ws)
    checklist, _ = load_checklist(ws.root)

    def build(path: Path, who: str, blind: bool = False) -> DrillEngine:
        sc = load_scenario(path, params, roles=roles)
        return DrillEngine(sc, ws, target, who, checklist, mode="tui", blind=blind)

    if scenario is not None:
        engine = build(find_scenario(ws.root, scenario), engineer or getpass.getuser())
        return DrillApp(engine, target, ensure_stack, autostart=autostart)
    entries = []
    for path in scenario_files(ws.root):
        try:
            m = load_scenario(path, roles=roles).model
        except PagerdrillError as exc:
            log.warning("scenario %s left off the start screen: %s", path, exc)
            continue
        entries.append(ScenarioEntry(path, m.name or path.stem, m.title, m.severity, m.symptom))
    if not entries:
        raise BadInputError(f"no scenario to drill in {ws.root / 'scenarios'}")
    if blind:
        entry = random.Random().choice(entries)
        engine = build(entry.path, engineer or default_engineer(), True)
        return DrillApp(engine, target, ensure_stack, autostart=autostart)
    who = engineer or default_engineer()
    start = StartChoices(entries, who, build, start_readiness(ws.root, who))
    return DrillApp(None, target, ensure_stack, start=start, autostart=autostart)
