"""The drill's investigation panes: the services' logs with an errors filter and the
error spans built from them (the stand-ins for Loki and Jaeger), and runbook search
with a reader. Each is a screen over the drill screen; the drill goes on behind it.

Opening a pane, turning on its errors filter, searching the runbooks and opening one
are reported through `record(step, what, detail)`, which the app journals as
evidence of the checklist step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Markdown, OptionList, RichLog, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from pagerdrill.runbooks import Runbook, search
from pagerdrill.signals.logs import ErrorSpan, LogRecord, error_spans, matches, tail_services
from pagerdrill.targets.base import Target
from pagerdrill.tui.wrapping import Hanging
from pagerdrill.workspace.config import LogFormat

log = logging.getLogger("pagerdrill.tui")

Record = Callable[[str, str, str], None]
"""(checklist step, evidence kind, detail) -> journalled as evidence."""

LOG_TAIL = 300
SHOWN = 60
"""Lines the pane draws at most: the newest (the filter still reads the whole tail)."""
LEVEL_STYLE = {"warning": "yellow", "error": "bold red", "critical": "bold red"}
LEVEL_TAG = {"debug": "DBG ", "info": "INFO", "notice": "NOTE", "warning": "WARN"}
SPAN_INDENT = 4


def key_bar(*keys: tuple[str, str]) -> Text:
    """key what  key what ... for a screen's bottom line."""
    out = Text()
    for key, what in keys:
        out.append(f" {key}", style="bold")
        out.append(f" {what} ")
    return out


def log_line(record: LogRecord) -> Hanging:
    """A log line: a message too long for the pane wraps under the message, after the
    time, service and level columns, so the columns stay clear down the pane."""
    head = Text()
    head.append(f"{record.clock} ", style="dim")
    head.append(f"{record.service:<11} ", style="cyan")
    tag = LEVEL_TAG.get(record.level, "ERR ")
    head.append(f"{tag} ", style=LEVEL_STYLE.get(record.level, "dim"))
    t = Text(record.message)
    status = record.fields.get("status")
    if status is not None and str(status) not in record.message:
        t.append(f" status={status}", style="dim")
    if record.trace_id and record.is_problem:
        t.append(f" trace={record.trace_id[:8]}", style="dim")
    for more in record.detail:  # a traceback's lines, under the message
        t.append("\n" + more.expandtabs(4), style="dim")
    return Hanging(head, t)


def span_lines(span: ErrorSpan) -> list[Hanging]:
    """An error span: its trace id, time, level, services and route on one row (what
    does not fit wraps under the services), then its last message, wrapped under an
    indent of its own. A span without a route shows its message once, below."""
    head = Text()
    head.append(f"{span.trace_id[:16]} ", style="bold")
    head.append(f"{(span.last or '')[11:19]:<8} ", style="dim")
    head.append(f"{span.level:<7} ", style=LEVEL_STYLE.get(span.level, ""))
    what = Text(f"{','.join(span.services):<8}")
    if span.route:
        what.append(f" {span.route}")
    if span.count > 1:
        what.append(f"  ×{span.count}", style="dim")
    message = Text(span.messages[-1], style="dim")
    return [Hanging(head, what), Hanging(Text(" " * SPAN_INDENT), message)]


class LogsScreen(Screen[None]):
    """Every service's log, merged in time order, refreshed each second.

    e: errors only (warnings and up) · s: error spans (grouped by trace_id) ·
    v: one service or all · /: filter words · esc: back to the drill."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,l", "close", "Back"),
        Binding("e", "toggle_errors", "Errors only"),
        Binding("s", "toggle_spans", "Error spans"),
        Binding("v", "next_service", "Service"),
        Binding("slash", "filter", "Filter"),
    ]

    AUTO_FOCUS = "#logs"

    class Opened(Message):
        """The pane is up: the app lists the target's services for it."""

    @dataclass
    class Read(Message, bubble=False):
        """The logs as the last read found them (sent from the reading worker)."""

        records: list[LogRecord]

        def can_replace(self, message: Message) -> bool:
            # a read not yet shown is stale once a newer one comes: show only the newest
            return isinstance(message, LogsScreen.Read)

    def __init__(
        self,
        target: Target,
        record: Record,
        *,
        spans: bool = False,
        formats: Mapping[str, LogFormat] | None = None,
    ) -> None:
        super().__init__(id="logs-screen")
        self.target = target
        self.formats = formats or {}
        """How each service writes its log (the workspace's `logs:`)."""
        self.record = record
        self.errors_only = spans
        self.spans = spans
        self.query_text = ""
        self.service: str | None = None
        self.services: list[str] = []
        self.records: list[LogRecord] = []
        self._shown: list[object] = []
        self._titled: tuple[str, str] | None = None
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Static(id="logs-title")
        box = Input(placeholder="filter: words every line must have (enter)", id="logs-filter")
        box.display = False
        yield box
        # min_width 1: each line is laid out at the pane's width, never wider (a wider
        # one would be cut at the right edge)
        yield RichLog(id="logs", min_width=1, max_lines=8 * SHOWN, markup=False, highlight=False)
        yield Static(id="logs-keys")

    def on_mount(self) -> None:
        self.post_message(self.Opened())
        self.set_interval(1.0, self._tick)

    def on_resize(self) -> None:
        # the lines are laid out when written: lay them out again at the new width
        self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        width = self.query_one("#logs", RichLog).scrollable_content_region.width
        if width != self._width:
            self._width = width
            if self.records:
                self.show(self.records, force=True)

    def _tick(self) -> None:
        if self.is_current:  # kept for the next opening: no reading (no thread) hidden
            self.poll()

    def open_as(self, spans: bool) -> None:
        """Before each showing: the lines or the spans view. The screen is built once
        and kept (installed), so opening it again costs no compose and no mount."""
        if spans != self.spans:
            self.spans = spans
            self.errors_only = self.errors_only or spans
            self._shown = []

    def on_screen_resume(self) -> None:
        self._evidence()
        self.refresh_title()
        if self.records:
            self.show(self.records, force=not self._shown)
        # read the logs once this frame is out: the reading thread would hold the GIL
        # while the UI thread draws it
        self.call_after_refresh(self.poll)

    def _evidence(self) -> None:
        if self.spans:
            self.record("error-spans", "error-spans", self._scope())
        else:
            which = "errors" if self.errors_only else "all lines"
            self.record("logs", "logs", f"{which} of {self._scope()}")

    def _scope(self) -> str:
        return self.service or "all services"

    def refresh_title(self) -> None:
        t = Text()
        t.append(" Error spans " if self.spans else " Logs ", style="bold reverse")
        t.append(f" {self._scope()}")
        if not self.spans:
            t.append("  errors only" if self.errors_only else "  all levels", style="bold")
        if self.query_text:
            t.append(f"  filter: {self.query_text}", style="yellow")
        keys = key_bar(
            ("e", "errors"),
            ("s", "lines" if self.spans else "spans"),
            ("v", "service"),
            ("/", "filter"),
            ("esc", "back"),
        )
        if (t.plain, keys.plain) != self._titled:  # one line each: no layout
            self._titled = (t.plain, keys.plain)
            self.query_one("#logs-title", Static).update(t, layout=False)
            self.query_one("#logs-keys", Static).update(keys, layout=False)

    @work(thread=True, exclusive=True, group="logs", exit_on_error=False)
    def poll(self) -> None:
        worker = get_current_worker()
        services = [self.service] if self.service else None
        try:
            records = tail_services(self.target, services, tail=LOG_TAIL, formats=self.formats)
        except Exception as exc:
            log.exception("could not read the logs")
            records = [LogRecord("pagerdrill", "error", f"could not read the logs: {exc}")]
        if not worker.is_cancelled:
            self.post_message(self.Read(records))

    def on_logs_screen_read(self, message: Read) -> None:
        self.show(message.records)

    def show(self, records: list[LogRecord], force: bool = False) -> None:
        """Render the records: new lines are appended to what is shown (a second's
        worth, not the whole tail again); a change of filter redraws."""
        self.records = records
        kept: list[LogRecord] = []
        lines: list[RenderableType]
        if self.spans:
            lines = self._span_lines(records)
            keys: list[object] = [str(line) for line in lines]
        else:
            kept = [
                r
                for r in records
                if (r.is_problem or not self.errors_only) and matches(r, self.query_text)
            ][-SHOWN:]
            keys = [(r.service, r.timestamp, r.level, r.message, len(r.detail)) for r in kept]
        view = self.query_one("#logs", RichLog)
        shown = self._shown
        if not force and keys == shown:
            return  # nothing new: no repaint, no scroll jump, no line built
        self._shown = keys
        # laid out at the pane's width (a measured width stops at the console's)
        width = view.scrollable_content_region.width or None
        if not force and not self.spans and shown and shown[-1] in keys:
            at = len(keys) - 1 - keys[::-1].index(shown[-1])
            for record in kept[at + 1 :]:
                view.write(log_line(record), width=width)
            return
        if not self.spans:
            lines = list(map(log_line, kept))
        view.clear()
        if not lines:
            view.write(Text("(nothing matches)", style="dim"), width=width)
        for line in lines:
            view.write(line, width=width, scroll_end=not self.spans)
        if self.spans:
            view.scroll_home(animate=False)

    def _span_lines(self, records: list[LogRecord]) -> list[RenderableType]:
        spans = error_spans(r for r in records if matches(r, self.query_text))
        out: list[RenderableType] = []
        if spans:
            out.append(Text(f"{len(spans)} traces with warnings or errors, newest first", "italic"))
        for span in spans:
            out += span_lines(span)
        return out

    def action_close(self) -> None:
        self.dismiss(None)

    def action_toggle_errors(self) -> None:
        self.errors_only = not self.errors_only
        if self.errors_only and not self.spans:
            self._evidence()
        self.refresh_title()
        self.show(self.records, force=True)

    def action_toggle_spans(self) -> None:
        self.spans = not self.spans
        self._evidence()
        self.refresh_title()
        self.show(self.records, force=True)

    def action_next_service(self) -> None:
        order: list[str | None] = [None, *self.services]
        at = order.index(self.service) if self.service in order else 0
        self.service = order[(at + 1) % len(order)]
        self._evidence()
        self.refresh_title()
        self.poll()

    def action_filter(self) -> None:
        box = self.query_one("#logs-filter", Input)
        box.display = True
        box.value = self.query_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        event.input.display = False
        self.query_one("#logs", RichLog).focus()
        if self.query_text:
            what = "error-spans" if self.spans else "logs"
            self.record(what, what, f"filter '{self.query_text}' on {self._scope()}")
        self.refresh_title()
        self.show(self.records, force=True)


class RunbookScreen(Screen[None]):
    """Search the workspace's runbooks (title and body); enter opens one to read."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("down", "to_hits", show=False),
    ]

    @dataclass
    class Opened(Message):
        """The screen is up: the app loads the runbooks under `root` for it (files are
        read off the UI thread), and hands them over with `loaded`."""

        root: Any

    def __init__(self, root: Any, record: Record) -> None:
        super().__init__(id="runbook-screen")
        self.root = root
        self.runbooks: list[Runbook] = []
        self.loaded = False
        self.record = record
        self.hits = search(self.runbooks, "")
        self.searched = ""

    def loaded_runbooks(self, runbooks: list[Runbook]) -> None:
        """The runbooks, read: the hits are those of the query typed meanwhile."""
        self.runbooks, self.loaded = runbooks, True
        self.hits = search(self.runbooks, self.query_one("#runbook-query", Input).value)
        self.show_hits()

    def compose(self) -> ComposeResult:
        yield Static(Text(" Runbooks ", style="bold reverse"), id="runbook-title")
        yield Input(placeholder="search titles and bodies, enter to search", id="runbook-query")
        yield OptionList(id="runbook-hits")
        yield Static(id="runbook-keys")

    def on_mount(self) -> None:
        self.post_message(self.Opened(self.root))
        self.show_hits()
        keys = key_bar(("enter", "search/open"), ("↓", "hits"), ("esc", "back"))
        self.query_one("#runbook-keys", Static).update(keys)
        self.query_one("#runbook-query", Input).focus()

    def show_hits(self) -> None:
        hits = self.query_one("#runbook-hits", OptionList)
        hits.clear_options()
        if not self.runbooks or not self.hits:
            why = "no runbook matches" if self.runbooks else "no runbooks in runbooks/"
            why = why if self.loaded else "reading the runbooks"
            hits.add_option(Option(Text(why, style="dim"), disabled=True))
            return
        for i, hit in enumerate(self.hits):
            t = Text()
            t.append(hit.runbook.title, style="bold")
            t.append(f"  {hit.runbook.path.name}", style="dim")
            prompt: RenderableType = t
            if hit.snippet:  # the excerpt's rows under its own first word
                prompt = Group(t, Hanging(Text("  "), Text(hit.snippet, style="dim")))
            hits.add_option(Option(prompt, id=str(i)))
        hits.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self.hits = search(self.runbooks, event.value)
        self.show_hits()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if query and query != self.searched:
            self.searched = query
            self.record("recurrence", "runbook-search", f"'{query}': {len(self.hits)} found")
        if self.hits:
            self.query_one("#runbook-hits", OptionList).focus()

    def action_to_hits(self) -> None:
        """↓ from the query: to the hits, on the first (the list, once focused, takes
        ↓ itself and moves on from there)."""
        hits = self.query_one("#runbook-hits", OptionList)
        if self.hits:
            hits.highlighted = 0
            hits.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_id is None:
            return
        runbook = self.hits[int(event.option_id)].runbook
        self.record("recurrence", "runbook-open", runbook.path.name)
        self.app.push_screen(RunbookReader(runbook))

    def action_close(self) -> None:
        self.dismiss(None)


class RunbookReader(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Back")]

    def __init__(self, runbook: Runbook) -> None:
        super().__init__(id="runbook-reader")
        self.runbook = runbook

    def compose(self) -> ComposeResult:
        yield Static(
            Text.assemble((" Runbook ", "bold reverse"), f" {self.runbook.path.name}"),
            id="reader-title",
        )
        with VerticalScroll(id="reader"):
            yield Markdown(self.runbook.body, id="runbook-body")
        yield Static(key_bar(("↑↓ pgup pgdn", "scroll"), ("esc", "back")), id="reader-keys")

    def on_mount(self) -> None:
        self.query_one("#reader", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
