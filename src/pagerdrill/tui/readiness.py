"""The readiness gate in the terminal: the engineer's items, their evidence and the next
thing to do (`pagerdrill readiness` in a terminal), with the security register and
changelog reads and the pager question done in place; and the short readiness line the
drill's start screen shows.

The screens only show and ask; they post messages. The app reads and records through
`pagerdrill.readiness` in thread workers and posts the results back as messages.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from pagerdrill.errors import PagerdrillError

if TYPE_CHECKING:
    from pagerdrill.readiness.actions import ReadPreview
    from pagerdrill.readiness.gate import QuizRule
    from pagerdrill.readiness.status import Status


# ---------------------------------------------------------------- the start screen


@dataclass(frozen=True)
class StartReadiness:
    """What the drill's start screen says of the engineer's readiness."""

    engineer: str
    ready: bool
    rotation: int
    left: tuple[str, ...]
    """The open items, in the gate's order."""

    assigned: str | None = None
    assigned_by: str | None = None


def start_readiness(root: Path, engineer: str) -> StartReadiness | None:
    """The engineer's readiness for the start screen, or None when the workspace has no
    roster or the engineer is not on it (a drill needs neither)."""
    from pagerdrill.readiness.status import Context, status

    try:
        ctx = Context(root)
        if ctx.people.person(engineer) is None:
            return None
        st = status(ctx, engineer)
    except PagerdrillError:
        return None
    return StartReadiness(
        engineer,
        st.ready,
        st.rotation,
        tuple(i.id for i in st.open_items),
        st.assigned,
        st.assigned_by,
    )


def readiness_line(r: StartReadiness) -> Text:
    t = Text()
    t.append(f"Readiness of {r.engineer}", style="bold")
    t.append(f" (rotation {r.rotation}): ")
    if r.ready:
        t.append("ready, signed go", style="green")
    else:
        t.append(f"{len(r.left)} item(s) left: ", style="yellow")
        t.append(", ".join(r.left))
    if r.assigned:
        t.append(f"\nassigned scenario: {r.assigned} (by {r.assigned_by})")
    return t


def is_assigned(r: StartReadiness | None, *names: str) -> bool:
    return r is not None and r.assigned is not None and r.assigned in names


def assigned_first(names: Sequence[tuple[str, ...]], r: StartReadiness | None) -> list[int]:
    """The scenarios' indexes with the one the lead assigned first (each scenario given
    by the names it answers to: its name and its file's stem)."""
    order = list(range(len(names)))
    return sorted(order, key=lambda i: not is_assigned(r, *names[i]))


class ReadinessPanel(Static):
    """The start screen's readiness line."""

    def __init__(self, readiness: StartReadiness) -> None:
        super().__init__(readiness_line(readiness), id="start-readiness")


# ---------------------------------------------------------------- the gate screen


def next_step(st: Status) -> str:
    """The next thing to do: the first open item and what blocks it."""
    for item in st.items:
        if item.done:
            continue
        how = {
            "read": "r reads the register, c the changelog",
            "quiz": "z answers the pager question",
        }.get(item.kind, "")
        first = item.blockers[0] if item.blockers else "open"
        return f"next: {item.id}: {first}" + (f"  ({how})" if how else "")
    return "ready: a signed go, nothing left to do"


def item_prompt(item) -> Text:
    t = Text()
    mark, style = ("✓", "green") if item.done else ("✗", "red")
    t.append(f"{mark} ", style=style)
    t.append(item.id, style="bold")
    if item.reopened and not item.done:
        t.append(" (again this rotation)", style="yellow")
    t.append(f": {item.text}")
    for line in item.evidence:
        t.append(f"\n    evidence: {line}", style="dim")
    for line in item.blockers:
        t.append(f"\n    blocks: {line}", style="red")
    return t


class GateScreen(Screen[None]):
    """One engineer's gate: every item, its evidence and blockers, the next step."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "read('security-register')", "read the register"),
        Binding("c", "read('api-changelog')", "read the changelog"),
        Binding("z", "quiz", "the pager question"),
        Binding("g", "refresh", "refresh"),
        Binding("q", "app.quit", "quit"),
    ]

    @dataclass
    class ReadAsked(Message):
        document: str

    @dataclass
    class QuizAsked(Message):
        pass

    @dataclass
    class RefreshAsked(Message):
        pass

    def compose(self) -> ComposeResult:
        with Vertical(id="gate"):
            yield Label("readiness", id="gate-title", classes="panel-title")
            yield OptionList(id="gate-items")
            yield Static("", id="gate-next")
        yield Static(
            Text(" r register   c changelog   z pager question   g refresh   q quit"),
            id="gate-keys",
        )

    def show(self, st: Status) -> None:
        head = "READY (signed go)" if st.ready else f"{len(st.open_items)} item(s) open"
        title = f"{st.engineer} — rotation {st.rotation} — {head}"
        if st.assigned:
            title += f" — assigned: {st.assigned} (by {st.assigned_by})"
        if st.reopen_reason:
            title += f" — reopened: {st.reopen_reason}"
        self.query_one("#gate-title", Label).update(title)
        items = self.query_one("#gate-items", OptionList)
        highlighted = items.highlighted
        items.clear_options()
        items.add_options([Option(item_prompt(i), id=f"item-{i.id}") for i in st.items])
        if highlighted is not None and highlighted < items.option_count:
            items.highlighted = highlighted
        self.query_one("#gate-next", Static).update(Text(next_step(st), style="bold"))

    def action_read(self, document: str) -> None:
        self.post_message(self.ReadAsked(document))

    def action_quiz(self) -> None:
        self.post_message(self.QuizAsked())

    def action_refresh(self) -> None:
        self.post_message(self.RefreshAsked())


def preview_text(preview: ReadPreview, oncall_categories: list[str]) -> Text:
    t = Text()
    t.append(f"{preview.item.document}", style="bold")
    t.append(f": {preview.item.text}\n\n")
    if preview.item.format == "security-register":
        t.append(f"pending findings in the on-call categories ({', '.join(oncall_categories)}):\n")
        for f in preview.findings:
            score = f"{f.score:g}" if f.score is not None else "-"
            t.append(f"  {f.id}", style="bold")
            t.append(f"  [{f.category}] {score}  {f.title}  ({f.source})\n")
        if not preview.findings:
            t.append("  none\n")
    elif preview.item.format == "changelog":
        t.append(
            "versions since your last read:\n"
            if preview.releases
            else "nothing new since your last read\n"
        )
        for r in preview.releases:
            t.append(f"  [{r.version}] {r.date or ''}\n", style="bold")
            for kind, lines in r.changes.items():
                for line in lines:
                    t.append(f"    {kind}: {line}\n")
    return t


READ_KEYS = "y: I read it cover to cover (records the read)   escape: not yet"


class ReadScreen(ModalScreen[bool]):
    """A document's read: what it shows first, then the engineer's word."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "dismiss(True)", "read it"),
        Binding("escape", "dismiss(False)", "not yet"),
    ]

    def __init__(self, text: Text) -> None:
        super().__init__(id="read-screen")
        self.text = text

    def compose(self) -> ComposeResult:
        # the keys stay under the scrolled text: a register longer than the terminal
        # must not hide how its read is recorded
        with Vertical(id="read-body"):
            with VerticalScroll(id="read-scroll"):
                yield Static(self.text, id="read-text")
            yield Static(READ_KEYS, id="read-keys")


class QuizScreen(ModalScreen[tuple[str, float] | None]):
    """The pager question, timed from the moment it shows."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "not now")]

    def __init__(self, question: str, limit_s: float) -> None:
        super().__init__(id="quiz-screen")
        self.question = question
        self.limit_s = limit_s
        self.asked = time.monotonic()

    def compose(self) -> ComposeResult:
        with Vertical(id="quiz"):
            yield Label(f"{self.question} (answer within {self.limit_s:g} s)", id="quiz-question")
            yield Input(placeholder="your answer; enter records it", id="quiz-answer")

    def on_mount(self) -> None:
        self.asked = time.monotonic()
        self.query_one("#quiz-answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss((event.value, time.monotonic() - self.asked))


# ---------------------------------------------------------------- the app


@dataclass
class StatusLoaded(Message):
    status: Status
    quiz: QuizRule | None
    categories: list[str]


@dataclass
class PreviewLoaded(Message):
    preview: ReadPreview


@dataclass
class Recorded(Message):
    text: str
    ok: bool = True


class ReadinessApp(App[None]):
    """`pagerdrill readiness` in a terminal: one engineer's gate."""

    CSS_PATH = "readiness.tcss"
    TITLE = "pagerdrill readiness"

    def __init__(self, root: Path, engineer: str) -> None:
        super().__init__()
        self.root = root
        self.engineer = engineer
        self.gate_screen = GateScreen(id="gate-screen")
        self.status: Status | None = None
        self.quiz_rule: QuizRule | None = None
        self.categories: list[str] = []
        self.recorded: list[str] = []
        """What was recorded, in order (the notifications' text)."""

    def on_mount(self) -> None:
        self.push_screen(self.gate_screen)
        self.load()

    # workers: every read and write of the workspace, off the UI thread

    @work(thread=True, exclusive=True, exit_on_error=False, group="readiness-status")
    def load(self) -> None:
        from pagerdrill.readiness.status import Context, status

        ctx = Context(self.root)
        quiz = next((i.quiz_rule for i in ctx.gate.items if i.kind == "quiz"), None)
        st = status(ctx, self.engineer)
        self.post_message(StatusLoaded(st, quiz, list(ctx.gate.oncall_categories)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="readiness-record")
    def preview(self, document: str) -> None:
        from pagerdrill.readiness.actions import preview_read
        from pagerdrill.readiness.status import Context

        self.post_message(PreviewLoaded(preview_read(Context(self.root), self.engineer, document)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="readiness-record")
    def record_read(self, preview: ReadPreview) -> None:
        from pagerdrill.readiness.actions import record_read
        from pagerdrill.readiness.status import Context

        ctx = Context(self.root)
        _entry, path = record_read(ctx, self.engineer, preview)
        self.post_message(Recorded(f"read of {preview.item.document} recorded ({ctx.rel(path)})"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="readiness-record")
    def record_quiz(self, answer: str, seconds: float) -> None:
        from pagerdrill.readiness.actions import quiz_item, record_quiz
        from pagerdrill.readiness.quiz import grade
        from pagerdrill.readiness.status import Context

        ctx = Context(self.root)
        rule = quiz_item(ctx).quiz_rule
        _entry, path = record_quiz(ctx, self.engineer, answer, seconds)
        g = grade(answer, seconds, rule)
        if g.passed:
            text = f"right, in {seconds:.0f} s: " + " → ".join(g.found)
        else:
            text = "not yet: " + "; ".join(g.problems(rule, seconds))
        self.post_message(Recorded(f"{text} ({ctx.rel(path)})", g.passed))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(str(event.worker.error), severity="error", timeout=10)

    # messages: the screens' asks and the workers' results

    def on_status_loaded(self, message: StatusLoaded) -> None:
        self.status = message.status
        self.quiz_rule = message.quiz
        self.categories = message.categories
        self.gate_screen.show(message.status)

    def on_gate_screen_read_asked(self, message: GateScreen.ReadAsked) -> None:
        self.preview(message.document)

    def on_gate_screen_refresh_asked(self, _message: GateScreen.RefreshAsked) -> None:
        self.load()

    def on_gate_screen_quiz_asked(self, _message: GateScreen.QuizAsked) -> None:
        if self.quiz_rule is None:
            self.notify("the gate has no pager question", severity="warning")
            return

        def answered(result: tuple[str, float] | None) -> None:
            if result is not None:
                self.record_quiz(*result)

        self.push_screen(QuizScreen(self.quiz_rule.question, self.quiz_rule.limit_s), answered)

    def on_preview_loaded(self, message: PreviewLoaded) -> None:
        preview = message.preview

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.record_read(preview)

        self.push_screen(ReadScreen(preview_text(preview, self.categories)), confirmed)

    def on_recorded(self, message: Recorded) -> None:
        self.recorded.append(message.text)
        self.notify(message.text, severity="information" if message.ok else "warning")
        self.load()
