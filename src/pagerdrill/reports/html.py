"""A drill's report as one self-contained HTML file: the header, the times against the
targets, a chart of every watched signal (inline SVG, `reports.charts`, with the alert
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
from typing import Any

from pagerdrill.journal.summary import Summary
from pagerdrill.reports.charts import MAX_POINTS, downsample, series_section
from pagerdrill.reports.charts import esc as _e
from pagerdrill.reports.text import _resolution_line, counts_line, decision_line, hypothesis_line
from pagerdrill.reports.timeline import (
    ENGINEER,
    REVIEW,
    SYSTEM,
    ReviewNote,
    Timeline,
    before_fault_line,
    faded_line,
    grade_text,
    wall,
)
from pagerdrill.timefmt import clock, duration, mmss

__all__ = ["CSP", "MAX_POINTS", "downsample", "render_html"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


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


# ------------------------------------------------------------------ tables


def _result(met: bool | None) -> str:
    if met is None:
        return '<td class="result none">—</td>'
    if met:
        return '<td class="result met">✓ met</td>'
    return '<td class="result missed">✗ missed</td>'


def _targets(summary: Summary) -> str:
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

    if not any(s.id == "acknowledge" for s in summary.steps):
        row("Acknowledged", None, summary.time_to_ack_s, None)
    for s in summary.steps:
        row(s.title or s.id or "step", s.target_s, s.done_s, s.met)
    hyp = summary.hypothesis
    if hyp.attempts or hyp.target_s is not None:
        target, done, attempts = hyp.target_s, hyp.correct_s, hyp.attempts
        note = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if attempts and not hyp.first_correct:
            first = hyp.first_grade or "wrong"
            note += (
                ", the first was wrong"
                if first == "wrong"
                else f", the first: {grade_text(first, hyp.first_graded_by)}"
            )
        met = None if target is None else (done is not None and done <= target)
        row("Root-cause hypothesis (first right one)", target, done, met, note)
    row("Mitigation applied", None, summary.time_to_mitigate_s, None)
    row("Recovery verified by the probes", None, summary.time_to_recovery_s, None)
    return (
        '<table class="targets"><thead><tr><th>From the page to…</th><th class="num">Target</th>'
        '<th class="num">Actual</th><th>Result</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _findings(summary: Summary) -> str:
    """The hypothesis, the decision, the resolution and the counts, as the text exports
    word them."""
    rows = [
        ("Hypothesis", hypothesis_line(summary)),
        ("Decision", decision_line(summary)),
        ("Resolution", _resolution_line(summary)),
    ]
    return (
        '<dl class="findings">'
        + "".join(f"<div><dt>{name}</dt><dd>{_e(value)}</dd></div>" for name, value in rows)
        + f'</dl><p class="counts">{_e(counts_line(summary))}</p>'
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


def _verdict(review: ReviewNote | None) -> str:
    if not review:
        return '<span class="muted">not reviewed</span>'
    verdict = (review.verdict or "?").upper()
    by = f" by {_e(review.by)}" if review.by else ""
    return f'<span class="verdict">{_e(verdict)}</span>{by}'


def _outcome(summary: Summary) -> str:
    outcome = summary.outcome or "unknown"
    cls = {"closed": "good", "aborted": "bad", "crashed": "bad"}.get(outcome, "")
    extra = ""
    if outcome == "closed":
        extra = ", recovery verified" if summary.recovery_verified else ", recovery NOT verified"
        if not summary.recovery_verified:
            cls = "bad"
    elif summary.abort_reason:
        extra = f": {summary.abort_reason}"
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


def _meta(timeline: Timeline) -> list[str]:
    """The header's facts: who, what, when, how it ended, and the times people ask first."""
    summary = timeline.summary
    meta = [
        ("Engineer", _or_dash(summary.engineer)),
        ("Scenario", _or_dash(summary.scenario)),
        ("Started", _when(summary.started)),
        ("Duration", _e(duration(timeline.duration_s))),
        ("Outcome", _outcome(summary)),
        ("Review", _verdict(timeline.review)),
        ("Page", _or_dash(summary.page_alert or "no page")),
        ("Time to acknowledge", _e(mmss(summary.time_to_ack_s))),
        ("Time to recovery", _e(mmss(summary.time_to_recovery_s))),
        ("Hints used", _e(summary.hints_used)),
        ("Notes", _e(summary.notes)),
    ]
    faded = faded_line(summary)
    if faded:
        meta.append(("Symptom", _e(faded)))
    warmup = before_fault_line(summary)
    if warmup:
        meta.append(("Before the fault", _e(warmup)))
    return [f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in meta]


def _problems(timeline: Timeline) -> list[str]:
    """What could not be read of a damaged journal (the first 20 problems)."""
    if timeline.complete and not timeline.problems:
        return []
    shown = timeline.problems[:20]
    more = len(timeline.problems) - len(shown)
    return [
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
    ]


def _signals(timeline: Timeline) -> list[str]:
    if not timeline.series:
        return []
    # every chart shares one time axis: to the drill's end, its last marker or sample
    x_max = max(
        [1.0, timeline.duration_s]
        + [m.t for m in timeline.markers]
        + [s.points[-1][0] for s in timeline.series if s.points]
    )
    parts = [
        "<section><h2>Signals</h2>",
        '<p class="legend"><span><i class="l-signal"></i>signal</span>'
        '<span><i class="l-threshold"></i>alert threshold</span>'
        '<span><i class="l-system"></i>system event</span>'
        '<span><i class="l-engineer"></i>engineer action</span></p>',
    ]
    parts += [series_section(s, i, timeline, x_max) for i, s in enumerate(timeline.series)]
    parts.append("</section>")
    return parts


def _reviews(timeline: Timeline) -> list[str]:
    if not timeline.reviews:
        return []
    parts = ["<section><h2>Reviews</h2><ul>"]
    for r in timeline.reviews:
        comment = f": {_e(r.comment)}" if r.comment else ""
        parts.append(
            f"<li>{_e(wall(r.ts or ''))} — {_e(r.by or 'someone')}: "
            f"<b>{_e((r.verdict or '?').upper())}</b>{comment}</li>"
        )
    parts.append("</ul></section>")
    return parts


def render_html(timeline: Timeline) -> str:
    """The drill's report as one self-contained HTML page."""
    summary = timeline.summary
    title = summary.title or summary.scenario or timeline.drill or "Drill"
    severity = summary.severity
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
        *_meta(timeline),
        "</dl></header>",
        *_problems(timeline),
        "<section><h2>Times against the targets</h2>",
        _targets(summary),
        _findings(summary),
        "</section>",
        *_signals(timeline),
        *_reviews(timeline),
        "<section><h2>Timeline</h2>",
        _timeline_table(timeline),
        "</section>",
        f"<footer>pagerdrill report of drill {_e(timeline.drill)} · journal "
        f"{_e(timeline.journal.name)} · {len(timeline.entries):,} timeline entries</footer>",
        f"</main><script>{SCRIPT}</script></body></html>\n",
    ]
    return "".join(parts)
