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

Parameters are in `params`, the checks across parts of a file in `consistency`, and
hypothesis grading and the pickers' order in `grading`; their public names are
importable from here too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pagerdrill.errors import BadInputError, ConfigError, did_you_mean
from pagerdrill.faults import fault_class
from pagerdrill.journal.redact import SECRET_NAME
from pagerdrill.plugins import plugin_points, unknown_plugin
from pagerdrill.scenarios.consistency import (
    Problems,
    consistency,
    raw_fault_problems,
    raw_mitigation_problems,
    sorted_problems,
)
from pagerdrill.scenarios.grading import (
    EXONERATION_CUES,
    GRADES,
    NEGATION_CUES,
    UNGRADED_TEXT,
    Grade,
    HypothesisGrade,
    KeywordScan,
    TermMatch,
    drill_order,
    grade_hypothesis,
    scan_keywords,
    shown_choices,
    shown_decision_choices,
    shown_mitigations,
)
from pagerdrill.scenarios.params import PARAM_REF, Scalar, coerce_param, parse_param, substitute
from pagerdrill.signals.expressions import Expr
from pagerdrill.signals.specs import (
    AlertRule,
    Guard,
    Ident,
    ProbeSpec,
    Severity,
    Slug,
)
from pagerdrill.workspace.config import EnvName, EnvValue
from pagerdrill.workspace.yamlfile import Loc, check, dotted, parse_yaml, read_text

# the grading, parameter and consistency parts live in modules of their own; their
# public names are still importable from here
__all__ = [
    "EXONERATION_CUES",
    "GRADES",
    "NEGATION_CUES",
    "PARAM_REF",
    "UNGRADED_TEXT",
    "AlertRule",
    "Grade",
    "Guard",
    "HypothesisGrade",
    "KeywordScan",
    "ProbeSpec",
    "Problems",
    "Scalar",
    "TermMatch",
    "coerce_param",
    "drill_order",
    "grade_hypothesis",
    "parse_param",
    "scan_keywords",
    "shown_choices",
    "shown_decision_choices",
    "shown_mitigations",
]


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
    return plugin_points(MITIGATION_GROUP, _BUILTIN_MITIGATIONS)


def mitigation_actions() -> list[str]:
    """The names of every installed mitigation action."""
    return sorted(mitigation_entry_points())


def unknown_mitigation(action: str) -> str | None:
    """Why `action` names no installed mitigation (with the closest name), else None."""
    names = mitigation_actions()
    return None if action in names else unknown_plugin("mitigation action", action, names)


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
    resolved = {k: substitute(v, params, (k,), lines, problems) for k, v in data.items()}
    resolved["params"] = data.get("params", {})
    model, found = check(ScenarioModel, resolved, lines)
    problems += found
    if model is None:  # the faults can still be checked, so report them too
        problems += raw_fault_problems(resolved.get("faults"), lines)
        problems += raw_mitigation_problems(resolved.get("mitigations"), lines)
        raise ConfigError(path, sorted_problems(problems))
    exprs: dict[str, Expr] = {}
    problems += consistency(model, lines, exprs, roles)
    for i, alert in enumerate(model.alerts):
        if runbooks is not None and alert.runbook and alert.runbook not in runbooks:
            loc: Loc = ("alerts", i, "runbook")
            problems.append(
                (lines.line_of(loc), f"{dotted(loc)}: no runbook '{alert.runbook}' in runbooks/")
            )
    if problems:
        raise ConfigError(path, sorted_problems(problems))
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
