"""What a scenario asks the signals layer to read and watch: probe specs, alert rules
and guards, strict frozen models. Scenarios hold them; probes, rules and the dashboard
read them, so they live here, below the scenarios."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.workspace.sources import (
    HttpSource,
    LogSource,
    MetricSource,
    PromqlSource,
    QueueSource,
    ServiceSource,
    SignalSource,
)
from pagerdrill.workspace.yamlfile import checked_regex

# the workspace's signal sources are parsed at its layer; the signals layer reads them
__all__ = [
    "PROBE_FIELDS",
    "AlertRule",
    "Guard",
    "HttpSource",
    "Ident",
    "LogSource",
    "MetricSource",
    "Model",
    "ProbeSpec",
    "PromqlSource",
    "QueueSource",
    "ServiceSource",
    "Severity",
    "SignalSource",
    "Slug",
    "probe_fields",
]

Severity = Literal["P0", "P1", "P2", "P3"]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
QueueType = Literal["bullmq", "list", "stream", "celery", "rq"]
LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical"]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOG_ONLY = ("match", "min_level")


class ProbeSpec(Model):
    name: Ident
    signal: str | None = None
    """A catalogue signal (`cache.miss_rate`), read where the workspace's `signals:`
    maps it; the probe's value is the signal's, in the catalogue's unit. Instead of
    `kind` and `role`, which name one stack's own sources."""
    kind: Literal["queue", "http", "metric", "service", "log"] | None = None
    role: Ident | None = None
    path: str | None = Field(default=None, pattern=r"^/")
    """http: the path on the role's URL (default /healthz)."""
    method: Literal["GET", "HEAD"] = "GET"
    metric: str | None = None
    """metric: the sample name as scraped, e.g. auth_failures_total."""
    labels: dict[str, str] = {}
    """metric: only series with these labels (summed)."""
    label_patterns: dict[str, str] = {}
    """metric: only series whose labels match these regular expressions in full (as
    PromQL's `=~`: `status: "5.."` for every 5xx)."""
    rate: bool = False
    """metric: also compute the per-second rate (field `rate`)."""
    rate_window_s: float = Field(default=5.0, gt=0, le=3600)
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    queue_type: QueueType | None = None
    """queue: bullmq, list, stream, celery or rq; default the role's `queue_type`, else
    bullmq (see signals/queues.py)."""
    key: str | None = Field(default=None, min_length=1)
    """queue: the Redis key of a list or stream, or the Celery/RQ queue name; default
    the role's `queue`."""
    group: str | None = Field(default=None, min_length=1)
    """queue (stream): the consumer group whose pending entries are counted; default the
    role's `queue_group`."""
    match: dict[str, str] = {}
    """log: only entries whose fields have these values (`event: cache.error`; `message`
    and `level` are the entry's own)."""
    min_level: LogLevel | None = None
    """log: only entries of this level or above."""
    window_s: float = Field(default=30.0, gt=0, le=3600)
    """log: the window the count covers (its `rate` is the count over it, per second)."""

    @model_validator(mode="after")
    def _complete(self) -> ProbeSpec:
        if self.signal is not None:
            given = sorted(k for k in self.model_fields_set if k not in ("name", "signal"))
            if given:
                raise ValueError(
                    f"a signal probe names only `name` and `signal` (the workspace maps "
                    f"the signal to its source), not {', '.join(given)}"
                )
            return self
        if self.kind is None or self.role is None:
            raise ValueError("a probe needs `signal`, or `kind` and `role`")
        if self.kind == "metric" and not self.metric:
            raise ValueError("a metric probe needs `metric`")
        for kind, names in (("queue", ("queue_type", "key", "group")), ("log", LOG_ONLY)):
            given = [n for n in names if getattr(self, n)]
            if self.kind != kind and given:
                raise ValueError(f"{', '.join(given)}: only a {kind} probe reads it")
        for label, pattern in self.label_patterns.items():
            checked_regex(pattern, f"label_patterns.{label}")
        return self


PROBE_FIELDS: dict[str, frozenset[str]] = {
    "queue": frozenset(
        {
            *(PRIMARY, "waiting", "active", "delayed", "failed", "completed"),
            *("prioritized", "paused", "pending", "length"),
        }
    ),
    "http": frozenset({PRIMARY, "status", "latency_ms", "ok"}),
    "metric": frozenset({PRIMARY, "rate"}),
    "service": frozenset({PRIMARY, "up", "running", "state"}),
    "log": frozenset({PRIMARY, "count", "rate"}),
    "signal": frozenset({PRIMARY}),
}


def probe_fields(spec: ProbeSpec) -> frozenset[str]:
    """What an expression may read of the probe: a signal probe has its value only."""
    return PROBE_FIELDS[spec.kind or "signal"]


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
    runbook: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)] | None
    ) = None
    """The runbook for this alert (a file stem in runbooks/, as Prometheus rules carry
    `runbook_url`); the page shows it. Leave it out to make finding it the engineer's step."""


class Guard(Model):
    """A stop condition: when it holds for `for_s`, the drill aborts and reverts."""

    name: Slug
    expr: str
    for_s: float = Field(default=0.0, ge=0, le=3600)
    reason: str = ""
