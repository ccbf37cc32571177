"""The pager question, graded: the answer names each step of the gate's order
(acknowledge → open dashboards → search errors in traces → identify recurrence), in that
order, and came within the time limit. The answer is read with the drill's hypothesis
matcher (`pagerdrill.scenarios.model.scan_keywords`): whole words in any case, and a step named
only under a negation ("I would not ack", "acknowledge? no", "I won't acknowledge") does
not count."""

from __future__ import annotations

from dataclasses import dataclass

from pagerdrill.readiness.gate import QuizRule
from pagerdrill.scenarios.model import NEGATION_CUES, scan_keywords

# A hypothesis's "the cache is fine" clears the cache; an answer's "check the dashboards
# look ok" still opens them, so only the negations count here, and "skip" is one.
_CUES = NEGATION_CUES + r"|skip|skips|skipped|skipping"


@dataclass(frozen=True)
class Grade:
    passed: bool
    in_time: bool
    found: tuple[str, ...]
    """The steps named, in the order the answer names them."""

    missing: tuple[str, ...]
    in_order: bool

    def problems(self, rule: QuizRule, seconds: float) -> list[str]:
        out = []
        if self.missing:
            out.append("the answer does not name: " + ", ".join(self.missing))
        if not self.in_order:
            out.append(
                "the order is "
                + " → ".join(self.found)
                + "; expected "
                + " → ".join(s.name for s in rule.steps)
            )
        if not self.in_time:
            out.append(f"answered in {seconds:.0f} s; the gate's limit is {rule.limit_s:g} s")
        return out


def grade(answer: str, seconds: float, rule: QuizRule) -> Grade:
    scan = scan_keywords(answer, (word for step in rule.steps for word in step.keywords), _CUES)
    positions = {s.name: scan.first(s.keywords) for s in rule.steps}
    found = sorted((p, name) for name, p in positions.items() if p is not None)
    missing = tuple(s.name for s in rule.steps if positions[s.name] is None)
    expected = [s.name for s in rule.steps if positions[s.name] is not None]
    in_order = [name for _, name in found] == expected
    in_time = seconds <= rule.limit_s
    return Grade(
        passed=not missing and in_order and in_time,
        in_time=in_time,
        found=tuple(name for _, name in found),
        missing=missing,
        in_order=in_order,
    )
