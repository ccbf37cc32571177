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

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pagerdrill.config import EnvName, EnvValue
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.expr import PRIMARY, Expr, ExprError
from pagerdrill.expr import parse as parse_expr
from pagerdrill.faults import fault_class
from pagerdrill.yamlfile import LineMap, Loc, check, dotted, parse_yaml, read_text

Severity = Literal["P0", "P1", "P2", "P3"]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]
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

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ProbeSpec(Model):
    name: Ident
    kind: Literal["queue", "http", "metric", "service"]
    role: Ident
    path: str | None = Field(default=None, pattern=r"^/")
    """http: the path on the role's URL (default /healthz)."""
    method: Literal["GET", "HEAD"] = "GET"
    metric: str | None = None
    """metric: the sample name as scraped, e.g. auth_failures_total."""
    labels: dict[str, str] = {}
    """metric: only series with these labels (summed)."""
    rate: bool = False
    """metric: also compute the per-second rate (field `rate`)."""
    rate_window_s: float = Field(default=5.0, gt=0, le=3600)
    timeout_s: float = Field(default=1.0, gt=0, le=30)

    @model_validator(mode="after")
    def _complete(self) -> ProbeSpec:
        if self.kind == "metric" and not self.metric:
            raise ValueError("a metric probe needs `metric`")
        return self


PROBE_FIELDS: dict[str, frozenset[str]] = {
    "queue": frozenset(
        {PRIMARY, "waiting", "active", "delayed", "failed", "completed", "prioritized", "paused"}
    ),
    "http": frozenset({PRIMARY, "status", "latency_ms", "ok"}),
    "metric": frozenset({PRIMARY, "rate"}),
    "service": frozenset({PRIMARY, "up", "running", "state"}),
}


class AlertRule(Model):
    name: Slug
    expr: str
    for_s: float = Field(default=0.0, ge=0, le=3600)
    severity: Severity | None = None
    """Default: the scenario's severity."""
    summary: str = ""
    """What the page says (a symptom, never the cause)."""
    page: bool = True
    """Whether this alert pages the engineer (else it only goes to the timeline)."""


class Guard(Model):
    """A stop condition: when it holds for `for_s`, the drill aborts and reverts."""

    name: Slug
    expr: str
    for_s: float = Field(default=0.0, ge=0, le=3600)
    reason: str = ""


class Choice(Model):
    id: Slug
    text: str = Field(min_length=1)
    correct: bool = False


class Hypotheses(Model):
    choices: list[Choice] = Field(min_length=1)
    keywords: list[list[str]] = []
    """Free text is right when it contains a term of every group."""


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
    action: Literal["start", "restart", "reset-env", "set-env", "block-source", "revert-fault"]
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


class Answer(Model):
    """The canonical response, played by --autopilot."""

    hypothesis: Slug
    decision: Slug | None = None
    mitigations: list[Slug] = []
    notes: list[str] = []


class ScenarioModel(Model):
    version: Literal[1] = 1
    name: Slug | None = None
    title: str = Field(min_length=1)
    severity: Severity
    symptom: str = Field(min_length=1)
    roles: list[Ident] = Field(min_length=1)
    params: dict[Ident, Scalar] = {}
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
    hints: list[str] = []
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
) -> Scenario:
    """Parse and check a scenario. With `roles` (the workspace's bindings), every role
    the scenario uses must be bound."""
    data, lines = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping (title, severity, symptom, faults ...)")])
    problems: Problems = []
    raw_params = data.get("params")
    declared: dict = raw_params if isinstance(raw_params, dict) else {}
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
        raise ConfigError(path, _sorted(problems))
    exprs: dict[str, Expr] = {}
    problems += _consistency(model, lines, exprs, roles)
    if problems:
        raise ConfigError(path, _sorted(problems))
    name = model.name or path.stem
    return Scenario(name=name, path=path, text=text, model=model, params=params, exprs=exprs)


def load_scenario(
    path: Path, overrides: Mapping[str, Scalar] | None = None, roles: dict | None = None
) -> Scenario:
    return parse_scenario(read_text(path), path, overrides, roles)


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
    mitigation_ids = {x.id for x in m.mitigations}
    for i, mid in enumerate(m.answer.mitigations):
        if mid not in mitigation_ids:
            at(("answer", "mitigations", i), f"no mitigation '{mid}'")
    return problems


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
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise BadInputError(
        f"no scenario '{name}' in {root / 'scenarios'}{hint}; known: {', '.join(names) or 'none'}"
    )


def grade_hypothesis(model: ScenarioModel, choice: str | None, text: str | None) -> bool:
    """Right when the choice is marked correct, or the free text names a term of every
    keyword group (whole words, case-insensitive)."""
    if choice is not None:
        return any(c.id == choice and c.correct for c in model.hypotheses.choices)
    if not text or not model.hypotheses.keywords:
        return False
    lowered = text.lower()
    return all(
        any(re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", lowered) for word in group)
        for group in model.hypotheses.keywords
    )
