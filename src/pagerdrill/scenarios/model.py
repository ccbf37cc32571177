"""Scenarios: YAML files under `scenarios/`, parsed once into strict frozen models.

A scenario says what breaks (faults, with timing), how it shows (probes and alert
rules), what the engineer is told (the symptom, never the cause), what the cause
really was (accepted hypotheses), what recovery looks like (expressions over
probes that must hold for a while), and how a good responder acts (the answer
key that `--autopilot` plays).

Parameters: a scenario declares `params` with defaults; `${name}` anywhere in a
value is replaced by the parameter (a whole-value reference keeps its type), and
`pagerdrill run --param name=value` overrides the default. Every problem is
reported with its file and line, all at once.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pagerdrill.errors import BadInputError, ConfigError, did_you_mean
from pagerdrill.faults import fault_class
from pagerdrill.journal.redact import SECRET_NAME
from pagerdrill.signals.dashboard import PANES, STACK, STANDARD_REFS
from pagerdrill.signals.expressions import Expr, ExprError
from pagerdrill.signals.expressions import parse as parse_expr
from pagerdrill.signals.specs import (
    PROBE_FIELDS,
    AlertRule,
    Guard,
    Ident,
    ProbeSpec,
    Severity,
    Slug,
)
from pagerdrill.workspace.config import EnvName, EnvValue
from pagerdrill.workspace.yamlfile import LineMap, Loc, check, dotted, parse_yaml, read_text

Scalar = int | float | str | bool

PARAM_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quiet(Model):
    """The quiet period before injection: a random delay the engineer cannot predict."""

    min_s: float = Field(default=30.0, ge=0, le=3600)
    max_s: float = Field(default=120.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _ordered(self) -> Quiet:
        if self.max_s < self.min_s:
            raise ValueError("max_s must not be below min_s")
        return self


class SteadyState(Model):
    """Before anything is broken: the recovery criteria must already hold this long."""

    for_s: float = Field(default=3.0, ge=0, le=600)
    timeout_s: float = Field(default=90.0, gt=0, le=3600)


class Repair(Model):
    """What to do, when the drill ends, about harm the fault cannot undo."""

    action: Literal["replay-lost-jobs"]
    """replay-lost-jobs: the role's producer adds again the jobs the fault lost."""
    role: Ident


class FaultSpec(BaseModel):
    """One fault; keys other than these are the fault kind's own parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Slug
    kind: str
    role: Ident
    at_s: float = Field(default=0.0, ge=0, le=3600)
    """Seconds after the quiet period ends."""
    duration_s: float | None = Field(default=None, gt=0, le=24 * 3600)
    """Revert by itself after this long; None: stays until mitigated or the drill ends."""
    repair: Repair | None = None
    """Run when the fault is reverted (the drill's end, `recover`): harm it cannot undo
    is repaired, so no drill leaves the stack broken. It runs after recovery was judged,
    so it never stands in for the engineer's mitigation."""

    @model_validator(mode="after")
    def _repair_at_the_end(self) -> FaultSpec:
        if self.repair is not None and self.duration_s is not None:
            raise ValueError("a fault with `repair` cannot have `duration_s`: its repair runs "
                             "when the drill ends, after recovery was judged")  # fmt: skip
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Choice(Model):
    id: Slug
    text: str = Field(min_length=1)
    correct: bool = False


class Hypotheses(Model):
    choices: list[Choice] = Field(min_length=1)
    """Shown in an order shuffled per drill (seeded by the drill id), never file order."""
    keywords: list[list[str]] = []
    """Free text is right when it names a term of every group and negates nothing;
    see `grade_hypothesis`."""
    feedback: Literal["live", "hidden"] = "hidden"
    """What the trainee sees on stating a hypothesis: `hidden` says only that it was
    recorded (the grade waits for the summary, as a certification drill wants); `live`
    also says right, wrong or for the lead to grade."""


class Decision(Model):
    prompt: str = Field(min_length=1)
    choices: list[Choice] = Field(min_length=2)
    """`correct: true` on the acceptable answers."""


class Recovery(Model):
    all: list[str] = Field(min_length=1)
    for_s: float = Field(default=5.0, ge=0, le=3600)


class Mitigation(Model):
    id: Slug
    title: str = Field(min_length=1)
    action: str = Field(min_length=1)
    """An installed mitigation action (`mitigation_actions()`): the built-ins start,
    restart, reset-env, set-env, block-source, revert-fault, and replay-lost-jobs (ask
    the role's producer to add again the jobs it added that are neither in the queue nor
    processed, `POST /admin/replay-lost-jobs`), or a plugin's."""
    role: Ident | None = None
    fault: Slug | None = None
    """revert-fault: which fault."""
    env: dict[EnvName, EnvValue] = {}
    """set-env: variables to set."""
    variable: str = "BLOCKED_SOURCES"
    """block-source: the variable holding the comma-separated block list."""

    @model_validator(mode="after")
    def _complete(self) -> Mitigation:
        if self.action == "revert-fault" and not self.fault:
            raise ValueError("revert-fault needs `fault`")
        if self.action != "revert-fault" and not self.role:
            raise ValueError(f"{self.action} needs `role`")
        if self.action == "set-env" and not self.env:
            raise ValueError("set-env needs `env`")
        return self


MITIGATION_GROUP = "pagerdrill.mitigations"
"""The entry-point group of mitigation actions; their classes live in the drill layer
(`pagerdrill.drill.mitigations.mitigation_class`), a scenario needs only their names."""

_BUILTIN_MITIGATIONS = {
    "start": "pagerdrill.drill.mitigations:Start",
    "restart": "pagerdrill.drill.mitigations:Restart",
    "reset-env": "pagerdrill.drill.mitigations:ResetEnv",
    "set-env": "pagerdrill.drill.mitigations:SetEnv",
    "block-source": "pagerdrill.drill.mitigations:BlockSource",
    "revert-fault": "pagerdrill.drill.mitigations:RevertFault",
    "replay-lost-jobs": "pagerdrill.drill.mitigations:ReplayLostJobs",
}


def mitigation_entry_points() -> dict[str, str]:
    """Every installed mitigation action and where its class is, importing none."""
    found = {ep.name: ep.value for ep in entry_points(group=MITIGATION_GROUP)}
    # a source checkout that was never installed still has the built-ins
    return {**_BUILTIN_MITIGATIONS, **found}


def mitigation_actions() -> list[str]:
    """The names of every installed mitigation action."""
    return sorted(mitigation_entry_points())


def unknown_mitigation(action: str) -> str | None:
    """Why `action` names no installed mitigation (with the closest name), else None."""
    names = mitigation_actions()
    if action in names:
        return None
    import difflib

    close = difflib.get_close_matches(action, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown mitigation action '{action}'{hint}; installed: {', '.join(names)}"


class Hint(Model):
    """A hint, and where on the drill screen its answer is to be found."""

    text: str = Field(min_length=1)
    shows: list[str] = []
    """What answers it: signals (`probe` or `probe.field` of this scenario's probes, or a
    standard signal of the stack such as `stack.queue.delayed`) and panes (logs, spans,
    runbooks). Every signal named here is on the Signals pane once the drill pages."""


def _hint(value: Any) -> Any:
    """A hint written as plain text points at nothing in particular."""
    return {"text": value} if isinstance(value, str) else value


class Answer(Model):
    """The canonical response, played by --autopilot."""

    hypothesis: Slug
    decision: Slug | None = None
    mitigations: list[Slug] = []
    notes: list[str] = []


class SecretParam(Model):
    """A parameter whose value is a secret (`bad_password: {value: x, secret: true}`):
    a drill never journals it."""

    value: Scalar
    secret: bool = False


class ScenarioModel(Model):
    version: Literal[1] = 1
    name: Slug | None = None
    title: str = Field(min_length=1)
    severity: Severity
    symptom: str = Field(min_length=1)
    roles: list[Ident] = Field(min_length=1)
    params: dict[Ident, Scalar | SecretParam] = {}
    interval_s: float = Field(default=1.0, ge=0.05, le=60)
    quiet: Quiet = Quiet()
    steady_state: SteadyState = SteadyState()
    page_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    """Abort when no page alert fires this long after the faults are in."""
    max_duration_s: float = Field(default=1800.0, gt=0, le=24 * 3600)
    """Abort (and revert) when the drill has not closed this long after the page."""
    faults: list[FaultSpec] = Field(min_length=1)
    probes: list[ProbeSpec] = Field(min_length=1)
    alerts: list[AlertRule] = Field(min_length=1)
    guards: list[Guard] = []
    root_cause: str = Field(min_length=1)
    hypotheses: Hypotheses
    decision: Decision | None = None
    recovery: Recovery
    mitigations: list[Mitigation] = []
    hints: list[Annotated[Hint, BeforeValidator(_hint)]] = []
    answer: Answer


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    text: str
    model: ScenarioModel
    params: dict[str, Scalar]
    exprs: dict[str, Expr] = field(repr=False)
    """Compiled expressions by their source text."""
    secret_params: frozenset[str] = frozenset()
    """Parameters the scenario marks `secret: true`."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def expr(self, source: str) -> Expr:
        return self.exprs[source]

    def fault(self, fault_id: str) -> FaultSpec:
        return next(f for f in self.model.faults if f.id == fault_id)

    def mitigation(self, mitigation_id: str) -> Mitigation:
        return next(m for m in self.model.mitigations if m.id == mitigation_id)


Problems = list[tuple[int | None, str]]


def parse_param(text: str) -> tuple[str, str]:
    """`KEY=VALUE` from the command line. The value stays text until the scenario says
    what the parameter is (see `coerce_param`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise BadInputError(f"--param {text!r}: expected KEY=VALUE")
    return key.strip(), raw


def coerce_param(key: str, raw: Scalar, default: Scalar, path: Path) -> Scalar:
    """A --param value as the type of the parameter's default."""
    if not isinstance(raw, str) or isinstance(default, str):
        value: Any = raw
    else:
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
    kinds = {bool: "true or false", int: "a number", float: "a number", str: "text"}
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise BadInputError(
            f"{path}: --param {key}={raw}: expected {kinds[type(default)]} "
            f"like the default ({default})"
        )
    return value


def _substitute(data: Any, params: dict[str, Scalar], loc: Loc, lines, problems) -> Any:
    if isinstance(data, dict):
        return {k: _substitute(v, params, (*loc, k), lines, problems) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute(v, params, (*loc, i), lines, problems) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data
    for name in PARAM_REF.findall(data):
        if name not in params:
            known = ", ".join(sorted(params)) or "none declared"
            problems.append(
                (lines.line_of(loc), f"{dotted(loc)}: unknown parameter ${{{name}}} ({known})")
            )
            return data
    whole = PARAM_REF.fullmatch(data.strip())
    if whole:
        return params[whole.group(1)]
    return PARAM_REF.sub(lambda m: str(params[m.group(1)]), data)


def parse_scenario(
    text: str,
    path: Path,
    overrides: Mapping[str, Scalar] | None = None,
    roles: dict | None = None,
    runbooks: set[str] | None = None,
) -> Scenario:
    """Parse and check a scenario. With `roles` (the workspace's bindings), every role
    the scenario uses must be bound; with `runbooks` (the workspace's runbook names),
    every alert's runbook must exist."""
    data, lines = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping (title, severity, symptom, faults ...)")])
    problems: Problems = []
    raw_params = data.get("params")
    declared: dict = raw_params if isinstance(raw_params, dict) else {}
    secret = frozenset(k for k, v in declared.items() if isinstance(v, dict) and v.get("secret"))
    # a marked parameter's value is its `value`; the model checks the mark's shape
    declared = {k: v.get("value") if isinstance(v, dict) else v for k, v in declared.items()}
    params: dict[str, Scalar] = {
        k: v for k, v in declared.items() if isinstance(v, int | float | str | bool)
    }
    for key, value in (overrides or {}).items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise BadInputError(f"{path}: --param {key}: no such parameter (parameters: {known})")
        params[key] = coerce_param(key, value, declared[key], path)
    resolved = {k: _substitute(v, params, (k,), lines, problems) for k, v in data.items()}
    resolved["params"] = data.get("params", {})
    model, found = check(ScenarioModel, resolved, lines)
    problems += found
    if model is None:  # the faults can still be checked, so report them too
        problems += _raw_fault_problems(resolved.get("faults"), lines)
        problems += _raw_mitigation_problems(resolved.get("mitigations"), lines)
        raise ConfigError(path, _sorted(problems))
    exprs: dict[str, Expr] = {}
    problems += _consistency(model, lines, exprs, roles)
    for i, alert in enumerate(model.alerts):
        if runbooks is not None and alert.runbook and alert.runbook not in runbooks:
            loc: Loc = ("alerts", i, "runbook")
            problems.append(
                (lines.line_of(loc), f"{dotted(loc)}: no runbook '{alert.runbook}' in runbooks/")
            )
    if problems:
        raise ConfigError(path, _sorted(problems))
    name = model.name or path.stem
    return Scenario(name=name, path=path, text=text, model=model, params=params, exprs=exprs,
                    secret_params=secret)  # fmt: skip


def load_scenario(
    path: Path,
    overrides: Mapping[str, Scalar] | None = None,
    roles: dict | None = None,
    runbooks: set[str] | None = None,
) -> Scenario:
    return parse_scenario(read_text(path), path, overrides, roles, runbooks)


def _raw_fault_problems(faults: Any, lines: LineMap) -> Problems:
    """Fault kinds and their parameters, checked on data the schema refused."""
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


def _raw_mitigation_problems(mitigations: Any, lines: LineMap) -> Problems:
    """Mitigation actions, checked on data the schema refused."""
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


def _sorted(problems: Problems) -> Problems:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p[0] is None, p[0] or 0))


def _consistency(
    m: ScenarioModel, lines: LineMap, exprs: dict[str, Expr], roles: dict | None
) -> Problems:
    problems: Problems = []

    def at(loc: Loc, message: str) -> None:
        problems.append((lines.line_of(loc), f"{dotted(loc)}: {message}"))

    def unique(items: list, key: str, attr: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                at((key, i, attr), f"duplicate {attr} '{value}'")
            seen.add(value)

    unique(m.faults, "faults", "id")
    unique(m.probes, "probes", "name")
    unique(m.alerts, "alerts", "name")
    unique(m.mitigations, "mitigations", "id")
    unique(m.hypotheses.choices, "hypotheses", "id")

    def role_used(loc: Loc, role: str | None) -> None:
        if role is None:
            return
        if role not in m.roles:
            at(loc, f"role '{role}' is not in this scenario's roles ({', '.join(m.roles)})")
        elif roles is not None and role not in roles:
            at(
                loc,
                f"role '{role}' is not bound in pagerdrill.yaml (bound: "
                f"{', '.join(sorted(roles)) or 'none'})",
            )

    if m.quiet.max_s < m.quiet.min_s:
        at(("quiet",), "max_s must not be below min_s")
    for i, f in enumerate(m.faults):
        role_used(("faults", i, "role"), f.role)
        if f.repair is not None:
            role_used(("faults", i, "repair", "role"), f.repair.role)
        try:
            cls = fault_class(f.kind)
        except BadInputError as exc:
            at(("faults", i, "kind"), str(exc))
            continue
        _, found = check(cls.Params, f.params, lines, ("faults", i))
        problems.extend(found)
    fields: dict[str, frozenset[str]] = {}
    for i, p in enumerate(m.probes):
        role_used(("probes", i, "role"), p.role)
        fields[p.name] = PROBE_FIELDS[p.kind]

    def compile_at(loc: Loc, source: str) -> None:
        try:
            exprs[source] = parse_expr(source, fields)
        except ExprError as exc:
            at(loc, f"bad expression {source!r}: {exc}")

    for i, a in enumerate(m.alerts):
        compile_at(("alerts", i, "expr"), a.expr)
    if not any(a.page for a in m.alerts):
        at(("alerts",), "at least one alert must page (page: true)")
    for i, g in enumerate(m.guards):
        compile_at(("guards", i, "expr"), g.expr)
    for i, source in enumerate(m.recovery.all):
        compile_at(("recovery", "all", i), source)
    fault_ids = {f.id for f in m.faults}
    for i, mit in enumerate(m.mitigations):
        role_used(("mitigations", i, "role"), mit.role)
        unknown = unknown_mitigation(mit.action)
        if unknown:
            at(("mitigations", i, "action"), unknown)
        if mit.fault and mit.fault not in fault_ids:
            at(("mitigations", i, "fault"), f"no fault '{mit.fault}' in this scenario")
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
    return problems


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


# ----------------------------------------------------------------- the workspace


def scenario_files(root: Path) -> list[Path]:
    folder = root / "scenarios"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def find_scenario(root: Path, name: str) -> Path:
    """A scenario by name (file stem or `name:`) or by path."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    files = scenario_files(root)
    for path in files:
        if path.stem == name:
            return path
    names = [p.stem for p in files]
    close = did_you_mean(name, names)
    hint = f" (did you mean '{close}'?)" if close is not None else ""
    raise BadInputError(
        f"no scenario '{name}' in {root / 'scenarios'}{hint}; known: {', '.join(names) or 'none'}"
    )


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


def scenario_secrets(scenario) -> tuple[set[str], set[str]]:
    """What a drill of `scenario` must never journal: the secret values (what its faults
    mark secret, the parameters marked `secret: true` or named like a password, token or
    secret, and any parameter feeding a secret) and the names of those parameters."""
    values: set[str] = set()
    for f in scenario.model.faults:
        values |= fault_class(f.kind).secret_values(f.params)
    names = set()
    for name, value in scenario.params.items():
        if not isinstance(value, str) or not value:
            continue  # numbers and flags are thresholds and switches, never secrets
        if name in scenario.secret_params or SECRET_NAME.search(name) or value in values:
            names.add(name)
            values.add(value)
    return values, names
