"""The charts of a drill's HTML report: each watched signal as inline SVG, with the
alert threshold and the drill's events marked on it.

Each series is cut down to at most `MAX_POINTS` points (the minimum and the maximum of
each bucket, so spikes survive), so a chart is O(n) in the journal's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from typing import Any

from pagerdrill.reports.timeline import ENGINEER, SYSTEM, Marker, Series, Timeline, peak_points
from pagerdrill.timefmt import clock

MAX_POINTS = 600
"""At most this many points are drawn per series."""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

# chart geometry, in viewBox units (the SVG scales to the page's width)
WIDTH = 960
PLOT_LEFT = 64
PLOT_RIGHT = 20
PLOT_HEIGHT = 170
AXIS_BELOW = 36
LABEL_ROW = 15
LABEL_CHAR = 6.4  # approximate width of a character of an 11-unit marker label
MAX_LABEL_ROWS = 6


def esc(value: Any) -> str:
    """Text for HTML, attributes included: None is empty."""
    return escape("" if value is None else str(value), quote=True)


_e = esc


def _num(value: float) -> str:
    """A value for people: 12, 0.25, 1,250, 3.1e-05."""
    if value != value or value in (math.inf, -math.inf):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


# ------------------------------------------------------------------ downsampling


def downsample(
    points: list[tuple[float, float]], limit: int = MAX_POINTS
) -> list[tuple[float, float]]:
    """At most `limit` points that keep the shape: the series is cut into `limit // 2`
    runs of consecutive points, and each run gives its lowest and its highest point
    (in time order). The first and the last point are always kept. O(n)."""
    n = len(points)
    if n <= limit:
        return list(points)
    buckets = max(1, (limit - 2) // 2)
    out = [points[0]]
    inner = n - 2
    for b in range(buckets):
        start = 1 + b * inner // buckets
        stop = 1 + (b + 1) * inner // buckets
        if start >= stop:
            continue
        lo = hi = start
        lo_v = hi_v = points[start][1]
        for i in range(start + 1, stop):
            v = points[i][1]
            if v < lo_v:
                lo, lo_v = i, v
            elif v > hi_v:
                hi, hi_v = i, v
        if lo == hi:
            out.append(points[lo])
        else:
            first, second = (lo, hi) if lo < hi else (hi, lo)
            out.append(points[first])
            out.append(points[second])
    out.append(points[-1])
    return out


# ------------------------------------------------------------------ axes


def _nice_step(span: float, ticks: int) -> float:
    """A 1-2-5 step that cuts `span` into about `ticks` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)


def _time_step(span: float) -> float:
    for step in TIME_STEPS:
        if span / step <= 9:
            return step
    return TIME_STEPS[-1] * math.ceil(span / TIME_STEPS[-1] / 9)


def _since_start(seconds: float) -> str:
    return clock(seconds).removeprefix("T+")


def _value_domain(values: Iterable[float], threshold: float | None) -> tuple[float, float, float]:
    lo = hi = None
    for v in values:
        if lo is None or v < lo:
            lo = v
        if hi is None or v > hi:
            hi = v
    if threshold is not None:
        lo = threshold if lo is None else min(lo, threshold)
        hi = threshold if hi is None else max(hi, threshold)
    if lo is None or hi is None:
        lo, hi = 0.0, 1.0
    lo = min(lo, 0.0)
    if hi <= lo:
        hi = lo + 1.0
    hi += (hi - lo) * 0.08  # room above the peak and the threshold's label
    step = _nice_step(hi - lo, 4)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _tick_label(value: float, step: float) -> str:
    if abs(value) < step / 1e6:
        return "0"
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    if step < 1 and not float(step * 10**decimals).is_integer():
        decimals += 1
    text = f"{value:,.{decimals}f}"
    return text


# ------------------------------------------------------------------ one chart


def _label_rows(
    markers: list[Marker], x_of: Callable[[float], float]
) -> tuple[list[tuple[Marker, float, int, bool]], int]:
    """Place each marker's label in the band above the plot: the first row where it
    does not overlap the label before it. (marker, x, row, anchored at the end)."""
    ends: list[float] = []
    placed = []
    right = WIDTH - PLOT_RIGHT
    for m in sorted(markers, key=lambda m: m.t):
        x = x_of(m.t)
        width = len(m.label) * LABEL_CHAR + 6
        at_end = x + 3 + width > right
        a, b = (x - 3 - width, x) if at_end else (x, x + 3 + width)
        row = next((i for i, end in enumerate(ends) if end + 6 <= a), None)
        if row is None:
            if len(ends) < MAX_LABEL_ROWS:
                ends.append(b)
                row = len(ends) - 1
            else:
                row = min(range(len(ends)), key=lambda i: ends[i])
                ends[row] = max(ends[row], b)
        else:
            ends[row] = b
        placed.append((m, x, row, at_end))
    return placed, len(ends)


OPS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below", "==": "at"}


def _x_of(t: float, x_max: float) -> float:
    """Where time `t` (seconds since the start) falls across the plot."""
    return PLOT_LEFT + max(0.0, min(t, x_max)) / x_max * (WIDTH - PLOT_LEFT - PLOT_RIGHT)


@dataclass(frozen=True)
class _Frame:
    """Where a chart's plot sits in its SVG, and how times and values map onto it."""

    x_max: float
    top: float
    lo: float
    hi: float
    step: float

    plot_w = WIDTH - PLOT_LEFT - PLOT_RIGHT

    @property
    def bottom(self) -> float:
        return self.top + PLOT_HEIGHT

    def x_of(self, t: float) -> float:
        return _x_of(t, self.x_max)

    def y_of(self, v: float) -> float:
        return self.bottom - (v - self.lo) / (self.hi - self.lo) * PLOT_HEIGHT


def _alert_zone(series: Series, f: _Frame) -> list[str]:
    """The alert's side of the threshold, lightly shaded."""
    if series.threshold is None:
        return []
    ty = f.y_of(series.threshold)
    if series.op in (">", ">="):
        return [
            f'<rect class="alert-zone" x="{PLOT_LEFT}" y="{f.top}" width="{f.plot_w}" '
            f'height="{max(0.0, ty - f.top):.1f}"/>'
        ]
    if series.op in ("<", "<="):
        return [
            f'<rect class="alert-zone" x="{PLOT_LEFT}" y="{ty:.1f}" '
            f'width="{f.plot_w}" height="{max(0.0, f.bottom - ty):.1f}"/>'
        ]
    return []


def _value_axis(f: _Frame) -> list[str]:
    out = ['<g class="y-axis">']
    v = f.lo
    while v <= f.hi + f.step / 2:
        y = f.y_of(v)
        out.append(
            f'<line class="grid" x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{PLOT_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(_tick_label(v, f.step))}</text>"
        )
        v += f.step
    out.append("</g>")
    return out


def _time_axis(f: _Frame, page_t: float | None) -> list[str]:
    """Ticks on whole steps from the page (from the start when nothing paged)."""
    bottom = f.bottom
    origin = page_t if page_t is not None else 0.0
    t_step = _time_step(f.x_max)
    out = ['<g class="x-axis">']
    out.append(
        f'<line class="axis" x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" '
        f'y1="{bottom}" y2="{bottom}"/>'
    )
    k = math.ceil((0.0 - origin) / t_step)
    while origin + k * t_step <= f.x_max + 1e-9:
        t = origin + k * t_step
        x = f.x_of(t)
        text = clock(t - origin) if page_t is not None else _since_start(t)
        out.append(
            f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" '
            f'y2="{bottom + 5}"/><text x="{x:.1f}" y="{bottom + 18}" '
            f'text-anchor="middle">{_e(text)}</text>'
        )
        k += 1
    caption = "from the page" if page_t is not None else "since the drill started (no page)"
    out.append(
        f'<text class="caption" x="{WIDTH - PLOT_RIGHT}" y="{bottom + 32}" '
        f'text-anchor="end">{caption}</text></g>'
    )
    return out


def _signal(points: list[tuple[float, float]], f: _Frame) -> str:
    """The signal's line and area; a dot for one sample; a word for none."""
    bottom = f.bottom
    if len(points) > 1:
        coords = " ".join(f"{f.x_of(t):.1f},{f.y_of(v):.1f}" for t, v in points)
        first_x, last_x = f.x_of(points[0][0]), f.x_of(points[-1][0])
        return (
            f'<path class="area" d="M{first_x:.1f},{bottom} L{coords} L{last_x:.1f},{bottom} Z"/>'
            f'<path class="line plot" d="M{coords}"/>'
        )
    if points:
        t, v = points[0]
        return f'<circle class="dot plot" cx="{f.x_of(t):.1f}" cy="{f.y_of(v):.1f}" r="3"/>'
    return (
        f'<text class="empty" x="{PLOT_LEFT + f.plot_w / 2:.0f}" '
        f'y="{f.top + PLOT_HEIGHT / 2:.0f}" text-anchor="middle">'
        "no samples recorded</text>"
    )


def _threshold(series: Series, f: _Frame) -> list[str]:
    if series.threshold is None:
        return []
    ty = f.y_of(series.threshold)
    words = f"{series.op or ''} {_num(series.threshold)}".strip()
    if series.alert:
        words = f"{series.alert}: {words}"
    label_y = ty - 5 if ty - 5 > f.top + 12 else ty + 14
    return [
        f'<g class="threshold" data-op="{_e(series.op)}" '
        f'data-value="{series.threshold!r}"><line x1="{PLOT_LEFT}" '
        f'x2="{WIDTH - PLOT_RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        f'<text x="{WIDTH - PLOT_RIGHT - 4}" y="{label_y:.1f}" '
        f'text-anchor="end">{_e(words)}</text></g>'
    ]


def _markers(
    placed: list[tuple[Marker, float, int, bool]], f: _Frame, page_t: float | None
) -> list[str]:
    """The drill's events, each a line down the plot under its label's row."""
    out = []
    for m, x, row, at_end in placed:
        ly = 10 + row * LABEL_ROW + 11
        kind = m.label.split(" ")[0]
        who = m.who if m.who in (SYSTEM, ENGINEER) else "other"
        tx, anchor = (x - 3, "end") if at_end else (x + 3, "start")
        when = clock(m.t - page_t) if page_t is not None else _since_start(m.t)
        out.append(
            f'<g class="marker {who} {_e(kind)}" data-t="{m.t:.3f}">'
            f"<title>{_e(m.label)} ({_e(who)}) at {_e(when)}</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ly - 10:.1f}" y2="{f.bottom}"/>'
            f'<text x="{tx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">'
            f"{_e(m.label)}</text></g>"
        )
    return out


def _chart(
    series: Series, index: int, markers: list[Marker], x_max: float, page_t: float | None
) -> str:
    points = downsample(series.points)
    placed, rows = _label_rows(markers, lambda t: _x_of(t, x_max))
    lo, hi, step = _value_domain((v for _, v in points), series.threshold)
    f = _Frame(x_max, 10 + max(rows, 1) * LABEL_ROW + 6, lo, hi, step)
    label = series.label
    out = [
        f'<svg class="chart" id="chart-{index}" data-series="{_e(label)}" '
        f'viewBox="0 0 {WIDTH} {f.bottom + AXIS_BELOW:.0f}" width="100%" role="img" '
        f'aria-label="{_e(label)} over the drill">'
    ]
    out += _alert_zone(series, f)
    out += _value_axis(f)
    out += _time_axis(f, page_t)
    out.append(_signal(points, f))
    out += _threshold(series, f)
    out += _markers(placed, f, page_t)
    out.append("</svg>")
    return "".join(out)


def series_section(series: Series, index: int, timeline: Timeline, x_max: float) -> str:
    page_t = timeline.page_t
    head = [f'<h3>{_e(series.label)}</h3><p class="chart-meta">']
    if series.threshold is not None:
        side = OPS.get(series.op or "", series.op or "")
        who = f"alert <b>{_e(series.alert)}</b>" if series.alert else "the alert"
        head.append(f"{who} fires {_e(side)} {_e(_num(series.threshold))}")
    else:
        head.append("watched for recovery")
    if series.points:
        # a peak of the incident: from the fault on, never a warm-up before it
        after = peak_points(series, timeline.fault_t)
        last = series.points[-1][1]
        if after:
            peak_t, peak = max(after, key=lambda p: p[1])
            at = clock(peak_t - page_t) if page_t is not None else _since_start(peak_t)
            head.append(f" · peak {_e(_num(peak))} at {_e(at)}")
        else:
            head.append(" · no fault, no peak")
        head.append(f" · last {_e(_num(last))} · {len(series.points):,} samples")
    else:
        head.append(" · no samples")
    head.append("</p>")
    chart = _chart(series, index, timeline.markers, x_max, page_t)
    return f'<figure class="signal">{"".join(head)}{chart}</figure>'
