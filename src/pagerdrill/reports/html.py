"""A drill's report as one self-contained HTML file: the header, the times against the
targets, a chart of every watched signal (inline SVG drawn here, with the alert
threshold and the drill's events), and the timeline.

The page fetches nothing: no external CSS, script, font or image, and a Content
Security Policy that forbids them. The only script is a few inline lines that mark
the body once the charts have laid out (`data-chart="rendered"`, `data-series=N`),
so a headless browser can check the page rendered.

`render_html` is a pure function of a `Timeline`, O(n) in the journal's size: each
series is cut down to at most `MAX_POINTS` points (the minimum and the maximum of
each bucket, so spikes survive).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from pagerdrill.reports.text import _resolution_line, counts_line, decision_line, hypothesis_line
from pagerdrill.reports.timeline import (
    ENGINEER,
    REVIEW,
    SYSTEM,
    Marker,
    Series,
    Timeline,
    before_fault_line,
    faded_line,
    grade_text,
    peak_points,
    wall,
)
from pagerdrill.timefmt import clock, duration, mmss

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


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _or_dash(value: Any) -> str:
    return "—" if value is None or value == "" else _e(value)


def _when(ts: Any) -> str:
    """`2025-05-01 14:02:03 UTC` of an ISO timestamp, or the text itself."""
    if not isinstance(ts, str) or not ts:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return _e(ts)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _num(value: float) -> str:
    """A value for people: 12, 0.25, 1,250, 3.1e-05."""
    if value != value or value in (math.inf, -math.inf):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


def _chart(
    series: Series, index: int, markers: list[Marker], x_max: float, page_t: float | None
) -> str:
    points = downsample(series.points)
    plot_w = WIDTH - PLOT_LEFT - PLOT_RIGHT

    def x_of(t: float) -> float:
        return PLOT_LEFT + max(0.0, min(t, x_max)) / x_max * plot_w

    placed, rows = _label_rows(markers, x_of)
    top = 10 + max(rows, 1) * LABEL_ROW + 6
    bottom = top + PLOT_HEIGHT
    height = bottom + AXIS_BELOW
    lo, hi, step = _value_domain((v for _, v in points), series.threshold)

    def y_of(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * PLOT_HEIGHT

    label = series.label
    out = [
        f'<svg class="chart" id="chart-{index}" data-series="{_e(label)}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
        f'aria-label="{_e(label)} over the drill">'
    ]
    # the alert's side of the threshold, lightly shaded
    if series.threshold is not None:
        ty = y_of(series.threshold)
        if series.op in (">", ">="):
            out.append(
                f'<rect class="alert-zone" x="{PLOT_LEFT}" y="{top}" width="{plot_w}" '
                f'height="{max(0.0, ty - top):.1f}"/>'
            )
        elif series.op in ("<", "<="):
            out.append(
                f'<rect class="alert-zone" x="{PLOT_LEFT}" y="{ty:.1f}" '
                f'width="{plot_w}" height="{max(0.0, bottom - ty):.1f}"/>'
            )
    # value grid and axis
    out.append('<g class="y-axis">')
    v = lo
    while v <= hi + step / 2:
        y = y_of(v)
        out.append(
            f'<line class="grid" x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{PLOT_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(_tick_label(v, step))}</text>"
        )
        v += step
    out.append("</g>")
    # time axis: ticks on whole steps from the page (from the start when nothing paged)
    origin = page_t if page_t is not None else 0.0
    t_step = _time_step(x_max)
    out.append('<g class="x-axis">')
    out.append(
        f'<line class="axis" x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" '
        f'y1="{bottom}" y2="{bottom}"/>'
    )
    k = math.ceil((0.0 - origin) / t_step)
    while origin + k * t_step <= x_max + 1e-9:
        t = origin + k * t_step
        x = x_of(t)
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
    # the signal
    if len(points) > 1:
        coords = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in points)
        first_x, last_x = x_of(points[0][0]), x_of(points[-1][0])
        out.append(
            f'<path class="area" d="M{first_x:.1f},{bottom} L{coords} L{last_x:.1f},{bottom} Z"/>'
        )
        out.append(f'<path class="line plot" d="M{coords}"/>')
    elif points:
        t, v = points[0]
        out.append(f'<circle class="dot plot" cx="{x_of(t):.1f}" cy="{y_of(v):.1f}" r="3"/>')
    else:
        out.append(
            f'<text class="empty" x="{PLOT_LEFT + plot_w / 2:.0f}" '
            f'y="{top + PLOT_HEIGHT / 2:.0f}" text-anchor="middle">'
            "no samples recorded</text>"
        )
    # the alert threshold
    if series.threshold is not None:
        ty = y_of(series.threshold)
        words = f"{series.op or ''} {_num(series.threshold)}".strip()
        if series.alert:
            words = f"{series.alert}: {words}"
        label_y = ty - 5 if ty - 5 > top + 12 else ty + 14
        out.append(
            f'<g class="threshold" data-op="{_e(series.op)}" '
            f'data-value="{series.threshold!r}"><line x1="{PLOT_LEFT}" '
            f'x2="{WIDTH - PLOT_RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text x="{WIDTH - PLOT_RIGHT - 4}" y="{label_y:.1f}" '
            f'text-anchor="end">{_e(words)}</text></g>'
        )
    # the drill's events
    for m, x, row, at_end in placed:
        ly = 10 + row * LABEL_ROW + 11
        kind = m.label.split(" ")[0]
        who = m.who if m.who in (SYSTEM, ENGINEER) else "other"
        tx, anchor = (x - 3, "end") if at_end else (x + 3, "start")
        when = clock(m.t - page_t) if page_t is not None else _since_start(m.t)
        out.append(
            f'<g class="marker {who} {_e(kind)}" data-t="{m.t:.3f}">'
            f"<title>{_e(m.label)} ({_e(who)}) at {_e(when)}</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ly - 10:.1f}" y2="{bottom}"/>'
            f'<text x="{tx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">'
            f"{_e(m.label)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _series_section(series: Series, index: int, timeline: Timeline, x_max: float) -> str:
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


# ------------------------------------------------------------------ tables


def _result(met: bool | None) -> str:
    if met is None:
        return '<td class="result none">—</td>'
    if met:
        return '<td class="result met">✓ met</td>'
    return '<td class="result missed">✗ missed</td>'


def _targets(summary: dict[str, Any]) -> str:
    rows = []

    def row(
        what: str, target: float | None, done: float | None, met: bool | None, note: str = ""
    ) -> None:
        target_text = f"≤ {mmss(target)}" if target is not None else "—"
        done_text = mmss(done) if done is not None else "not done"
        note_html = f' <span class="note">{_e(note)}</span>' if note else ""
        rows.append(
            f'<tr><td>{_e(what)}{note_html}</td><td class="num">{_e(target_text)}</td>'
            f'<td class="num">{_e(done_text)}</td>{_result(met)}</tr>'
        )

    steps = [s for s in summary.get("steps") or [] if isinstance(s, dict)]
    if not any(s.get("id") == "acknowledge" for s in steps):
        row("Acknowledged", None, _seconds(summary.get("time_to_ack_s")), None)
    for s in steps:
        target = _seconds(s.get("target_s"))
        done = _seconds(s.get("done_s"))
        met = bool(s.get("met")) if target is not None else None
        row(str(s.get("title") or s.get("id") or "step"), target, done, met)
    hyp = summary.get("hypothesis") or {}
    if isinstance(hyp, dict) and (hyp.get("attempts") or hyp.get("target_s") is not None):
        target = _seconds(hyp.get("target_s"))
        done = _seconds(hyp.get("correct_s"))
        attempts = int(hyp.get("attempts") or 0)
        note = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if attempts and not hyp.get("first_correct"):
            first = hyp.get("first_grade") or "wrong"
            note += (
                ", the first was wrong"
                if first == "wrong"
                else f", the first: {grade_text(first, hyp.get('first_graded_by'))}"
            )
        met = None if target is None else (done is not None and done <= target)
        row("Root-cause hypothesis (first right one)", target, done, met, note)
    row("Mitigation applied", None, _seconds(summary.get("time_to_mitigate_s")), None)
    recovery = _seconds(summary.get("time_to_recovery_s"))
    row("Recovery verified by the probes", None, recovery, None)
    return (
        '<table class="targets"><thead><tr><th>From the page to…</th><th class="num">Target</th>'
        '<th class="num">Actual</th><th>Result</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _findings(summary: dict[str, Any]) -> str:
    """The hypothesis, the decision, the resolution and the counts, as the text exports
    word them."""

    def worded(line: Callable[[dict], str]) -> str:
        # a summary with fields missing (a hand-edited journal) still renders
        try:
            return line(summary)
        except (KeyError, TypeError, AttributeError):
            return "—"

    rows = [
        ("Hypothesis", worded(hypothesis_line)),
        ("Decision", worded(decision_line)),
        ("Resolution", worded(_resolution_line)),
    ]
    return (
        '<dl class="findings">'
        + "".join(f"<div><dt>{name}</dt><dd>{_e(value)}</dd></div>" for name, value in rows)
        + f'</dl><p class="counts">{_e(worded(counts_line))}</p>'
    )


def _timeline_table(timeline: Timeline) -> str:
    rows = []
    for entry in timeline.entries:
        who = entry.who if entry.who in (SYSTEM, ENGINEER, REVIEW) else "other"
        rows.append(
            f'<tr class="{who}"><td class="num">{_e(wall(entry.ts))}</td>'
            f'<td class="num">{_e(clock(entry.page_s))}</td><td class="who">{_e(who)}</td>'
            f"<td>{_e(entry.text)}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="4" class="empty">no events</td></tr>')
    return (
        '<table class="timeline"><thead><tr><th class="num">Wall (UTC)</th>'
        '<th class="num">T±</th><th>Who</th><th>What happened</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


# ------------------------------------------------------------------ page


def _verdict(review: dict[str, Any] | None) -> str:
    if not review:
        return '<span class="muted">not reviewed</span>'
    verdict = str(review.get("verdict") or "?").upper()
    by = f" by {_e(review.get('by'))}" if review.get("by") else ""
    return f'<span class="verdict">{_e(verdict)}</span>{by}'


def _outcome(summary: dict[str, Any]) -> str:
    outcome = str(summary.get("outcome") or "unknown")
    cls = {"closed": "good", "aborted": "bad", "crashed": "bad"}.get(outcome, "")
    extra = ""
    if outcome == "closed":
        extra = (
            ", recovery verified" if summary.get("recovery_verified") else ", recovery NOT verified"
        )
        if not summary.get("recovery_verified"):
            cls = "bad"
    elif summary.get("abort_reason"):
        extra = f": {summary['abort_reason']}"
    return f'<span class="outcome {cls}">{_e(outcome + extra)}</span>'


STYLE = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --soft:#f5f7fa; --accent:#0b7285;
  --system:#52606d; --engineer:#3b5bdb; --review:#862e9c; --bad:#c92a2a; --good:#2b8a3e; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 32px 48px; }
header { border-bottom: 2px solid var(--line); padding-bottom: 16px; margin-bottom: 8px; }
h1 { font-size: 26px; line-height: 1.25; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 18px; margin: 32px 0 10px; font-weight: 650; }
h3 { font-size: 15px; margin: 0; font-weight: 650; font-family: ui-monospace, SFMono-Regular,
  Menlo, Consolas, monospace; }
.sev { display: inline-block; font-size: 13px; font-weight: 700; padding: 1px 8px;
  border-radius: 4px; background: #fff4e6; color: #a61e4d; border: 1px solid #ffd8a8;
  vertical-align: 4px; margin-left: 8px; }
.meta { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 10px 24px;
  margin: 14px 0 0; }
.meta div { min-width: 0; }
.meta dt { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.meta dd { margin: 0; font-weight: 550; overflow-wrap: anywhere; }
.findings { margin: 14px 0 0; } .findings div { display: flex; gap: 12px; margin: 4px 0; }
.findings dt { min-width: 7em; color: var(--muted); } .findings dd { margin: 0; }
.counts { color: var(--muted); margin: 8px 0 0; }
.outcome.good { color: var(--good); } .outcome.bad { color: var(--bad); }
.verdict { font-weight: 700; }
.muted, .note, .chart-meta { color: var(--muted); }
.note { font-size: 13px; }
.problems { background: #fff5f5; border: 1px solid #ffc9c9; border-radius: 6px;
  padding: 10px 14px; margin: 16px 0; }
.problems ul { margin: 4px 0 0; padding-left: 20px; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line);
  padding: 6px 10px; }
td { border-bottom: 1px solid var(--line); padding: 5px 10px; vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.targets td.result { white-space: nowrap; font-weight: 600; }
.result.met { color: var(--good); } .result.missed { color: var(--bad); }
.result.none { color: var(--muted); font-weight: 400; }
.timeline td { padding: 3px 10px; }
.timeline td.who { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  white-space: nowrap; }
.timeline tr.system td.who { color: var(--system); }
.timeline tr.engineer td.who { color: var(--engineer); }
.timeline tr.engineer td:last-child { color: #1c2a8c; }
.timeline tr.review td.who { color: var(--review); }
.timeline tbody tr:nth-child(even) { background: var(--soft); }
.legend { font-size: 13px; color: var(--muted); margin: 0 0 8px; }
.legend span { margin-right: 18px; white-space: nowrap; }
.legend i { display: inline-block; width: 22px; height: 0; vertical-align: middle;
  margin-right: 6px; }
.legend .l-signal { border-top: 2px solid var(--accent); }
.legend .l-threshold { border-top: 2px dashed var(--bad); }
.legend .l-system { width: 0; height: 14px; border-left: 2px solid var(--system); }
.legend .l-engineer { width: 0; height: 14px; border-left: 2px dashed var(--engineer); }
figure.signal { margin: 0 0 18px; padding: 12px 14px 6px; border: 1px solid var(--line);
  border-radius: 8px; break-inside: avoid; page-break-inside: avoid; }
.chart-meta { margin: 2px 0 4px; font-size: 13px; }
svg.chart { display: block; height: auto; font-size: 11px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg.chart text { fill: var(--muted); }
svg.chart .grid { stroke: #eef2f6; stroke-width: 1; }
svg.chart .axis { stroke: #9aa5b1; stroke-width: 1; }
svg.chart .tick { stroke: #9aa5b1; }
svg.chart .caption { font-style: italic; }
svg.chart .alert-zone { fill: #fff5f5; }
svg.chart .area { fill: var(--accent); fill-opacity: .08; stroke: none; }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.8;
  stroke-linejoin: round; stroke-linecap: round; }
svg.chart .dot { fill: var(--accent); }
svg.chart .empty { font-size: 13px; }
svg.chart .threshold line { stroke: var(--bad); stroke-width: 1.3; stroke-dasharray: 6 4; }
svg.chart .threshold text { fill: var(--bad); font-weight: 600; }
svg.chart .marker line { stroke-width: 1.2; }
svg.chart .marker.system line { stroke: var(--system); stroke-opacity: .75; }
svg.chart .marker.system text { fill: var(--system); }
svg.chart .marker.engineer line { stroke: var(--engineer); stroke-dasharray: 3 3; }
svg.chart .marker.engineer text { fill: var(--engineer); font-weight: 600; }
svg.chart .marker.other line { stroke: var(--review); }
svg.chart .marker.page line { stroke: var(--bad); stroke-opacity: 1; stroke-width: 1.6; }
svg.chart .marker.page text { fill: var(--bad); font-weight: 700; }
svg.chart .marker text { paint-order: stroke; stroke: #fff; stroke-width: 3px; }
footer { margin-top: 28px; font-size: 12px; color: var(--muted); }
@media (max-width: 760px) { .meta { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  .timeline tbody tr:nth-child(even) { background: none; }
}
"""

# marks the body once every chart has laid out: data-chart="rendered" and the number of
# series that were plotted (a line or a dot with a non-empty box)
SCRIPT = """
(function () {
  var charts = document.querySelectorAll("svg.chart"), laid = 0, plotted = 0;
  for (var i = 0; i < charts.length; i++) {
    var box = charts[i].getBBox();
    if (box.width > 0 && box.height > 0) laid++;
    var plot = charts[i].querySelector(".plot");
    if (plot) {
      var b = plot.getBBox();
      if (b.width > 0 || b.height > 0) plotted++;
    }
  }
  document.body.dataset.series = String(plotted);
  document.body.dataset.chart = laid === charts.length ? "rendered" : "failed";
})();
"""


def render_html(timeline: Timeline) -> str:
    """The drill's report as one self-contained HTML page."""
    summary = timeline.summary
    title = summary.get("title") or summary.get("scenario") or timeline.drill or "Drill"
    severity = summary.get("severity")
    x_max = max(
        [1.0, timeline.duration_s]
        + [m.t for m in timeline.markers]
        + [s.points[-1][0] for s in timeline.series if s.points]
    )
    parts = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — drill report</title>",
        f"<style>{STYLE}</style></head>",
        f'<body data-chart="pending" data-charts="{len(timeline.series)}"><main>',
        "<header>",
        f"<h1>{_e(title)}"
        + (f'<span class="sev">{_e(severity)}</span>' if severity else "")
        + "</h1>",
        '<dl class="meta">',
    ]
    meta = [
        ("Engineer", _or_dash(summary.get("engineer"))),
        ("Scenario", _or_dash(summary.get("scenario"))),
        ("Started", _when(summary.get("started"))),
        ("Duration", _e(duration(timeline.duration_s))),
        ("Outcome", _outcome(summary)),
        ("Review", _verdict(timeline.review)),
        ("Page", _or_dash(summary.get("page_alert") or "no page")),
        ("Time to acknowledge", _e(mmss(_seconds(summary.get("time_to_ack_s"))))),
        ("Time to recovery", _e(mmss(_seconds(summary.get("time_to_recovery_s"))))),
        ("Hints used", _e(summary.get("hints_used", 0))),
        ("Notes", _e(summary.get("notes", 0))),
    ]
    faded = faded_line(summary)
    if faded:
        meta.append(("Symptom", _e(faded)))
    warmup = before_fault_line(summary)
    if warmup:
        meta.append(("Before the fault", _e(warmup)))
    parts += [f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in meta]
    parts.append("</dl></header>")
    if not timeline.complete or timeline.problems:
        shown = timeline.problems[:20]
        more = len(timeline.problems) - len(shown)
        parts.append(
            '<div class="problems"><b>This journal is incomplete or damaged;</b> '
            "the report shows what could be read."
            + (
                "<ul>"
                + "".join(f"<li>{_e(p)}</li>" for p in shown)
                + (f"<li>… and {more} more</li>" if more > 0 else "")
                + "</ul>"
                if shown
                else ""
            )
            + "</div>"
        )
    parts.append("<section><h2>Times against the targets</h2>")
    parts.append(_targets(summary))
    parts.append(_findings(summary))
    parts.append("</section>")
    if timeline.series:
        parts.append("<section><h2>Signals</h2>")
        parts.append(
            '<p class="legend"><span><i class="l-signal"></i>signal</span>'
            '<span><i class="l-threshold"></i>alert threshold</span>'
            '<span><i class="l-system"></i>system event</span>'
            '<span><i class="l-engineer"></i>engineer action</span></p>'
        )
        for i, series in enumerate(timeline.series):
            parts.append(_series_section(series, i, timeline, x_max))
        parts.append("</section>")
    if timeline.reviews:
        parts.append("<section><h2>Reviews</h2><ul>")
        for r in timeline.reviews:
            comment = f": {_e(r.get('comment'))}" if r.get("comment") else ""
            parts.append(
                f"<li>{_e(wall(str(r.get('ts') or '')))} — {_e(r.get('by') or 'someone')}: "
                f"<b>{_e(str(r.get('verdict') or '?').upper())}</b>{comment}</li>"
            )
        parts.append("</ul></section>")
    parts.append("<section><h2>Timeline</h2>")
    parts.append(_timeline_table(timeline))
    parts.append("</section>")
    parts.append(
        f"<footer>pagerdrill report of drill {_e(timeline.drill)} · journal "
        f"{_e(timeline.journal.name)} · {len(timeline.entries):,} timeline entries</footer>"
    )
    parts.append(f"</main><script>{SCRIPT}</script></body></html>\n")
    return "".join(parts)
