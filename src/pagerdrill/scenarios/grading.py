"""How a drill grades what the engineer says (a picked hypothesis, or free text matched
against the scenario's keywords with negations understood), and the order in which its
pickers show the choices.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from pagerdrill.scenarios.model import Choice, Mitigation, ScenarioModel

T = TypeVar("T")

Grade = Literal["right", "wrong", "ungraded"]
GRADES: tuple[Grade, ...] = ("right", "wrong", "ungraded")
UNGRADED_TEXT = "for the lead to grade"


@dataclass(frozen=True)
class HypothesisGrade:
    """How a hypothesis grades: right, wrong, or `ungraded` when the matcher is not
    sure and the lead grades it (`pagerdrill drills review ID --hypothesis ...`)."""

    grade: Grade
    note: str | None = None
    """Why the matcher was not sure (None when it was)."""
    matched: tuple[str, ...] = ()
    """Keywords that count: named outside any negation."""
    negated: tuple[str, ...] = ()
    """Keywords named under a negation ("not a cache flush"): they never count."""
    cues: tuple[str, ...] = ()
    """The negations found in the text."""

    @property
    def correct(self) -> bool | None:
        """The journal's `correct`: True right, False wrong, None for the lead."""
        return None if self.grade == "ungraded" else self.grade == "right"


def drill_order(items: Iterable[T], picker: str, drill_id: str) -> list[T]:
    """`items` in the order a drill shows them in `picker` ("hypotheses", "decision",
    "mitigations"): shuffled, seeded by the picker and the drill id, so the right one
    is not always in the same place (file order puts it first), and the journal can
    say, and a review rebuild, what the trainee saw."""
    order = list(items)
    random.Random(f"{picker}:{drill_id}").shuffle(order)
    return order


def shown_choices(model: ScenarioModel, drill_id: str) -> list[Choice]:
    """The hypothesis choices in the order a drill shows them."""
    return drill_order(model.hypotheses.choices, "hypotheses", drill_id)


def shown_decision_choices(model: ScenarioModel, drill_id: str) -> list[Choice]:
    """The decision's choices in the order a drill shows them (none without a decision)."""
    return drill_order(model.decision.choices if model.decision else [], "decision", drill_id)


def shown_mitigations(model: ScenarioModel, drill_id: str) -> list[Mitigation]:
    """The mitigations in the order a drill lists them to the trainee."""
    return drill_order(model.mitigations, "mitigations", drill_id)


# Negations that take a whole clause: "not a cache flush", "redis isn't it", "no sign
# of a flush", "ruled out", "nothing to do with", "neither ... nor".
NEGATION_CUES = (
    r"not|no|never|none|nothing|without|neither|nor|cannot|\w+n't|unlikely|doubt(?:ful)?"
    r"|rul(?:e|es|ed|ing) out|exclud(?:e|es|ed|ing)"
)
# "X is fine/ok/healthy": for a hypothesis, the clause says X is not the cause
EXONERATION_CUES = r"fine|ok|okay|healthy|intact|unaffected|unharmed|unchanged"
_CLAUSE_CUES = f"{NEGATION_CUES}|{EXONERATION_CUES}"
# Negations that take what follows them only: "the database rather than the cache".
_TAIL_CUES = r"rather than|instead of|as opposed to"
# Clauses end at punctuation and at the words that turn a sentence ("but", "however").
_CLAUSE_END = re.compile(
    r"[.;,:!?()\[\]\n]|\s[-\u2013\u2014]+\s|(?<!\w)(?:but|however|whereas|although|though)(?!\w)"
)


@functools.lru_cache(maxsize=8)
def _cue_pattern(clause_cues: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w'])(?:(?P<tail>{_TAIL_CUES})|(?P<clause>{clause_cues}))(?![\w'])")


def _normal(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


def _word(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(_normal(term))}(?!\w)")


@dataclass(frozen=True)
class TermMatch:
    """One place a keyword is named, and whether a negation's scope covers it."""

    start: int
    end: int
    term: str
    negated: bool


@dataclass(frozen=True)
class KeywordScan:
    matches: tuple[TermMatch, ...]
    """Every place a term is named, term by term in the order given."""

    cues: tuple[str, ...]
    """The negation cues in the text, in order (repeats kept)."""

    def first(self, terms: Iterable[str]) -> int | None:
        """Where the earliest of `terms` is named outside any negation, or None."""
        wanted = set(terms)
        starts = [m.start for m in self.matches if m.term in wanted and not m.negated]
        return min(starts) if starts else None


def scan_keywords(text: str, terms: Iterable[str], clause_cues: str = _CLAUSE_CUES) -> KeywordScan:
    """The drill's keyword matching, shared by hypotheses and the readiness quiz: each
    term matched as whole words in any case, and each marked negated when it stands in
    the scope of a negation cue (the rest of its clause, or what follows "rather than").
    A term that is itself a negation ("not running") is read as the term, not as a
    negation of its neighbours."""
    lowered = _normal(text)
    found: list[tuple[int, int, str]] = []
    for term in terms:
        found += [(m.start(), m.end(), term) for m in _word(term).finditer(lowered)]
    masked = list(lowered)
    for start, end, _ in found:
        masked[start:end] = " " * (end - start)
    bare = "".join(masked)
    scopes: list[tuple[int, int]] = []
    cues: list[str] = []
    ends = [0, *(m.start() for m in _CLAUSE_END.finditer(bare)), len(bare)]
    for m in _cue_pattern(clause_cues).finditer(bare):
        cues.append(m.group(0))
        clause_start = max(e for e in ends if e <= m.start())
        clause_end = min(e for e in ends if e >= m.end())
        scopes.append((m.end() if m.group("tail") else clause_start, clause_end))
    return KeywordScan(
        tuple(
            TermMatch(start, end, term, any(a <= start < b for a, b in scopes))
            for start, end, term in found
        ),
        tuple(cues),
    )


def grade_hypothesis(model: ScenarioModel, choice: str | None, text: str | None) -> HypothesisGrade:
    """A picked choice grades exactly: right when it is marked correct, else wrong.

    Free text is matched against the keyword groups (whole words, any case). A keyword
    under a negation never counts. The matcher grades only what it is sure of:
    right when the text names a term of every group and holds no negation at all,
    wrong when it names no keyword at all; anything else (a negation in the text, only
    some groups named, a scenario with no keywords) is left for the lead to grade."""
    if choice is not None:
        right = any(c.id == choice and c.correct for c in model.hypotheses.choices)
        return HypothesisGrade("right" if right else "wrong")
    lowered = _normal(text or "")
    if not lowered.strip():
        return HypothesisGrade("wrong")
    groups = model.hypotheses.keywords
    if not groups:
        return HypothesisGrade("ungraded", note="this scenario has no keywords to grade free text")
    scan = scan_keywords(lowered, (term for group in groups for term in group))
    found, cues = scan.matches, scan.cues
    counted = {m.term for m in found if not m.negated}
    under = tuple(dict.fromkeys(m.term for m in found if m.negated))
    matched = tuple(dict.fromkeys(m.term for m in found if m.term in counted))
    covered = [any(term in counted for term in group) for group in groups]
    cue_list = tuple(dict.fromkeys(cues))
    if not found:
        return HypothesisGrade("wrong", cues=cue_list)
    if all(covered) and not cues:
        return HypothesisGrade("right", matched=matched)
    notes = []
    if under:
        notes.append("named under a negation: " + ", ".join(under))
    elif cues:
        notes.append("a negation in the text: " + ", ".join(f"'{c}'" for c in cue_list))
    missing = [group for group, ok in zip(groups, covered, strict=True) if not ok]
    if missing:
        notes.append(
            "no term named of the keyword group of " + ", ".join(f"'{g[0]}'" for g in missing)
        )
    return HypothesisGrade(
        "ungraded", note="; ".join(notes), matched=matched, negated=under, cues=cue_list
    )
