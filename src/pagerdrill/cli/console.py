"""What the commands print with: a console that suits a terminal or a pipe, and the
printers of stack progress, service status and a headless drill's events.

rich is imported inside these helpers, so `pagerdrill --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pagerdrill.journal.events import Event, FaultReverted
    from pagerdrill.journal.redact import Redactor
    from pagerdrill.targets.base import ProgressEvent, ServiceStatus


class _TrimmedLines:
    """A stream that drops the spaces rich pads each line with: piped output is read by
    scripts and diffs, where trailing blanks are noise."""

    def __init__(self, stream):
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.write(self.pending)  # a line not yet ended is written as it is
        self.pending = ""
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()


def _console(stderr: bool = False):
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # a reader that went away (`run ... | tee` stopped by Ctrl-C) must not end a
            # drill mid-revert (rich raises SystemExit here): later output is dropped
            self.quiet = True
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.file.fileno())
                os.close(devnull)

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return _Console(stderr=stderr, highlight=False)
    # piped output (scripts, CI logs) gets whole lines rather than an 80-column cut, each
    # as long as its content
    from typing import IO, cast

    return _Console(file=cast(IO[str], _TrimmedLines(stream)), highlight=False, width=200)


def _progress_printer(stderr: bool = False):
    console = _console(stderr=stderr)
    marks = {
        "starting": "[dim]…[/]",
        "healthy": "[green]✓[/]",
        "running": "[green]✓[/]",
        "stopping": "[dim]…[/]",
        "stopped": "[dim]■[/]",
        "failed": "[red]✗[/]",
    }

    def show(event: ProgressEvent) -> None:
        phase = event.detail or ("already running" if event.phase == "running" else event.phase)
        console.print(
            f"  {marks[event.phase]} {event.service:<12} {phase:<16} "
            f"[dim]{event.elapsed_s:6.2f} s[/]"
        )

    return show


def _status_table(statuses: list[ServiceStatus]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("SERVICE", "STATE", "HEALTH", "PID", "ENDPOINT", "OVERRIDES"):
        table.add_column(column)
    colours = {"healthy": "green", "unhealthy": "red", "unknown": "dim"}
    for s in statuses:
        endpoint = s.endpoints.get("http") or s.endpoints.get("redis") or s.endpoints.get("tcp", "")
        if "redis" in s.endpoints:  # never print the password
            from pagerdrill.journal.redact import redact_url

            endpoint = redact_url(endpoint)
        table.add_row(
            s.name,
            s.state,
            f"[{colours[s.health]}]{s.health}[/]",
            str(s.pid or "-"),
            endpoint,
            ", ".join(s.env_overrides) or "-",
        )
    _console().print(table)


def _event_printer(redactor: Redactor, feedback: str = "hidden") -> Callable[[Event], None]:
    """Progress of a headless drill, one line per event that matters, on stderr. A
    hypothesis shows as recorded; its grade only with the scenario's `feedback: live`."""
    from rich.markup import escape

    from pagerdrill.journal.events import FaultInjected, FaultUndo
    from pagerdrill.timefmt import clock as t_clock

    console = _console(stderr=True)
    seen = _Seen()

    def show(event: Event) -> None:
        event = redactor.event(event)
        if isinstance(event, FaultInjected):
            seen.injected = True
        elif isinstance(event, FaultUndo) and event.undo.get("irreversible"):
            seen.irreversible[event.fault] = event.undo
        text = _event_text(event, seen, feedback)
        if text:
            at = getattr(event, "drill_s", None)
            clock = t_clock(at, tenths=True) if isinstance(at, int | float) else " " * 9
            console.print(f"  [dim]{clock}[/] {text if '[' in text else escape(text)}")

    return show


@dataclass
class _Seen:
    """What the printer learnt from earlier events of the drill."""

    injected: bool = False
    """A fault went in: an alert before it is not a page."""
    irreversible: dict[str, dict] = field(default_factory=dict)
    """Faults whose undo record says their harm cannot be undone (their undo records)."""


def _reverted(event: FaultReverted, seen: _Seen) -> str:
    """A fault's revert; one whose own undo record says it cannot be undone is never
    said to be reverted, whatever its revert's detail leaves out."""
    from pagerdrill.faults import reverted_text

    detail = dict(event.detail)
    undo = seen.irreversible.get(event.fault)
    if undo is not None and not detail.get("irreversible"):
        detail["irreversible"] = True
        detail.setdefault("command", undo.get("command"))
    return reverted_text(event.fault, event.by or "", detail)


def _event_text(event: Event, seen: _Seen, feedback: str) -> str | None:
    """The line an event shows as, or None for one that does not matter on the console."""
    from pagerdrill.journal import events as ev
    from pagerdrill.reports.timeline import grade_text
    from pagerdrill.timefmt import duration as t_duration

    match event:
        case ev.State():
            text = f"[bold]{event.to}[/]"
            if isinstance(event.quiet_s, int | float):
                text += f" for {t_duration(event.quiet_s)}"
            return text + (f": {event.reason}" if event.reason else "")
        case ev.FaultInjected():
            return f"[red]fault[/] {event.fault} injected ({event.inject_ms or 0:g} ms)"
        case ev.FaultReverted():
            return _reverted(event, seen)
        case ev.FaultFailed() | ev.FaultRevertFailed():
            return f"[red]{event.TYPE}[/] {event.fault}: {event.error}"
        case ev.MitigationFailed():
            return f"[red]{event.TYPE}[/] {event.mitigation}: {event.error}"
        case ev.AlertFiring() if not seen.injected:
            return f"alert {event.alert} firing before the fault (not a page)"
        case ev.AlertFiring():
            return f"[red]ALERT[/] {event.alert}: {event.summary}"
        case ev.AlertResolved():
            return f"alert {event.alert} resolved" + (
                "" if seen.injected else " (before the fault)"
            )
        case ev.Page():
            return f"[bold red]PAGE[/] {event.severity} {event.summary}"
        case ev.StepDone():
            late = " [yellow](over target)[/]" if event.over else ""
            text = f"step {event.step} done{late}"
            if event.reason:
                call = event.choice_text or event.choice
                text += f": {call + ' ' if call else ''}(why: {event.reason})"
            return text
        case ev.Note() | ev.Hint():
            return f"{event.TYPE}: {event.text}"
        case ev.Hypothesis() if feedback == "live":
            return f"hypothesis recorded ({grade_text(event.grade or None)}): {event.text}"
        case ev.Hypothesis():
            return f"hypothesis recorded: {event.text}"
        case ev.Decision():
            return f"decision: {event.choice}"
        case ev.Mitigation():
            return f"mitigation: {event.title}"
        case ev.RecoveryVerified():
            return "[green]recovery verified[/] by the probes"
        case ev.ScriptRefused():
            return f"[yellow]script action {event.index} refused[/]: {event.reason}"
    return None
