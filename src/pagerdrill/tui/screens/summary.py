"""The summary screen shown when the drill ends, and its text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from pagerdrill.journal.summary import StepResult, Summary
from pagerdrill.reports.timeline import before_fault_line, faded_line, grade_text
from pagerdrill.timefmt import mmss
from pagerdrill.tui.panes import key_bar
from pagerdrill.tui.wrapping import hang


def _head(out: Text, summary: Summary) -> None:
    """How the drill ended, what it was, and the page."""
    if summary.outcome == "closed":
        verified = summary.recovery_verified
        out.append(
            "Drill closed, recovery " + ("verified\n" if verified else "NOT verified\n"),
            style="bold green" if verified else "bold yellow",
        )
    else:
        out.append(f"Drill {summary.outcome}", style="bold red")
        out.append(f": {summary.abort_reason or ''}\n")
    out.append(
        f"{summary.title or summary.scenario} ({summary.severity}), engineer {summary.engineer}\n"
    )
    if summary.paged:
        out.append(f"paged by {summary.page_alert}; ")
        out.append(f"acknowledged at {mmss(summary.time_to_ack_s)}\n")
    else:
        out.append("no page\n")


def _checklist(out: Text, steps: list[StepResult], width: int) -> None:
    """The step titles' column is as wide as the longest title, within what the times
    leave of the width (30 at least); a longer title wraps under its own text, and its
    target and time stay in their columns on its last row, so every step's times line
    up."""
    longest = max((len(step.title) for step in steps), default=0)
    title_w = max(30, min(longest, width - 30))
    out.append("\nChecklist" + " " * (title_w - 7) + "target   done\n", style="bold")
    for step in steps:
        rows = hang(Text("  "), Text(step.title), title_w + 2)
        for row in rows[:-1]:
            out.append_text(row)
            out.append("\n")
        last = rows[-1]
        last.pad_right(title_w + 2 - last.cell_len)
        out.append_text(last)
        done = step.done_s
        out.append(f"{mmss(step.target_s):>6}  ")
        if done is None:
            out.append("    —\n", style="dim")
        elif step.met:
            out.append(f"{mmss(done):>5} ✓\n", style="green")
        else:
            out.append(f"{mmss(done):>5} over target\n", style="red")


def _findings(out: Text, summary: Summary, root_cause: str | None) -> None:
    """The hypothesis and its grade, the root cause (once paged), the decision."""
    hyp = summary.hypothesis
    out.append("\nHypothesis: ", style="bold")
    if hyp.attempts:
        grade = hyp.grade
        at = hyp.correct_s if grade == "right" else hyp.first_s
        style = {"right": "green", "wrong": "red"}.get(grade or "", "yellow")
        out.append(grade_text(grade), style=style)
        out.append(f" at {mmss(at)} (target {mmss(hyp.target_s)}); first: {hyp.first_text}\n")
    else:
        out.append("none given\n")
    if root_cause and summary.paged:
        out.append("Root cause: ", style="bold")
        out.append(root_cause.strip() + "\n")
    decision = summary.decision
    if decision:
        out.append("Decision: ", style="bold")
        right = decision.correct
        out.append(f"{decision.choice} ")
        out.append(
            "(right)\n" if right else "(not the expected call)\n",
            style="green" if right else "yellow",
        )


def summary_text(summary: Summary, root_cause: str | None = None, width: int = 80) -> Text:
    """The summary for a terminal `width` columns wide."""
    out = Text()
    _head(out, summary)
    _checklist(out, summary.steps, width)
    _findings(out, summary, root_cause)
    out.append(f"Hints used: {summary.hints_used}; notes: {summary.notes}\n")
    out.append("Mitigated at ", style="bold")
    out.append(f"{mmss(summary.time_to_mitigate_s)}; ")
    out.append("recovery verified at ", style="bold")
    out.append(f"{mmss(summary.time_to_recovery_s)}\n")
    for line in (faded_line(summary), before_fault_line(summary)):
        if line:  # what every export says of the drill, the summary says too
            out.append(line[0].upper() + line[1:] + "\n", style="yellow")
    if summary.revert_failed:
        out.append(
            f"NOT reverted: {', '.join(summary.revert_failed)} (run `pagerdrill recover`)\n",
            style="bold red",
        )
    out.append("\nJournal: ", style="bold")
    out.append(f"{summary.journal}\n")
    return out


class SummaryScreen(Screen[None]):
    @dataclass
    class Export(Message):
        """Save the drill's Slack timeline next to its journal and copy it."""

        journal: Path
        config: Any

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape,enter", "app.quit", "Quit"),
        Binding("s,c", "export", "Slack timeline"),
    ]

    def __init__(self, summary: Summary, root_cause: str | None = None, config: Any = None) -> None:
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
        journal and put on the clipboard (OSC 52, where the terminal allows it), by the
        app off the UI thread."""
        self.post_message(self.Export(Path(self.summary.journal), self.config))
