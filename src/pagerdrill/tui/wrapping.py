"""Lines that wrap with a hanging indent: a checklist step under its "N [ ] " prefix, an
event under its "[m:ss] " stamp, a runbook hit's excerpt under its indent. A narrow
terminal (80 columns) shows the whole text, and a continued row reads as part of the
line above it rather than as a line of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

MIN_BODY = 12
"""Narrower than this after the indent, rows start at the left edge: a hanging indent
that leaves a word or two a row reads worse than none."""

TAIL_GAP = 2

_CONSOLE = Console(width=10_000, color_system=None, legacy_windows=False)
"""Wrapping needs a console only for cell widths; no output goes through it."""


def hang(head: Text, body: Text, width: int, tail: Text | None = None) -> list[Text]:
    """`head` then `body` wrapped at word boundaries in the columns after it, each
    continued row indented by the head's width. `tail` (times, a status) goes at the
    right of the last row when it fits there, else right-aligned on a row of its own."""
    indent = head.cell_len
    fits = indent + body.cell_len <= width and "\n" not in body.plain
    if (tail is None or not tail.plain) and fits:
        return [Text.assemble(head, body)]  # fits: most log lines, nothing to wrap
    if width - indent < MIN_BODY:
        indent = 0
    avail = max(1, width - indent)
    if indent == 0 and head.plain:
        body = Text.assemble(head, body)
        head = Text()
    rows = list(body.wrap(_CONSOLE, avail, overflow="fold")) or [Text()]
    for row in rows:
        row.rstrip()
    if tail is not None and tail.plain:
        last = rows[-1]
        gap = avail - last.cell_len - tail.cell_len
        if gap >= TAIL_GAP:
            last.append(" " * gap)
            last.append_text(tail)
        else:
            rows.append(Text(" " * max(0, avail - tail.cell_len)).append_text(tail))
    out = []
    for i, row in enumerate(rows):
        lead = head.copy() if i == 0 else Text(" " * indent)
        out.append(lead.append_text(row))
    return out


class Hanging:
    """A Rich renderable of `hang(head, body, width, tail)` at the width it is given,
    so an option list wraps it afresh at each size."""

    def __init__(self, head: Text, body: Text, tail: Text | None = None) -> None:
        self.head = head
        self.body = body
        self.tail = tail

    def __str__(self) -> str:
        tail = f"  {self.tail.plain}" if self.tail is not None and self.tail.plain else ""
        return f"{self.head.plain}{self.body.plain}{tail}"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = hang(self.head, self.body, options.max_width, self.tail)
        text = Text("\n").join(rows)
        text.no_wrap = True
        text.overflow = "crop"
        yield text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = cell_len(str(self))
        return Measurement(min(widest, self.head.cell_len + MIN_BODY), widest)


STAMP = re.compile(r"\[\d+:\d\d(?::\d\d)?\] ")
CONTINUED = 2
"""The indent of a continued event line that has no "[m:ss] " stamp."""

_CONTROL = re.compile("[\u0000-\u001f\u007f]")


def event_rows(line: str, width: int) -> list[str]:
    """An event line as the pane shows it at `width`: whole on one row when it fits,
    else wrapped under the text after its stamp."""
    if width <= 0 or cell_len(line) <= width:
        return [line]
    stamp = STAMP.match(line)
    if stamp:
        head, body = line[: stamp.end()], line[stamp.end() :]
        return [r.plain for r in hang(Text(head), Text(body), width)]
    # no stamp to hang under: the first row takes the whole width, the rest are indented
    first = Text(line).wrap(_CONSOLE, width, overflow="fold")[0].plain.rstrip()
    rest = line[len(first) :].strip()
    if not rest:
        return [first]
    return [first, *(r.plain for r in hang(Text(" " * CONTINUED), Text(rest), width))]


class EventLog(ScrollView, can_focus=False):
    """The drill's events, newest last and always in view. A line longer than the pane
    wraps under the text after its "[m:ss] " stamp instead of being cut; a resize wraps
    every kept line again. Only the newest `max_lines` lines are kept, and a new line
    wraps only itself, so thousands of events cost no more than the last few."""

    DEFAULT_CSS = """
    EventLog {
        overflow-y: auto;
        overflow-x: hidden;
        scrollbar-gutter: stable;
    }
    """

    def __init__(self, max_lines: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._wrapped: list[list[str]] = []
        self._rows: list[str] | None = None
        self._width = 0

    @property
    def lines(self) -> Sequence[str]:
        """The lines as written (unwrapped), oldest first."""
        return self._lines

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def write_line(self, line: str) -> None:
        """Add a line and show it: the pane follows its newest line."""
        for one in line.splitlines() or [""]:
            one = _CONTROL.sub("�", one.expandtabs())
            self._lines.append(one)
            self._wrapped.append(event_rows(one, self._width))
        drop = len(self._lines) - self.max_lines
        if drop > 0:
            del self._lines[:drop]
            del self._wrapped[:drop]
        self._changed()

    def clear(self) -> None:
        self._lines.clear()
        self._wrapped.clear()
        self._changed()

    def _changed(self) -> None:
        self._rows = None
        self.virtual_size = Size(self._width, sum(len(w) for w in self._wrapped))
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._wrapped = [event_rows(line, width) for line in self._lines]
            self._changed()

    def render_line(self, y: int) -> Strip:
        if self._rows is None:
            self._rows = [row for rows in self._wrapped for row in rows]
        width = self.scrollable_content_region.width
        style = self.rich_style
        index = self.scroll_offset.y + y
        if index >= len(self._rows):
            return Strip.blank(width, style)
        row = self._rows[index]
        return Strip([Segment(row, style)], cell_len(row)).crop_extend(0, width, style)
