"""What the commands print with: a console that suits a terminal or a pipe, and the
printers of stack progress, service status and a headless drill's events.

rich is imported inside these helpers, so `pagerdrill --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
        phase = "already running" if event.phase == "running" else event.phase
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
        endpoint = s.endpoints.get("http") or s.endpoints.get("redis", "")
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


def _event_printer(redactor, feedback: str = "hidden"):
    """Progress of a headless drill, one line per event that matters, on stderr. A
    hypothesis shows as recorded; its grade only with the scenario's `feedback: live`."""

    console = _console(stderr=True)

    from pagerdrill.timefmt import clock as t_clock

    def clock(event: dict) -> str:
        at = event.get("drill_s")
        return t_clock(at, tenths=True) if isinstance(at, int | float) else " " * 9

    injected = False

    def show(event: dict) -> None:
        nonlocal injected
        event = redactor.data(event)
        injected = injected or event["type"] == "fault.injected"
        text = _event_text(event, injected, feedback)
        if text:
            from rich.markup import escape

            console.print(f"  [dim]{clock(event)}[/] {text if '[' in text else escape(text)}")

    return show


def _event_text(event: dict, injected: bool, feedback: str) -> str | None:
    """The line an event shows as, or None for one that does not matter on the console.
    `injected`: whether a fault was injected yet (an alert before it is not a page)."""
    from pagerdrill.faults import reverted_text
    from pagerdrill.reports.timeline import grade_text
    from pagerdrill.timefmt import duration as t_duration

    t = event["type"]
    text = None
    if t == "state":
        text = f"[bold]{event['to']}[/]" + (
            f" for {t_duration(event['quiet_s'])}" if "quiet_s" in event else ""
        )
        if event.get("reason"):
            text += f": {event['reason']}"
    elif t == "fault.injected":
        text = f"[red]fault[/] {event['fault']} injected ({event['inject_ms']:g} ms)"
    elif t == "fault.reverted":
        text = reverted_text(event["fault"], event["by"], event.get("detail"))
    elif t in ("fault.failed", "fault.revert_failed", "mitigation.failed"):
        text = f"[red]{t}[/] {event.get('fault') or event.get('mitigation')}: {event['error']}"
    elif t == "alert.firing" and not injected:
        text = f"alert {event['alert']} firing before the fault (not a page)"
    elif t == "alert.firing":
        text = f"[red]ALERT[/] {event['alert']}: {event['summary']}"
    elif t == "alert.resolved":
        text = f"alert {event['alert']} resolved" + ("" if injected else " (before the fault)")
    elif t == "page":
        text = f"[bold red]PAGE[/] {event['severity']} {event['summary']}"
    elif t == "step.done":
        late = " [yellow](over target)[/]" if event["over"] else ""
        text = f"step {event['step']} done{late}"
        if event.get("reason"):
            call = event.get("choice_text") or event.get("choice")
            text += f": {call + ' ' if call else ''}(why: {event['reason']})"
    elif t in ("note", "hint"):
        text = f"{t}: {event['text']}"
    elif t == "hypothesis":
        text = f"hypothesis recorded: {event['text']}"
        if feedback == "live":
            grade = grade_text(event.get("grade"))
            text = f"hypothesis recorded ({grade}): {event['text']}"
    elif t == "decision":
        text = f"decision: {event['choice']}"
    elif t == "mitigation":
        text = f"mitigation: {event['title']}"
    elif t == "recovery.verified":
        text = "[green]recovery verified[/] by the probes"
    elif t == "script.refused":
        text = f"[yellow]script action {event['index']} refused[/]: {event['reason']}"
    return text
