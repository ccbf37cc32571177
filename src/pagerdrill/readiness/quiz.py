"""The pager question, graded: the answer names each step of the gate's order
(acknowledge → open dashboards → search errors in traces → identify recurrence), in that
order, and came within the time limit. Words are matched whole and case-insensitively,
as drill hypotheses are; a step named only under a negation ("I would not ack") does not
count."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pagerdrill.readiness.gate import QuizRule

_NEGATION = re.compile(r"\b(not|never|no|don't|dont|without|skip|skipping)\b(\W+\w+){0,2}\W*$")


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


def _first_position(text: str, words: list[str]) -> int | None:
    best: int | None = None
    for word in words:
        for m in re.finditer(rf"(?<!\w){re.escape(word.lower())}(?!\w)", text):
            if _NEGATION.search(text[max(0, m.start() - 40) : m.start()]):
                continue
            if best is None or m.start() < best:
                best = m.start()
            break
    return best


def grade(answer: str, seconds: float, rule: QuizRule) -> Grade:
    text = answer.lower()
    positions = {s.name: _first_position(text, s.keywords) for s in rule.steps}
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
