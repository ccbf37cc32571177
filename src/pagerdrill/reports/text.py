"""Text exports of a drill: Slack mrkdwn (the seed's "timeline as you go", ready to
paste into an incident channel) and Markdown (for a wiki or a PR). Pure functions
of a `Timeline`; the timeline is already redacted."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from pagerdrill.journal.summary import Summary
from pagerdrill.reports.timeline import (
    ENGINEER,
    REVIEW,
    Entry,
    ReviewNote,
    Timeline,
    before_fault_line,
    faded_line,
    grade_text,
    wall,
)
from pagerdrill.timefmt import clock, duration, mmss

# Slack truncates a message's text past 40,000 characters (its documented limit for a
# message, api.slack.com/changelog/2018-04-truncating-really-long-messages, the same
# for a message pasted in the composer); only a timeline longer than that is split,
# into messages marked (1/3), (2/3) ... of about the same size. The 4,000 that Slack
# recommends is for API clients and a block's text, not for a person's paste.
SLACK_MESSAGE_LIMIT = 40_000


def _when(ts: str | None) -> str:
    if not ts:
        return "—"
    return ts.replace("T", " ").split(".")[0].removesuffix("Z") + " UTC"


def outcome_text(summary: Summary) -> str:
    if summary.outcome == "closed":
        return (
            "closed, recovery verified"
            if summary.recovery_verified
            else ("closed, recovery NOT verified")
        )
    if summary.outcome == "aborted":
        return f"aborted ({summary.abort_reason or 'no reason'})"
    return "crashed (the journal stops without an end)"


def hypothesis_line(summary: Summary) -> str:
    """The first hypothesis and its grade (right, wrong, for the lead to grade, or the
    lead's grade), when a right one came, and the target: every export says this."""
    h = summary.hypothesis
    if not h.attempts:
        return "no hypothesis stated"
    first = h.first_grade or ("right" if h.first_correct else "wrong")
    graded = grade_text(first, h.first_graded_by)
    text = f"{h.first_text} ({graded}, at {clock(h.first_s)}"
    if h.correct and not h.first_correct:
        text += f"; right at {clock(h.correct_s)}"
    later = h.to_grade - (first == "ungraded")
    if later > 0:
        text += f"; {later} more for the lead to grade"
    if h.target_s is not None:
        text += f"; target {clock(h.target_s).removeprefix('T+')}"
    return text + ")"


def decision_line(summary: Summary) -> str:
    """The scenario's decision as the engineer took it, and its grade."""
    d = summary.decision
    if d is None:
        return "no decision taken"
    return f"{d.choice} ({'right' if d.correct else 'wrong'})"


def _resolution_line(summary: Summary) -> str:
    parts = []
    faded = faded_line(summary)
    if faded:
        parts.append(faded)
    if summary.time_to_mitigate_s is not None:
        parts.append(f"mitigated at {clock(summary.time_to_mitigate_s)}")
    if summary.recovery_verified:
        parts.append(f"recovery verified by probes at {clock(summary.time_to_recovery_s)}")
    else:
        parts.append("recovery not verified")
    parts.append(outcome_text(summary))
    return "; ".join(parts)


def counts_line(summary: Summary) -> str:
    """The drill's counts, worded the same in every export."""
    return (
        f"Hints used: {summary.hints_used}. Notes: {summary.notes}. "
        f"Hypotheses stated: {summary.hypothesis.attempts}. "
        f"Clock paused: {duration(summary.paused_s)}."
    ) + (f" {warmup[0].upper()}{warmup[1:]}." if (warmup := before_fault_line(summary)) else "")


def step_lines(summary: Summary) -> list[tuple[str, str, str, str]]:
    """(title, time, target, met) of each checklist step, from the page."""
    rows = []
    for step in summary.steps:
        met = "✓" if step.met else ("✗" if step.done_s is not None else "not done")
        rows.append((step.title, mmss(step.done_s), mmss(step.target_s), met))
    return rows


def _review_line(review: ReviewNote | None) -> str | None:
    if not review:
        return None
    comment = f": {review.comment}" if review.comment else ""
    return f"{review.verdict.upper()} by {review.by} ({_when(review.ts)}){comment}"


# ---------------------------------------------------------------------- Slack


def _slack_line(entry: Entry, engineer: str) -> str:
    # Text as a person types it in the composer: Slack's `&lt;` escaping is for its API
    # and would show literally when pasted.
    who = engineer if entry.who == ENGINEER else ("review" if entry.who == REVIEW else "")
    text = f"*{entry.text}*" if entry.kind == "page" else entry.text
    lead = f"*{who}*: " if who else ""
    when = f"`{wall(entry.ts)}`"
    return f"{when} {clock(entry.page_s)} — {lead}{text}".replace("  ", " ")


def slack_messages(tl: Timeline, limit: int = SLACK_MESSAGE_LIMIT) -> list[str]:
    """The drill as Slack mrkdwn messages, each at most `limit` characters."""
    s = tl.summary
    engineer = s.engineer or "engineer"
    head = [
        f"*Drill: {s.title or s.scenario or tl.drill}* "
        f"({s.severity or '?'}) — engineer *{engineer}*",
        f"Started {_when(s.started)} · duration {duration(tl.duration_s)} · {outcome_text(s)}",
    ]
    review = _review_line(tl.review)
    if review:
        head.append(f"Review: {review}")
    if not tl.complete:
        head.append(f"_Incomplete journal: {'; '.join(tl.problems) or 'no end'}_")
    head.append(f"Drill `{tl.drill}` · scenario `{s.scenario}` · "
                f"page {s.page_alert or 'no page'}")  # fmt: skip
    head.append("*Timeline* (UTC; T± from the page)")
    lines = [_slack_line(e, engineer) for e in tl.entries]
    tail = ["*Times against targets* (from the page)"]
    tail += [
        f"{title}: {done} (target {target}) {met}" for title, done, target, met in step_lines(s)
    ]
    tail += [
        f"*Hypothesis*: {hypothesis_line(s)}",
        f"*Decision*: {decision_line(s)}",
        f"*Resolution*: {_resolution_line(s)}",
        counts_line(s),
    ]
    return _split(head, lines, tail, limit)


def _split(head: list[str], lines: list[str], tail: list[str], limit: int) -> list[str]:
    room = limit - 12  # the "(12/12) " marker
    every = [
        ln if len(ln) <= room // 2 else ln[: room // 2 - 1] + "…" for ln in head + lines + tail
    ]
    total = sum(len(x) + 1 for x in every)
    if total - 1 <= limit:
        return ["\n".join(every)]
    # The fewest messages the limit allows, filled to about the same size, so that the
    # last is never a line or two on its own.
    longest = max(len(x) + 1 for x in every)
    count = -(-total // room)
    while len(messages := _pack(every, min(room, -(-total // count) + longest))) > count:
        count += 1
    n = len(messages)
    return [f"({i}/{n}) " + "\n".join(m) for i, m in enumerate(messages, 1)]


def _pack(lines: list[str], size: int) -> list[list[str]]:
    """`lines` in order into messages of at most `size` characters."""
    messages: list[list[str]] = [[]]
    used = 0
    for line in lines:
        if messages[-1] and used + len(line) + 1 > size:
            messages.append([])
            used = 0
        messages[-1].append(line)
        used += len(line) + 1
    return messages


# ------------------------------------------------------------------- Markdown


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(tl: Timeline) -> str:
    s = tl.summary
    out = [f"# Drill: {_cell(s.title or s.scenario or tl.drill)} "
           f"({s.severity or '?'})", ""]  # fmt: skip
    if not tl.complete:
        out += [f"> **Incomplete journal**: {'; '.join(tl.problems) or 'the drill has no end'}",
                ""]  # fmt: skip
    rows = [
        ("Engineer", s.engineer),
        ("Scenario", f"`{s.scenario}`"),
        ("Drill", f"`{tl.drill}`"),
        ("Started", _when(s.started)),
        ("Duration", duration(tl.duration_s)),
        ("Outcome", outcome_text(s)),
        ("Page", s.page_alert or "no page"),
        ("Review", _review_line(tl.review) or "not reviewed"),
    ]
    out += ["| | |", "|---|---|", *[f"| {k} | {_cell(v)} |" for k, v in rows], ""]
    out += ["## Times against targets", "", "| From the page | Time | Target | Met |",
            "|---|---|---|---|"]  # fmt: skip
    for title, done, target, met in step_lines(s):
        out.append(f"| {_cell(title)} | {done} | {target} | {met} |")
    h = s.hypothesis
    hyp_met = "✓" if h.correct_s is not None and h.target_s and h.correct_s <= h.target_s else "✗"
    out.append(
        f"| Symptom → right hypothesis | {mmss(h.correct_s)} | {mmss(h.target_s)} | {hyp_met} |"
    )
    out.append(f"| Acknowledged | {mmss(s.time_to_ack_s)} | | |")
    out.append(f"| Mitigated | {mmss(s.time_to_mitigate_s)} | | |")
    out.append(f"| Recovery verified | {mmss(s.time_to_recovery_s)} | | |")
    out += ["", counts_line(s), ""]
    out += ["## Hypothesis", "", hypothesis_line(s), ""]
    out += ["## Decision", "", decision_line(s), ""]
    out += ["## Resolution", "", _resolution_line(s), ""]
    out += ["## Timeline", "", "| Time (UTC) | From the page | Who | What |", "|---|---|---|---|"]
    engineer = s.engineer or "engineer"
    for e in tl.entries:
        who = engineer if e.who == ENGINEER else e.who
        out.append(f"| {wall(e.ts)} | {clock(e.page_s)} | {_cell(who)} | {_cell(e.text)} |")
    if len(tl.reviews) > 1:
        out += ["", "## Reviews", ""]
        out += [f"- {_review_line(r)}" for r in tl.reviews]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------- JSON

EXPORT_SCHEMA = "pagerdrill.drill-export"
EXPORT_VERSION = 1


def to_json(tl: Timeline) -> dict:
    """The drill in the documented, versioned export schema
    (`pagerdrill/reports/drill-export.schema.json`)."""
    return {
        "schema": EXPORT_SCHEMA,
        "schema_version": EXPORT_VERSION,
        "drill": tl.drill,
        "complete": tl.complete,
        "problems": list(tl.problems),
        # the JSON form of the summary, and the latest review as its last key
        "summary": tl.summary.to_json() | {"review": msgspec.to_builtins(tl.review)},
        "timeline": [
            {
                "seq": e.seq,
                "ts": e.ts,
                "t": e.t,
                "page_s": e.page_s,
                "who": e.who,
                "kind": e.kind,
                "text": e.text,
            }
            for e in tl.entries
        ],
        "signals": [
            {
                "probe": s.probe,
                "field": s.field,
                "alert": s.alert,
                "threshold": s.threshold,
                "op": s.op,
                "points": [[t, v] for t, v in s.points],
            }
            for s in tl.series
        ],
        "markers": [{"t": m.t, "label": m.label, "who": m.who} for m in tl.markers],
        "reviews": msgspec.to_builtins(tl.reviews),
    }


def slack_text(tl: Timeline) -> str:
    """The Slack messages as one paste (blank lines between the (i/n) parts)."""
    return "\n\n".join(slack_messages(tl)) + "\n"


def write_export(path: Path, text: str) -> None:
    """Atomically: an export is whole or not there, and a write that fails leaves no
    temporary file behind. The target is checked before anything is written, so a
    folder or a missing folder is a one-line error, not a half-made file elsewhere."""
    from pagerdrill.errors import BadInputError

    target = Path(os.path.abspath(path))
    folder = target.parent
    if target.is_dir():
        raise BadInputError(
            f"-o {path}: is a folder; expected a file name (e.g. {path}/drill.html)"
        )
    if not folder.is_dir():
        missing = "does not exist" if not folder.exists() else "is not a folder"
        raise BadInputError(f"-o {path}: the folder {folder} {missing}")
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise BadInputError(f"-o {path}: cannot write it: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
