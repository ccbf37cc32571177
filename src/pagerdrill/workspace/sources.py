"""Where a workspace reads each signal of the catalogue: the `signals:` section of
`pagerdrill.yaml`, one source per signal name.

Scenarios name signals by role and meaning (`cache.miss_rate`); only the workspace
knows which metric, query, path, queue or log of the team's stack gives it. The
models live at the bottom layer because the workspace file is parsed here; the probes
that read them are in `pagerdrill.signals`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pagerdrill.workspace.yamlfile import checked_regex

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


def _signal_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", value) or len(value) > 80:
        raise ValueError(
            f"{value!r} is not a signal name: role.meaning in lower case, as the catalogue "
            "names them (api.error_rate)"
        )
    return value


SignalName = Annotated[str, AfterValidator(_signal_name)]
"""`role.meaning`, as the catalogue names them (`api.error_rate`)."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MetricSource(Model):
    """A metric on the role's `/metrics`, summed over the series whose labels match."""

    kind: Literal["metric"]
    role: Ident
    metric: str = Field(min_length=1)
    """The metric's name as exposed: a counter's `_total` sample, a gauge, or a
    histogram's base name (`http_request_duration_seconds`) for `as: quantile`."""
    labels: dict[str, str] = {}
    """Only series with exactly these label values."""
    label_patterns: dict[str, str] = {}
    """Only series whose labels match these regular expressions in full (PromQL `=~`)."""
    as_: Literal["value", "rate", "quantile"] = Field(default="value", alias="as")
    """value: the sum as scraped (a gauge); rate: its per-second increase (a counter);
    quantile: `q` of the histogram's `_bucket` series over the window, as Prometheus's
    `histogram_quantile(q, sum by (le) (increase(..._bucket[window])))` computes it."""
    q: float = Field(default=0.95, ge=0, le=1)
    window_s: float = Field(default=5.0, gt=0, le=3600)
    """The window of a rate or a quantile."""
    timeout_s: float = Field(default=1.0, gt=0, le=30)

    @field_validator("label_patterns")
    @classmethod
    def _patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            checked_regex(pattern, f"label_patterns.{label}")
        return value


class PromqlSource(Model):
    """An instant query to the team's Prometheus (its HTTP API, `/api/v1/query`); the
    result's series are summed, and a query that returns none has no value."""

    kind: Literal["promql"]
    role: Ident
    """A role bound to the Prometheus server (its `url`)."""
    query: str = Field(min_length=1)
    timeout_s: float = Field(default=2.0, gt=0, le=30)


class HttpSource(Model):
    """A request to a path of the role's URL: whether it answered as expected, its
    latency or its status. A wrong answer that comes back as a 200 is not ok."""

    kind: Literal["http"]
    role: Ident
    path: str = Field(default="/healthz", pattern=r"^/")
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: int = Field(default=200, ge=100, le=599)
    body_match: str | None = None
    """A regular expression the body must contain (searched, not matched in full)."""
    as_: Literal["ok", "latency_ms", "status"] = Field(default="ok", alias="as")
    timeout_s: float = Field(default=1.0, gt=0, le=30)

    @field_validator("body_match")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        return None if value is None else checked_regex(value, "body_match")


class ServiceSource(Model):
    """The role's service is running and healthy: 1, else 0."""

    kind: Literal["service"]
    role: Ident


class QueueSource(Model):
    """A queue's count on the role's Redis: BullMQ's keys, a list, a stream, a Celery or
    an RQ queue (signals/queues.py)."""

    kind: Literal["queue"]
    role: Ident
    field: Literal["waiting", "active", "delayed", "failed", "completed", "pending"] = "waiting"
    queue_type: Literal["bullmq", "list", "stream", "celery", "rq"] | None = None
    """Default: the role's `queue_type`, else bullmq."""
    key: str | None = Field(default=None, min_length=1)
    """The list or stream key, or the Celery/RQ queue name; default the role's `queue`."""
    group: str | None = Field(default=None, min_length=1)
    """A stream's consumer group; default the role's `queue_group`."""


class LogSource(Model):
    """A count of the role's service's log entries whose fields match, in `window_s`
    (`as: count`), or that count per second (`as: rate`)."""

    kind: Literal["log"]
    role: Ident
    match: dict[str, str] = {}
    min_level: Literal["debug", "info", "notice", "warning", "error", "critical"] | None = None
    window_s: float = Field(default=30.0, gt=0, le=3600)
    as_: Literal["count", "rate"] = Field(default="rate", alias="as")

    @model_validator(mode="after")
    def _selects(self) -> LogSource:
        if not self.match and self.min_level is None:
            raise ValueError("a log source needs `match` or `min_level` (or both)")
        return self


SignalSource = Annotated[
    MetricSource | PromqlSource | HttpSource | ServiceSource | QueueSource | LogSource,
    Field(discriminator="kind"),
]


def workspace_signals(config: object) -> dict[str, SignalSource]:
    """The workspace's signal mapping; on the local target, the reference stack maps
    every catalogue signal the workspace leaves out, as it binds its own roles."""
    from pydantic import TypeAdapter

    signals: dict[str, SignalSource] = dict(getattr(config, "signals", {}))
    if getattr(config, "target", None) == "local":
        from pagerdrill.refstack.spec import REFERENCE_SIGNALS

        adapter: TypeAdapter[SignalSource] = TypeAdapter(SignalSource)
        for name, raw in REFERENCE_SIGNALS.items():
            signals.setdefault(name, adapter.validate_python(raw))
    return signals
