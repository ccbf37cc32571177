"""What a drill came to, computed from its journal alone (times against targets,
the hypothesis, recovery). The headless runner prints it; reports build on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pagerdrill.journal import JournalRead


def outcome(read: JournalRead) -> str:
    types = {e["type"] for e in read.events}
    if "drill.closed" in types:
        return "closed"
    if "drill.aborted" in types:
        return "aborted"
    return "crashed"


def _sec(value: Any) -> float | None:
    """A time in seconds from the journal; anything else (hand-edited) is unknown."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _first(events: list[dict], type_: str, **match: Any) -> dict | None:
    for e in events:
        if e.get("type") == type_ and all(e.get(k) == v for k, v in match.items()):
            return e
    return None


GRADES = ("right", "wrong", "ungraded")


def lead_grades(events: list[dict]) -> dict[int, dict]:
    """The lead's grade of each hypothesis (by the hypothesis event's seq): the latest
    `hypothesis.graded` for it counts."""
    out: dict[int, dict] = {}
    for e in events:
        if (
            e.get("type") == "hypothesis.graded"
            and isinstance(e.get("of"), int)
            and e.get("grade") in ("right", "wrong")
        ):
            out[e["of"]] = e
    return out


def hypothesis_grade(event: dict, graded: dict[int, dict]) -> tuple[str, str | None]:
    """(grade, who graded it) of a hypothesis event: the lead's latest grade, else the
    drill's own. A journal from before grades had three outcomes says only `correct`
    (true right, false wrong)."""
    lead = graded.get(event["seq"]) if isinstance(event.get("seq"), int) else None
    if lead is not None:
        return lead["grade"], lead.get("by") if isinstance(lead.get("by"), str) else None
    if event.get("grade") in GRADES:
        return event["grade"], None
    if isinstance(event.get("correct"), bool):
        return ("right" if event["correct"] else "wrong"), None
    return "ungraded", None


def fault_injected_seq(events: list[dict]) -> int | None:
    """Where the first fault went in; None when none did."""
    for e in events:
        if e.get("type") == "fault.injected" and isinstance(e.get("seq"), int):
            return int(e["seq"])
    return None


def before_fault(event: dict, fault_seq: int | None) -> bool:
    """Whether an event came before any fault was in (a warm-up, not the incident)."""
    seq = event.get("seq")
    return fault_seq is None or not isinstance(seq, int) or seq < fault_seq


def symptom_faded(events: list[dict], page: dict | None) -> dict | None:
    """The paging alert's first `alert.resolved` after the page when no mitigation came
    before it: the symptom went away by itself, whatever the engineer did."""
    if page is None:
        return None
    seen_page = False
    for e in events:
        if e is page:
            seen_page = True
        elif not seen_page:
            continue
        elif e.get("type") == "mitigation":
            return None
        elif e.get("type") == "alert.resolved" and e.get("alert") == page.get("alert"):
            return e
    return None


def summarize(read: JournalRead) -> dict[str, Any]:
    events = read.events
    started = read.started or {}
    scenario = started.get("scenario") or {}
    checklist = started.get("checklist") or {}
    page = _first(events, "page")
    ack = _first(events, "ack")
    hyps = [e for e in events if e.get("type") == "hypothesis"]
    graded = lead_grades(events)
    stated = []
    for hyp in hyps:
        grade, by = hypothesis_grade(hyp, graded)
        stated.append(
            {
                "seq": hyp.get("seq"),
                "at_s": _sec(hyp.get("drill_s")),
                "text": hyp.get("text"),
                "choice": hyp.get("choice"),
                "grade": grade,
                "graded_by": by,
                "note": hyp.get("grade_note") if by is None else None,
            }
        )
    first_right = next(
        (hyp for hyp, x in zip(hyps, stated, strict=True) if x["grade"] == "right"), None
    )
    grades = {x["grade"] for x in stated}
    # one right is enough; an ungraded one may still be, until the lead says
    overall = next((g for g in ("right", "ungraded", "wrong") if g in grades), None)
    decision = next((e for e in reversed(events) if e.get("type") == "decision"), None)
    mitigation = _first(events, "mitigation")
    recovery = _first(events, "recovery.verified")
    aborted = _first(events, "drill.aborted")
    end = next((e for e in events if e.get("type") in ("drill.closed", "drill.aborted")), None)
    done = {e.get("step"): e for e in events if e.get("type") == "step.done"}
    steps = []
    for s in checklist.get("steps", []):
        if not isinstance(s, dict) or not {"id", "title", "target_s"} <= s.keys():
            continue
        e = done.get(s["id"])
        at = _sec(e.get("drill_s")) if e else None
        target = _sec(s["target_s"]) or 0.0
        steps.append(
            {
                "id": s["id"],
                "title": s["title"],
                "target_s": target,
                "done_s": at,
                "met": at is not None and at <= target,
                "choice": e.get("choice_text") or e.get("choice") if e else None,
                "reason": e.get("reason") if e else None,
            }
        )
    paused = sum(_sec(e.get("paused_s")) or 0.0 for e in events if e.get("type") == "clock.resumed")
    faults: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("type") in (
            "fault.undo",
            "fault.injected",
            "fault.reverted",
            "fault.failed",
            "fault.revert_failed",
        ):
            if not isinstance(e.get("fault"), str):
                continue  # a hand-edited line: nothing to attach it to
            f = faults.setdefault(e["fault"], {"id": e["fault"]})
            f[e["type"].removeprefix("fault.")] = e.get("ts")
            if e["type"] == "fault.undo":
                f["kind"] = e.get("kind")
            if e["type"] == "fault.reverted":
                f["reverted_by"] = e.get("by")
    fault_seq = fault_injected_seq(events)
    alerts = [e for e in events if e.get("type") == "alert.firing"]
    warmup = [e for e in alerts if before_fault(e, fault_seq)]
    faded = symptom_faded(events, page)
    return {
        "drill": read.drill_id,
        "journal": str(read.path),
        "complete": read.complete,
        "problems": [f"line {n}: {m}" for n, m in read.problems],
        "outcome": outcome(read),
        "abort_reason": aborted.get("reason") if aborted else None,
        "engineer": started.get("engineer"),
        "scenario": scenario.get("name"),
        "title": scenario.get("title"),
        "severity": scenario.get("severity"),
        "started": started.get("ts"),
        "ended": end.get("ts") if end else None,
        "alert_fired": len(alerts) > len(warmup),
        "alerts_before_fault": len(warmup),
        "symptom_faded_s": _sec(faded.get("drill_s")) if faded else None,
        "paged": page is not None,
        "paged_at": page.get("ts") if page else None,
        "page_alert": page.get("alert") if page else None,
        "time_to_ack_s": _sec(ack.get("drill_s")) if ack else None,
        "steps": steps,
        "hypothesis": {
            "first_s": _sec(hyps[0].get("drill_s")) if hyps else None,
            "first_text": hyps[0].get("text") if hyps else None,
            "correct": bool(first_right),
            "first_correct": bool(stated and stated[0]["grade"] == "right"),
            "correct_s": _sec(first_right.get("drill_s")) if first_right else None,
            "target_s": _sec(checklist.get("hypothesis_target_s")),
            "attempts": len(hyps),
            "first_grade": stated[0]["grade"] if stated else None,
            "first_graded_by": stated[0]["graded_by"] if stated else None,
            "grade": overall,
            "to_grade": sum(1 for x in stated if x["grade"] == "ungraded"),
            "stated": stated,
        },
        "decision": (
            {"choice": decision.get("choice"), "correct": decision.get("correct")}
            if decision
            else None
        ),
        "time_to_mitigate_s": _sec(mitigation.get("drill_s")) if mitigation else None,
        "recovery_verified": recovery is not None,
        "time_to_recovery_s": _sec(recovery.get("drill_s")) if recovery else None,
        "hints_used": sum(1 for e in events if e.get("type") == "hint"),
        "notes": sum(1 for e in events if e.get("type") == "note"),
        "paused_s": round(paused, 3),
        "faults": list(faults.values()),
        "revert_failed": list(end.get("revert_failed") or []) if end else [],
    }


def exit_code(summary: dict) -> int:
    """0 only when the drill closed with recovery verified by the probes and everything
    it changed was put back."""
    ok = summary["outcome"] == "closed" and summary["recovery_verified"]
    return 0 if ok and not summary.get("revert_failed") else 1


def journal_path_of(summary: dict) -> Path:
    return Path(summary["journal"])
