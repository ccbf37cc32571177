"""Text exports of a drill: Slack mrkdwn (the seed's "timeline as you go", ready to
paste into an incident channel) and Markdown (for a wiki or a PR). Pure functions
of a `Timeline`; the timeline is already redacted."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pagerdrill.reports.timeline import ENGINEER, REVIEW, Entry, Timeline, clock, duration, wall

# Slack shows long messages badly and cuts them; stay well under its limits, and
# split a long timeline into several messages marked (1/3), (2/3) ...
SLACK_MESSAGE_LIMIT = 3500


def _when(ts: str | None) -> str:
    if not ts:
        return "—"
    return ts.replace("T", " ").split(".")[0].removesuffix("Z") + " UTC"


def outcome_text(summary: dict) -> str:
    if summary["outcome"] == "closed":
        return (
            "closed, recovery verified"
            if summary["recovery_verified"]
            else ("closed, recovery NOT verified")
        )
    if summary["outcome"] == "aborted":
        return f"aborted ({summary.get('abort_reason') or 'no reason'})"
    return "crashed (the journal stops without an end)"


def _hypothesis_line(summary: dict) -> str:
    h = summary["hypothesis"]
    if not h["attempts"]:
        return "no hypothesis stated"
    first = "right" if h["first_correct"] else "wrong"
    text = f"{h['first_text']} ({first}, at {clock(h['first_s'])}"
    if h["correct"] and not h["first_correct"]:
        text += f"; right at {clock(h['correct_s'])}"
    target = h.get("target_s")
    if target is not None:
        text += f"; target {clock(target).removeprefix('T+')}"
    return text + ")"


def _resolution_line(summary: dict) -> str:
    parts = []
    if summary["time_to_mitigate_s"] is not None:
        parts.append(f"mitigated at {clock(summary['time_to_mitigate_s'])}")
    if summary["recovery_verified"]:
        parts.append(f"recovery verified by probes at {clock(summary['time_to_recovery_s'])}")
    else:
        parts.append("recovery not verified")
    parts.append(outcome_text(summary))
    return "; ".join(parts)


def _review_line(review: dict | None) -> str | None:
    if not review:
        return None
    comment = f": {review['comment']}" if review.get("comment") else ""
    return (
        f"{str(review['verdict']).upper()} by {review['by']} ({_when(review.get('ts'))}){comment}"
    )


# ---------------------------------------------------------------------- Slack


def _mrkdwn(text: str) -> str:
    """Slack's three control characters; the rest is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_line(entry: Entry, engineer: str) -> str:
    who = engineer if entry.who == ENGINEER else ("review" if entry.who == REVIEW else "")
    text = _mrkdwn(entry.text)
    if entry.kind == "page":
        text = f"*{text}*"
    lead = f"*{_mrkdwn(who)}*: " if who else ""
    when = f"`{wall(entry.ts)}`"
    return f"{when} {clock(entry.page_s)} — {lead}{text}".replace("  ", " ")


def slack_messages(tl: Timeline, limit: int = SLACK_MESSAGE_LIMIT) -> list[str]:
    """The drill as Slack mrkdwn messages, each at most `limit` characters."""
    s = tl.summary
    engineer = s.get("engineer") or "engineer"
    head = [
        f"*Drill: {_mrkdwn(s.get('title') or s.get('scenario') or tl.drill)}* "
        f"({s.get('severity') or '?'}) — engineer *{_mrkdwn(engineer)}*",
        f"Started {_when(s.get('started'))} · duration {duration(tl.duration_s)} · "
        f"{_mrkdwn(outcome_text(s))}",
    ]
    review = _review_line(tl.review)
    if review:
        head.append(f"Review: {_mrkdwn(review)}")
    if not tl.complete:
        head.append(f"_Incomplete journal: {_mrkdwn('; '.join(tl.problems) or 'no end')}_")
    head.append("*Timeline* (UTC; T± from the page)")
    lines = [_slack_line(e, engineer) for e in tl.entries]
    tail = [
        f"*Hypothesis*: {_mrkdwn(_hypothesis_line(s))}",
        f"*Resolution*: {_mrkdwn(_resolution_line(s))}",
    ]
    return _split(head, lines, tail, limit)


def _split(head: list[str], lines: list[str], tail: list[str], limit: int) -> list[str]:
    room = limit - 12  # the "(12/12) " marker
    messages: list[list[str]] = [list(head)]
    size = sum(len(x) + 1 for x in head)
    for line in [*lines, *tail]:
        if len(line) > room // 2:
            line = line[: room // 2 - 1] + "…"
        if size + len(line) + 1 > room:
            messages.append([])
            size = 0
        messages[-1].append(line)
        size += len(line) + 1
    if len(messages) == 1:
        return ["\n".join(messages[0])]
    n = len(messages)
    return [f"({i}/{n}) " + "\n".join(m) for i, m in enumerate(messages, 1)]


# ------------------------------------------------------------------- Markdown


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _mmss(seconds: float | None) -> str:
    return clock(seconds).removeprefix("T+") if seconds is not None else "—"


def markdown(tl: Timeline) -> str:
    s = tl.summary
    out = [f"# Drill: {_cell(s.get('title') or s.get('scenario') or tl.drill)} "
           f"({s.get('severity') or '?'})", ""]  # fmt: skip
    if not tl.complete:
        out += [f"> **Incomplete journal**: {'; '.join(tl.problems) or 'the drill has no end'}",
                ""]  # fmt: skip
    rows = [
        ("Engineer", s.get("engineer")),
        ("Scenario", f"`{s.get('scenario')}`"),
        ("Drill", f"`{tl.drill}`"),
        ("Started", _when(s.get("started"))),
        ("Duration", duration(tl.duration_s)),
        ("Outcome", outcome_text(s)),
        ("Page", s.get("page_alert") or "no page"),
        ("Review", _review_line(tl.review) or "not reviewed"),
    ]
    out += ["| | |", "|---|---|", *[f"| {k} | {_cell(v)} |" for k, v in rows], ""]
    out += ["## Times against targets", "", "| From the page | Time | Target | Met |",
            "|---|---|---|---|"]  # fmt: skip
    for step in s["steps"]:
        met = "✓" if step["met"] else ("✗" if step["done_s"] is not None else "not done")
        out.append(
            f"| {_cell(step['title'])} | {_mmss(step['done_s'])} | {_mmss(step['target_s'])} "
            f"| {met} |"
        )
    h = s["hypothesis"]
    hyp_met = (
        "✓"
        if h["correct_s"] is not None and h["target_s"] and h["correct_s"] <= h["target_s"]
        else "✗"
    )
    out.append(
        f"| Symptom → right hypothesis | {_mmss(h['correct_s'])} | {_mmss(h['target_s'])} "
        f"| {hyp_met} |"
    )
    out.append(f"| Acknowledged | {_mmss(s['time_to_ack_s'])} | | |")
    out.append(f"| Mitigated | {_mmss(s['time_to_mitigate_s'])} | | |")
    out.append(f"| Recovery verified | {_mmss(s['time_to_recovery_s'])} | | |")
    out += ["", f"Hints used: {s['hints_used']}. Notes: {s['notes']}. "
            f"Clock paused: {s['paused_s']:g} s.", ""]  # fmt: skip
    out += ["## Hypothesis", "", _hypothesis_line(s), ""]
    if s.get("decision"):
        d = s["decision"]
        out += ["## Decision", "", f"{d['choice']} ({'right' if d['correct'] else 'wrong'})", ""]
    out += ["## Resolution", "", _resolution_line(s), ""]
    out += ["## Timeline", "", "| Time (UTC) | From the page | Who | What |", "|---|---|---|---|"]
    engineer = s.get("engineer") or "engineer"
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
        "summary": tl.summary,
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
        "reviews": tl.reviews,
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
