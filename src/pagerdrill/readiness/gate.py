"""`readiness/gate.yaml`: the on-call go/no-go items and how each one is satisfied.

Strict frozen models (unknown keys refused with a did-you-mean, every problem with its
line). Without a gate file the seed's end-of-week-2 checklist is the gate: ten items,
in its wording, each bound to the evidence that satisfies it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from pagerdrill.errors import ConfigError
from pagerdrill.workspace.config import Model
from pagerdrill.workspace.yamlfile import load_yaml, validate

GATE_NAME = "readiness/gate.yaml"
Severity = Literal["P0", "P1", "P2", "P3"]
ItemKind = Literal["drill", "runbook", "read", "escalation", "shift", "access", "quiz", "signoff"]
Role = Literal["engineer", "on-call", "lead"]


class DrillRule(Model):
    """What a drill must be to satisfy the drill item. Only a drill the engineer drove in
    the TUI counts (an autopilot, a script or a drill of someone else never does)."""

    min_severity: Severity = "P2"
    """The drill's severity must be this or higher (P0 is the highest)."""

    reviewed: bool = True
    """A pass review by someone other than the engineer who is a lead or on-call."""

    reviewer_roles: list[Role] = Field(default=["lead", "on-call"], min_length=1)
    """Roster roles whose review counts."""

    hypothesis_right: bool = False
    """The engineer's hypothesis was graded right."""

    within_target: bool = False
    """Symptom to the right hypothesis within the checklist's target."""

    no_hints: bool = False
    """No hint was taken."""


class RunbookRule(Model):
    """A runbook the engineer authored, lint-clean, in the index, merged and reviewed."""

    branch: str | None = None
    """The branch it must be present on (default: the workspace's current branch)."""

    reviewed: bool = True
    """An attestation by another roster member naming the runbook and its content hash."""


class ObservationBar(Model):
    """A measurable bar for the shadow shift's observations."""

    min_alerts: int = Field(default=10, ge=1)
    """At least this many alerts observed."""

    min_made_sense: float = Field(default=0.8, ge=0, le=1)
    """More than this share of them made sense to the engineer."""


class ShiftRule(Model):
    """A shift attested by a roster on-call, with its date and length."""

    name: Literal["shadow", "reverse-shadow"]
    min_hours: float = Field(default=0, ge=0)
    """The shortest shift that counts (0: any length)."""

    observations: ObservationBar | None = None
    """A bar the attested observations must meet (none by default)."""


class Tool(Model):
    """A tool the engineer must have access to."""

    name: str = Field(min_length=1)
    url: str | None = None
    """Probed by `readiness access` (HTTP status only); only these hosts are contacted."""


class QuizStep(Model):
    """One step of the expected answer, and the words that name it."""

    name: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    """Whole words or phrases, case-insensitive; any of them names the step."""


class QuizRule(Model):
    question: str = "What's the first thing you do when the pager fires?"
    limit_s: float = Field(default=30, gt=0)
    """The answer must come within this many seconds ("without thinking")."""

    steps: list[QuizStep] = Field(
        default=[
            QuizStep(name="acknowledge", keywords=["acknowledge", "ack", "acknowledged"]),
            QuizStep(
                name="open dashboards",
                keywords=["dashboard", "dashboards", "grafana", "metrics"],
            ),
            QuizStep(
                name="search errors in traces",
                keywords=["jaeger", "traces", "trace", "error spans", "spans", "loki", "logs"],
            ),
            QuizStep(
                name="identify recurrence",
                keywords=["recurrence", "recurring", "runbook", "runbooks", "happened before"],
            ),
        ],
        min_length=1,
    )
    """In order: the answer must name each step, and in this order."""


class Item(Model):
    """One go/no-go item: its wording and how it is satisfied."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    text: str = Field(min_length=1)
    """The item as the checklist words it."""

    kind: ItemKind
    per_rotation: bool = False
    """Reopened by a no-go: it must be done again in the next rotation."""

    drill: DrillRule | None = None
    runbook: RunbookRule | None = None
    document: str | None = None
    """For `read`: the document's path in the workspace."""

    format: Literal["security-register", "changelog", "text"] = "text"
    """For `read`: how the document is parsed for what the read shows."""

    lead_discussion: bool = False
    """For `read`: a lead must also attest that its pending findings were discussed."""

    shift: ShiftRule | None = None
    tools: list[Tool] = Field(default_factory=list)
    quiz: QuizRule | None = None

    @model_validator(mode="after")
    def _settings_of_its_kind(self) -> Item:
        if self.kind == "read" and not self.document:
            raise ValueError(f"item {self.id!r}: a read item names its document")
        if self.kind == "shift" and self.shift is None:
            raise ValueError(f"item {self.id!r}: a shift item has shift: {{name: ...}}")
        if self.kind == "access" and not self.tools:
            raise ValueError(f"item {self.id!r}: an access item lists its tools")
        return self

    @property
    def drill_rule(self) -> DrillRule:
        return self.drill or DrillRule()

    @property
    def runbook_rule(self) -> RunbookRule:
        return self.runbook or RunbookRule()

    @property
    def quiz_rule(self) -> QuizRule:
        return self.quiz or QuizRule()


class Gate(Model):
    """The team's go/no-go gate."""

    version: Literal[1] = 1
    require_signatures: bool = False
    """Every sign-off must be signed with the signer's SSH key (in-toto Statement)."""

    oncall_categories: list[str] = Field(
        default_factory=lambda: ["auth", "bet pipeline", "wallet", "admin"]
    )
    """Security-register categories whose pending findings a read shows."""

    expires_after_days: int | None = Field(default=None, ge=1)
    """A go expires this many days after the last sign-off (off by default)."""

    fresh_drill_days: int | None = Field(default=None, ge=1)
    """A ready engineer needs a qualifying drill at least this often (off by default)."""

    schedule_warning_days: int = Field(default=14, ge=1)
    """How far ahead the team view looks for people on the schedule without a go."""

    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Gate:
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                raise ValueError(f"item id {item.id!r} is listed twice")
            seen.add(item.id)
        if not any(i.kind == "signoff" for i in self.items):
            raise ValueError("the gate needs a signoff item (the go/no-go in writing)")
        return self

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    @property
    def ids(self) -> list[str]:
        return [i.id for i in self.items]


DEFAULT_TOOLS = [
    Tool(name="PagerDuty", url=None),
    Tool(name="on-call Slack channel", url=None),
    Tool(name="Grafana", url=None),
    Tool(name="Jaeger", url=None),
    Tool(name="Loki", url=None),
    Tool(name="production AWS account (read-only)", url=None),
    Tool(name="runbooks repo", url=None),
]


def default_gate() -> Gate:
    """The seed's end-of-week-2 checklist, item for item."""
    return Gate(
        items=[
            Item(
                id="drill",
                kind="drill",
                text="One simulated P2 incident driven end-to-end, with timeline write-up archived",
            ),
            Item(
                id="runbook",
                kind="runbook",
                text="One new runbook authored, reviewed, and merged into ../runbooks/",
            ),
            Item(
                id="security-register",
                kind="read",
                document="readiness/security-register.md",
                format="security-register",
                lead_discussion=True,
                text="Security register read; pending findings discussed with team lead",
            ),
            Item(
                id="api-changelog",
                kind="read",
                document="docs/api-changelog.md",
                format="changelog",
                text="API changelog reviewed; recent deltas understood",
            ),
            Item(
                id="escalation",
                kind="escalation",
                text="Escalation matrix validated end-to-end (every channel, every name)",
            ),
            Item(
                id="shadow",
                kind="shift",
                per_rotation=True,
                shift=ShiftRule(name="shadow"),
                text="Shadow shift complete; observations logged",
            ),
            Item(
                id="reverse-shadow",
                kind="shift",
                per_rotation=True,
                shift=ShiftRule(name="reverse-shadow"),
                text="Reverse-shadow shift complete; experienced on-call signs off",
            ),
            Item(
                id="access",
                kind="access",
                tools=DEFAULT_TOOLS,
                text="You have access to: PagerDuty, the on-call Slack channel, Grafana, "
                "Jaeger, Loki, the production AWS account (read-only at minimum), and the "
                "runbooks repo",
            ),
            Item(
                id="quiz",
                kind="quiz",
                text='You can answer "what\'s the first thing you do when the pager fires?" '
                "without thinking (acknowledge → open dashboards → search Jaeger errors → "
                "identify recurrence)",
            ),
            Item(
                id="signoff",
                kind="signoff",
                per_rotation=True,
                text="You and the experienced on-call have agreed go/no-go in writing",
            ),
        ]
    )


def gate_path(root: Path) -> Path:
    return root / GATE_NAME


def load_gate(root: Path) -> Gate:
    """The workspace's gate, or the default when it has no gate file. A malformed gate
    raises a ConfigError naming every problem with its line."""
    path = gate_path(root)
    if not path.exists():
        return default_gate()
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping (version, items ...)")])
    return validate(Gate, data, path, lines)
