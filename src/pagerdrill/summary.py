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


def summarize(read: JournalRead) -> dict[str, Any]:
    events = read.events
    started = read.started or {}
    scenario = started.get("scenario") or {}
    checklist = started.get("checklist") or {}
    page = _first(events, "page")
    ack = _first(events, "ack")
    hyps = [e for e in events if e.get("type") == "hypothesis"]
    first_right = next((e for e in hyps if e.get("correct")), None)
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
    alerts = [e for e in events if e.get("type") == "alert.firing"]
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
        "alert_fired": bool(alerts),
        "paged": page is not None,
        "paged_at": page.get("ts") if page else None,
        "page_alert": page.get("alert") if page else None,
        "time_to_ack_s": _sec(ack.get("drill_s")) if ack else None,
        "steps": steps,
        "hypothesis": {
            "first_s": _sec(hyps[0].get("drill_s")) if hyps else None,
            "first_text": hyps[0].get("text") if hyps else None,
            "correct": bool(first_right),
            "first_correct": bool(hyps and hyps[0].get("correct")),
            "correct_s": _sec(first_right.get("drill_s")) if first_right else None,
            "target_s": _sec(checklist.get("hypothesis_target_s")),
            "attempts": len(hyps),
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
