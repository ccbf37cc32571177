"""The Signals pane: the drill's dashboard, one line per signal.

Before the page it shows the stack's standard signals only, the same for every
scenario, and no alert rule: nothing on it tells which fault is coming. From the page
on, the scenario's watched signals come first, the alert's rule under the signals it
reads, then the standard ones. Every signal is sampled from the start, so a trend
drawn after the page reaches back before it. A line is a label, the latest value and,
where the pane is wide enough, a sparkline; at 80 columns it is a compact table that
scrolls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from pagerdrill.signals.dashboard import Row, value_of

POINTS = 40
"""Samples kept per signal, the most a sparkline draws."""
VALUE_W = 6
MIN_SPARK = 4
BLOCKS = "▁▂▃▄▅▆▇█"


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def shown(value: float | None) -> str:
    if value is None:
        return "—"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def spark(points: Iterable[float], width: int) -> str:
    """The last `width` points as block characters, from 0 (or the lowest) to the top."""
    tail = list(points)[-width:]
    if not tail:
        return ""
    lo, hi = min(0.0, *tail), max(tail)
    span = hi - lo
    if span <= 0:
        return BLOCKS[0] * len(tail)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int((v - lo) / span * len(BLOCKS)))] for v in tail)


def table_text(
    sections: Sequence[Sequence[Row]],
    values: dict[tuple[str, str], float | None],
    history: dict[tuple[str, str], deque[float]],
    width: int,
) -> Text:
    """The sections' rows for a pane `width` columns wide; the alert's rule goes under
    the last row that reads it, a section after the first is headed `stack`."""
    rows = [row for section in sections for row in section]
    label_w = min(max((len(r.label) for r in rows), default=8), max(4, width - VALUE_W - 1))
    spark_w = width - label_w - VALUE_W - 2
    if spark_w < MIN_SPARK:
        spark_w = 0
    out = Text(no_wrap=False)
    for n, section in enumerate(sections):
        if n:
            out.append("stack\n", style="dim italic")
        for i, row in enumerate(section):
            key = (row.probe, row.field)
            label = row.label if len(row.label) <= label_w else row.label[: label_w - 1] + "…"
            out.append(f"{label:<{label_w}}", style="bold" if row.rule else "")
            out.append(f" {shown(values.get(key)):>{VALUE_W}}", style="bold")
            if spark_w:
                out.append(f" {spark(history.get(key, ()), spark_w)}", style="cyan")
            out.append("\n")
            following = section[i + 1].rule if i + 1 < len(section) else None
            if row.rule and following != row.rule:
                out.append(f"alert: {row.rule}\n", style="dim")
    out.rstrip()
    return out


class SignalsPane(VerticalScroll):
    """The drill's dashboard (`o` on the dashboards step focuses it; ↑↓ scroll)."""

    DEFAULT_CSS = """
    SignalsPane { scrollbar-size-vertical: 1; }
    SignalsPane #signals-table { height: auto; }
    """

    def __init__(self, stack: Sequence[Row], watched: Sequence[Row], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stack = list(stack)
        self.watched = list(watched)
        self.paged = False
        keys = {(r.probe, r.field) for r in [*self.stack, *self.watched]}
        self.history: dict[tuple[str, str], deque[float]] = {k: deque(maxlen=POINTS) for k in keys}
        self.values: dict[tuple[str, str], float | None] = dict.fromkeys(keys)
        self.scales = {(r.probe, r.field): r.scale for r in [*self.stack, *self.watched]}
        self._drawn: tuple[str, int] | None = None

    def compose(self) -> ComposeResult:
        yield Label("Signals", classes="panel-title")
        yield Static(id="signals-table")

    def on_mount(self) -> None:
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    @property
    def sections(self) -> list[list[Row]]:
        """What the pane shows now: the scenario's own rows only once paged."""
        return [self.watched, self.stack] if self.paged and self.watched else [self.stack]

    def sample(self, samples: dict) -> None:
        """One probe cycle: every signal's latest value and its history."""
        for key in self.history:
            value = number(value_of(samples, Row(*key, "")))
            if value is not None:
                value *= self.scales[key]
            self.values[key] = value
            self.history[key].append(value if value is not None else 0.0)
        self.draw()

    def page(self) -> None:
        self.paged = True
        self.draw()

    def width(self) -> int:
        return self.scrollable_content_region.width or 24

    def draw(self) -> None:
        if not self.is_mounted:
            return
        text = table_text(self.sections, self.values, self.history, self.width())
        lines = text.plain.count("\n")
        key = (text.plain, lines)
        if key == self._drawn:
            return
        # a change of line count (the page) lays the pane out again; a new value does not
        layout = self._drawn is None or self._drawn[1] != lines
        self._drawn = key
        self.query_one("#signals-table", Static).update(text, layout=layout)

    def plain(self) -> str:
        """What the pane shows, as text (for tests and the terminal captures)."""
        return table_text(self.sections, self.values, self.history, self.width()).plain
