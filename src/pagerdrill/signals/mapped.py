"""Probes for catalogue signals, built from the source the workspace maps each to.

A signal probe's one field is its value, in the catalogue's unit: a counter's rate, a
gauge, a histogram's quantile, a PromQL query's result, an HTTP check's answer, a
service's state, a queue's count (BullMQ, a list, a stream, Celery, RQ) or a count of
log entries.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pagerdrill.errors import BadInputError
from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.signals.histogram import histogram_quantile, parse_le
from pagerdrill.signals.probes import (
    Cycle,
    HttpProbe,
    MetricProbe,
    Probe,
    Sample,
    ServiceProbe,
    _increase,
    _scrape,
    series_problem,
)
from pagerdrill.signals.specs import (
    HttpSource,
    LogSource,
    MetricSource,
    ProbeSpec,
    PromqlSource,
    QueueSource,
    ServiceSource,
    SignalSource,
)
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver

if TYPE_CHECKING:
    from pagerdrill.workspace.config import LogFormat


def _finite(value: Any) -> Any:
    """NaN (a quantile of nothing) is no value, as a missing series is."""
    return None if isinstance(value, float) and math.isnan(value) else value


class SignalProbe(Probe):
    """One field of a probe of the source's kind, as the signal's value."""

    def __init__(self, spec: ProbeSpec, inner: Probe, field: str, source: SignalSource):
        super().__init__(spec)
        self.inner = inner
        self.field = field
        self.source = source

    def sample(self, cycle: Cycle) -> Sample:
        return {PRIMARY: _finite(self.inner.sample(cycle).get(self.field))}

    def check(self, cycle: Cycle) -> str | None:
        return self.inner.check(cycle)

    def scrape_urls(self) -> dict[str, float]:
        return self.inner.scrape_urls()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class HistogramProbe(Probe):
    """`histogram_quantile(q, sum by (le) (increase(<metric>_bucket{...}[window])))`:
    each cycle the matching `_bucket` series are summed per `le`; the quantile is taken
    of each bucket's increase over the window (a reset counted from 0)."""

    def __init__(self, spec: ProbeSpec, source: MetricSource, roles: RoleResolver):
        super().__init__(spec)
        self.source = source
        self.bucket = f"{source.metric}_bucket"
        self.series = MetricProbe(
            ProbeSpec(
                name=spec.name,
                kind="metric",
                role=source.role,
                metric=self.bucket,
                labels=source.labels,
                label_patterns=source.label_patterns,
                timeout_s=source.timeout_s,
            ),
            roles,
        )
        self.url = self.series.url
        self.history: collections.deque[tuple[float, dict[float, float]]] = collections.deque()

    def scrape_urls(self) -> dict[str, float]:
        return self.series.scrape_urls()

    def _buckets(self, cycle: Cycle) -> dict[float, float] | None:
        scraped = _scrape(cycle, self.url, self.source.timeout_s)
        if scraped is None:
            return None
        out: dict[float, float] = {}
        for labels, value in scraped.get(self.bucket, []):
            if "le" in labels and self.series._wanted(labels):
                le = parse_le(labels["le"])
                out[le] = out.get(le, 0.0) + value
        return out or None

    def sample(self, cycle: Cycle) -> Sample:
        now = self._buckets(cycle)
        if now is None:
            return {PRIMARY: None}
        self.history.append((cycle.now, now))
        horizon = cycle.now - self.source.window_s
        while len(self.history) > 2 and self.history[1][0] <= horizon:
            self.history.popleft()
        if len(self.history) < 2:
            return {PRIMARY: None}
        increases = [
            (le, _increase((t, counts.get(le, 0.0)) for t, counts in self.history)) for le in now
        ]
        return {PRIMARY: _finite(histogram_quantile(self.source.q, increases))}

    def check(self, cycle: Cycle) -> str | None:
        problem = series_problem(cycle, self.url, self.source.timeout_s, self.bucket, self.series)
        return f"histogram {self.source.metric}: {problem}" if problem else None


NO_SERIES = "the query returned no series"


class PromqlProbe(Probe):
    """An instant query to the Prometheus HTTP API; the result's series summed."""

    def __init__(self, spec: ProbeSpec, source: PromqlSource, roles: RoleResolver):
        super().__init__(spec)
        self.source = source
        self.url = f"{roles.base_url(source.role)}/api/v1/query"

    def _query(self, cycle: Cycle) -> tuple[float | None, str | None]:
        """(the value, None) or (None, why there is none)."""
        import httpx

        where = f"PromQL `{self.source.query}` on {self.url}"
        try:
            response = cycle.http.get(
                self.url, params={"query": self.source.query}, timeout=self.source.timeout_s
            )
            body = response.json()
        except httpx.HTTPError as exc:
            return None, f"{where}: no answer ({exc or type(exc).__name__})"
        except ValueError:
            return None, f"{where}: answered {response.status_code} with no JSON"
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            return None, f"{where}: answered {response.status_code}, error: {error or body!r}"
        data = body.get("data") or {}
        result = data.get("result")
        try:
            if data.get("resultType") == "scalar" and isinstance(result, list):
                return _finite(float(result[1])), None
            if not result:
                return None, f"{where}: {NO_SERIES}"
            return _finite(sum(float(r["value"][1]) for r in result)), None
        except (TypeError, KeyError, IndexError, ValueError):
            return None, f"{where}: a result that is not an instant vector ({result!r:.80})"

    def sample(self, cycle: Cycle) -> Sample:
        return {PRIMARY: self._query(cycle)[0]}

    def check(self, cycle: Cycle) -> str | None:
        value, why = self._query(cycle)
        if value is None and why is not None and why.endswith(NO_SERIES):
            ago = self._started_ago(cycle)
            if ago is not None and ago < JUST_STARTED_S:
                why += (
                    f" (Prometheus started {ago:.0f} s ago: the series, or a rate's second "
                    "sample, may need another scrape; check again shortly)"
                )
        return why

    def _started_ago(self, cycle: Cycle) -> float | None:
        """Seconds since Prometheus started (its runtime info), None when it won't say."""
        from datetime import datetime

        info = self.url.removesuffix("/query") + "/status/runtimeinfo"
        try:
            body = cycle.http.get(info, timeout=self.source.timeout_s).json()
            started = datetime.fromisoformat(body["data"]["startTime"].replace("Z", "+00:00"))
        except Exception:  # an older or a proxied Prometheus: the query's answer stands
            return None
        return max(0.0, time.time() - started.timestamp())


JUST_STARTED_S = 120.0
"""A Prometheus up for less than this may not have scraped what a query needs yet."""


def _spec(spec: ProbeSpec, **fields: Any) -> ProbeSpec:
    return ProbeSpec.model_validate({"name": spec.name, **fields})


def mapped_probe(
    spec: ProbeSpec,
    source: SignalSource,
    roles: RoleResolver,
    target: Target,
    logs: Mapping[str, LogFormat] | None = None,
) -> Probe:
    """The probe that reads `spec.signal` from the workspace's `source`."""
    if isinstance(source, MetricSource):
        if source.as_ == "quantile":
            return HistogramProbe(spec, source, roles)
        inner = MetricProbe(
            _spec(
                spec,
                kind="metric",
                role=source.role,
                metric=source.metric,
                labels=source.labels,
                label_patterns=source.label_patterns,
                rate=source.as_ == "rate",
                rate_window_s=source.window_s,
                timeout_s=source.timeout_s,
            ),
            roles,
        )
        return SignalProbe(spec, inner, "rate" if source.as_ == "rate" else PRIMARY, source)
    if isinstance(source, PromqlSource):
        return PromqlProbe(spec, source, roles)
    if isinstance(source, HttpSource):
        http = HttpProbe(
            _spec(
                spec,
                kind="http",
                role=source.role,
                path=source.path,
                method=source.method,
                timeout_s=source.timeout_s,
            ),
            roles,
            expect_status=source.expect_status,
            body_match=source.body_match,
        )
        return SignalProbe(spec, http, source.as_, source)
    if isinstance(source, ServiceSource):
        service = ServiceProbe(_spec(spec, kind="service", role=source.role), roles, target)
        return SignalProbe(spec, service, "up", source)
    if isinstance(source, QueueSource):
        from pagerdrill.signals.probes import make_probe

        where = {k: v for k in ("queue_type", "key", "group") if (v := getattr(source, k))}
        queue = make_probe(_spec(spec, kind="queue", role=source.role, **where), roles, target)
        return SignalProbe(spec, queue, source.field, source)
    if isinstance(source, LogSource):
        from pagerdrill.signals.logcount import LogCountProbe

        log_spec = _spec(
            spec,
            kind="log",
            role=source.role,
            match=source.match,
            min_level=source.min_level,
            window_s=source.window_s,
        )
        counts = LogCountProbe(log_spec, roles, target, logs or {})
        return SignalProbe(spec, counts, "count" if source.as_ == "count" else "rate", source)
    raise BadInputError(
        f"signal {spec.signal}: `kind: {source.kind}` sources are not readable by this "
        "version of pagerdrill"
    )


def describe_probe(spec: ProbeSpec, roles: RoleResolver) -> str:
    """One line for a dry run: what the probe reads and on which service."""
    if spec.signal is None:
        return f"{spec.name}: {spec.kind} on {roles.service(spec.role or '')}"
    source = roles.signal_source(spec.signal)
    what = {
        "metric": lambda s: f"metric {s.metric} ({s.as_})",
        "promql": lambda s: f"PromQL `{s.query}`",
        "http": lambda s: f"{s.method} {s.path} ({s.as_})",
    }.get(source.kind, lambda s: source.kind)(source)
    return f"{spec.name}: signal {spec.signal}, {what} on {roles.service(source.role)}"
