"""The checks of a scenario that its schema cannot state: they need more than one part
of the file at once (an answer that names a choice, an expression over the probes'
fields), or what is installed (fault kinds and their parameters, mitigation actions,
catalogue signals). Every problem is kept, with its line, so all are reported at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pagerdrill.errors import BadInputError
from pagerdrill.faults import fault_class
from pagerdrill.signals.catalogue import unknown_signal
from pagerdrill.signals.dashboard import PANES, STACK, STANDARD_REFS
from pagerdrill.signals.expressions import Expr, ExprError
from pagerdrill.signals.expressions import parse as parse_expr
from pagerdrill.signals.specs import probe_fields
from pagerdrill.workspace.yamlfile import LineMap, Loc, check, dotted

if TYPE_CHECKING:
    from pagerdrill.scenarios.model import ScenarioModel

Problems = list[tuple[int | None, str]]


def raw_fault_problems(faults: Any, lines: LineMap) -> Problems:
    """Fault kinds and their parameters, checked on data the schema refused."""
    from pagerdrill.scenarios.model import FaultSpec

    problems: Problems = []
    if not isinstance(faults, list):
        return problems
    common = set(FaultSpec.model_fields)
    for i, fault in enumerate(faults):
        if not isinstance(fault, dict) or not isinstance(fault.get("kind"), str):
            continue
        try:
            cls = fault_class(fault["kind"])
        except BadInputError as exc:
            loc: Loc = ("faults", i, "kind")
            problems.append((lines.line_of(loc), f"{dotted(loc)}: {exc}"))
            continue
        params = {k: v for k, v in fault.items() if k not in common}
        problems += check(cls.Params, params, lines, ("faults", i))[1]
    return problems


def raw_mitigation_problems(mitigations: Any, lines: LineMap) -> Problems:
    """Mitigation actions, checked on data the schema refused."""
    from pagerdrill.scenarios.model import unknown_mitigation

    problems: Problems = []
    if not isinstance(mitigations, list):
        return problems
    for i, mit in enumerate(mitigations):
        action = mit.get("action") if isinstance(mit, dict) else None
        unknown = unknown_mitigation(action) if isinstance(action, str) and action else None
        if unknown:
            loc: Loc = ("mitigations", i, "action")
            problems.append((lines.line_of(loc), f"{dotted(loc)}: {unknown}"))
    return problems


def sorted_problems(problems: Problems) -> Problems:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p[0] is None, p[0] or 0))


def consistency(
    m: ScenarioModel, lines: LineMap, exprs: dict[str, Expr], roles: dict | None
) -> Problems:
    """What the schema cannot say: unique ids, roles the scenario declares (and the
    workspace binds), fault parameters, expressions over the probes' fields, and an
    answer key that names what the scenario has. Compiled expressions go to `exprs`."""
    c = _Checker(m, lines, roles)
    c.ids_and_faults()
    fields = c.probes()
    c.expressions(fields, exprs)
    c.mitigations()
    c.answers(fields)
    return c.problems


class _Checker:
    def __init__(self, m: ScenarioModel, lines: LineMap, roles: dict | None):
        self.m, self.lines, self.roles = m, lines, roles
        self.problems: Problems = []

    def at(self, loc: Loc, message: str) -> None:
        self.problems.append((self.lines.line_of(loc), f"{dotted(loc)}: {message}"))

    def unique(self, items: list, key: str, attr: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                self.at((key, i, attr), f"duplicate {attr} '{value}'")
            seen.add(value)

    def role_used(self, loc: Loc, role: str | None) -> None:
        m, roles = self.m, self.roles
        if role is None:
            return
        if role not in m.roles:
            self.at(loc, f"role '{role}' is not in this scenario's roles ({', '.join(m.roles)})")
        elif roles is not None and role not in roles:
            self.at(
                loc,
                f"role '{role}' is not bound in pagerdrill.yaml (bound: "
                f"{', '.join(sorted(roles)) or 'none'})",
            )

    def ids_and_faults(self) -> None:
        m = self.m
        self.unique(m.faults, "faults", "id")
        self.unique(m.probes, "probes", "name")
        self.unique(m.alerts, "alerts", "name")
        self.unique(m.mitigations, "mitigations", "id")
        self.unique(m.hypotheses.choices, "hypotheses", "id")
        if m.quiet.max_s < m.quiet.min_s:
            self.at(("quiet",), "max_s must not be below min_s")
        for i, f in enumerate(m.faults):
            self.role_used(("faults", i, "role"), f.role)
            if f.repair is not None:
                self.role_used(("faults", i, "repair", "role"), f.repair.role)
            try:
                cls = fault_class(f.kind)
            except BadInputError as exc:
                self.at(("faults", i, "kind"), str(exc))
                continue
            _, found = check(cls.Params, f.params, self.lines, ("faults", i))
            self.problems.extend(found)

    def probes(self) -> dict[str, frozenset[str]]:
        """Each probe's fields, by its name; a signal probe must name a catalogue signal."""
        fields: dict[str, frozenset[str]] = {}
        for i, p in enumerate(self.m.probes):
            self.role_used(("probes", i, "role"), p.role)
            if p.signal is not None:
                unknown_name = unknown_signal(p.signal)
                if unknown_name:
                    self.at(("probes", i, "signal"), unknown_name)
            fields[p.name] = probe_fields(p)
        return fields

    def expressions(self, fields: dict[str, frozenset[str]], exprs: dict[str, Expr]) -> None:
        m = self.m

        def compile_at(loc: Loc, source: str) -> None:
            try:
                exprs[source] = parse_expr(source, fields)
            except ExprError as exc:
                self.at(loc, f"bad expression {source!r}: {exc}")

        for i, a in enumerate(m.alerts):
            compile_at(("alerts", i, "expr"), a.expr)
        if not any(a.page for a in m.alerts):
            self.at(("alerts",), "at least one alert must page (page: true)")
        for i, g in enumerate(m.guards):
            compile_at(("guards", i, "expr"), g.expr)
        for i, source in enumerate(m.recovery.all):
            compile_at(("recovery", "all", i), source)

    def mitigations(self) -> None:
        from pagerdrill.scenarios.model import unknown_mitigation

        fault_ids = {f.id for f in self.m.faults}
        for i, mit in enumerate(self.m.mitigations):
            self.role_used(("mitigations", i, "role"), mit.role)
            unknown = unknown_mitigation(mit.action)
            if unknown:
                self.at(("mitigations", i, "action"), unknown)
            if mit.fault and mit.fault not in fault_ids:
                self.at(("mitigations", i, "fault"), f"no fault '{mit.fault}' in this scenario")

    def answers(self, fields: dict[str, frozenset[str]]) -> None:
        m, at = self.m, self.at
        if not any(c.correct for c in m.hypotheses.choices):
            at(("hypotheses", "choices"), "at least one choice must be `correct: true`")
        for i, group in enumerate(m.hypotheses.keywords):
            if not group or not all(isinstance(w, str) and w.strip() for w in group):
                at(("hypotheses", "keywords", i), "each group lists one or more words")
        choice = {c.id: c for c in m.hypotheses.choices}
        if m.answer.hypothesis not in choice:
            at(("answer", "hypothesis"), f"no hypothesis choice '{m.answer.hypothesis}'")
        elif not choice[m.answer.hypothesis].correct:
            at(("answer", "hypothesis"), f"'{m.answer.hypothesis}' is not marked correct")
        if m.answer.decision is not None:
            if m.decision is None:
                at(("answer", "decision"), "the scenario has no decision prompt")
            elif m.answer.decision not in {c.id for c in m.decision.choices}:
                at(("answer", "decision"), f"no decision choice '{m.answer.decision}'")
        elif m.decision is not None:
            at(("answer",), "the scenario has a decision prompt: the answer needs `decision`")
        if m.decision is not None and not any(c.correct for c in m.decision.choices):
            at(("decision", "choices"), "at least one choice must be `correct: true`")
        for i, hint in enumerate(m.hints):
            for j, name in enumerate(hint.shows):
                problem = _shown_problem(name, fields)
                if problem:
                    at(("hints", i, "shows", j), problem)
        mitigation_ids = {x.id for x in m.mitigations}
        for i, mid in enumerate(m.answer.mitigations):
            if mid not in mitigation_ids:
                at(("answer", "mitigations", i), f"no mitigation '{mid}'")


def _shown_problem(name: str, fields: dict[str, frozenset[str]]) -> str | None:
    """Why a hint's `shows` entry names nothing the drill screen shows, else None."""
    if name in PANES:
        return None
    if name.startswith(STACK):
        if name in STANDARD_REFS:
            return None
        return f"'{name}' is not a standard signal ({', '.join(sorted(STANDARD_REFS))})"
    probe, _, field = name.partition(".")
    if probe not in fields:
        known = ", ".join([*sorted(fields), *PANES])
        return f"'{name}': no probe '{probe}' and no pane of that name ({known})"
    if field and field not in fields[probe]:
        return (
            f"'{name}': a {probe} probe has no field '{field}' ({', '.join(sorted(fields[probe]))})"
        )
    return None
