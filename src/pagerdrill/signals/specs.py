"""What a scenario asks the signals layer to read and watch: probe specs, alert rules
and guards, strict frozen models. Scenarios hold them; probes, rules and the dashboard
read them, so they live here, below the scenarios."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pagerdrill.signals.expressions import PRIMARY

Severity = Literal["P0", "P1", "P2", "P3"]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    label_patterns: dict[str, str] = {}
    """metric: only series whose labels match these regular expressions in full (as
    PromQL's `=~`: `status: "5.."` for every 5xx)."""
    rate: bool = False
    """metric: also compute the per-second rate (field `rate`)."""
    rate_window_s: float = Field(default=5.0, gt=0, le=3600)
    timeout_s: float = Field(default=1.0, gt=0, le=30)

    @model_validator(mode="after")
    def _complete(self) -> ProbeSpec:
        if self.kind == "metric" and not self.metric:
            raise ValueError("a metric probe needs `metric`")
        for label, pattern in self.label_patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"label_patterns.{label}: bad regular expression: {exc}") from None
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
