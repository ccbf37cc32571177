"""The gate's drill item: the engineer's latest drill that meets the gate's rule (driven
in the TUI, severe enough, closed with recovery verified, reviewed by someone else with
a reviewer role ...), else what keeps the nearest one from counting."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pagerdrill.readiness.drills import SEVERITY_RANK, DrillFacts
from pagerdrill.readiness.gate import DrillRule, Item
from pagerdrill.readiness.records import parse_iso

if TYPE_CHECKING:
    from pagerdrill.readiness.status import Context, ItemStatus, Status


def drill_item(ctx: Context, engineer: str, item: Item, st: ItemStatus, out: Status) -> None:
    rule = item.drill_rule
    mine = ctx.drills_of(engineer)
    if mine:
        out.last_drill = mine[-1].started
    best_reasons: list[str] | None = None
    chosen: DrillFacts | None = None
    for d in reversed(mine):
        reasons = _why_it_does_not_count(ctx, engineer, rule, d)
        if not reasons:
            chosen = d
            break
        if best_reasons is None or len(reasons) < len(best_reasons):
            best_reasons = reasons
    if chosen is None:
        st.blockers.extend(best_reasons or [f"no drill by {engineer} in drills/"])
        return
    # the evidence names the review that counted: a later one by the engineer or by
    # someone without a reviewer role is no evidence, and naming it would mislead
    review = next(
        (
            r
            for r in reversed(chosen.reviews)
            if r.by != engineer and ctx.has_role(r.by, *rule.reviewer_roles)
        ),
        None,
    )
    st.evidence.append(
        f"drill {chosen.drill} ({chosen.scenario}, {chosen.severity}, {chosen.started}), "
        f"reviewed {review.verdict} by {review.by}"
        if rule.reviewed and review is not None
        else f"drill {chosen.drill} ({chosen.scenario}, {chosen.severity}, {chosen.started})"
    )
    st.files.append(f"drills/{chosen.file}")
    days = ctx.gate.fresh_drill_days
    if days and chosen.started:
        due = parse_iso(chosen.started) + dt.timedelta(days=days)
        out.fresh_drill_due = due.date().isoformat()
        if due < ctx.now:
            st.blockers.append(
                f"the last qualifying drill was {chosen.started[:10]}; the gate "
                f"asks for one every {days} days"
            )


def _why_it_does_not_count(
    ctx: Context, engineer: str, rule: DrillRule, d: DrillFacts
) -> list[str]:
    reasons = []
    if d.mode != "tui":
        reasons.append(
            f"drill {d.drill} ran {d.mode or 'with no mode'} (a script, the autopilot): "
            "only a drill driven in the TUI counts"
        )
    if SEVERITY_RANK.get(d.severity or "", 9) > SEVERITY_RANK[rule.min_severity]:
        reasons.append(
            f"drill {d.drill} is {d.severity}; the gate asks {rule.min_severity} or higher"
        )
    if d.outcome != "closed" or not d.recovery_verified:
        reasons.append(f"drill {d.drill} {d.outcome} without recovery verified")
    if rule.reviewed:
        eligible = [
            r for r in d.reviews if r.by != engineer and ctx.has_role(r.by, *rule.reviewer_roles)
        ]
        if not eligible:
            reasons.append(
                f"drill {d.drill} has no review by a {' or '.join(rule.reviewer_roles)} "
                "other than the engineer"
            )
        elif eligible[-1].verdict != "pass":
            reasons.append(f"drill {d.drill}: {eligible[-1].by} reviewed it {eligible[-1].verdict}")
    if rule.hypothesis_right and not d.hypothesis_right:
        reasons.append(f"drill {d.drill}: the hypothesis was not right")
    if rule.within_target and not d.within_target:
        reasons.append(f"drill {d.drill}: symptom → hypothesis over its target")
    if rule.no_hints and d.hints:
        reasons.append(f"drill {d.drill}: {d.hints} hint(s) taken")
    return reasons
