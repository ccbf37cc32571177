"""Probes read the scenario's signals on a fixed cadence; alert rules and guards
turn the samples into events.

Kinds: BullMQ queue counts on a role's Redis; an HTTP endpoint's status and
latency; a Prometheus metric (summed over matching series) and its per-second
rate, scraped from the role's /metrics; a service's state. One cycle samples every
probe concurrently and scrapes each /metrics URL once, however many probes read it.
A probe that cannot read its signal reports None for its fields, never raises.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pagerdrill.signals.expressions import PRIMARY, Expr, Samples
from pagerdrill.signals.specs import AlertRule, Guard, ProbeSpec
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver

if TYPE_CHECKING:
    import httpx

# httpx is imported where it is used: with click installed, `import httpx` loads its
# command line and rich with it, which no core module may pull in.

Sample = dict[str, Any]
Clock = Callable[[], float]


class Probe:
    def __init__(self, spec: ProbeSpec):
        self.spec = spec
        self.name = spec.name

    def sample(self, cycle: Cycle) -> Sample:
        raise NotImplementedError


@dataclass
class Cycle:
    """Shared state of one sampling round: scrapes made once, reused by every probe."""

    http: httpx.Client
    now: float
    scrapes: dict[str, Any] = field(default_factory=dict)


class QueueProbe(Probe):
    """BullMQ's own keys (bull:<queue>:wait, :active, ...), read in one round trip."""

    KEYS = (
        ("wait", "llen"),
        ("paused", "llen"),
        ("active", "llen"),
        ("prioritized", "zcard"),
        ("delayed", "zcard"),
        ("failed", "zcard"),
        ("completed", "zcard"),
    )

    def __init__(self, spec: ProbeSpec, roles: RoleResolver):
        super().__init__(spec)
        import redis

        self.prefix = f"bull:{roles.queue(spec.role)}"
        self.client = redis.Redis.from_url(
            roles.redis_url(spec.role),
            socket_timeout=spec.timeout_s,
            socket_connect_timeout=spec.timeout_s,
        )

    def sample(self, cycle: Cycle) -> Sample:
        import redis

        try:
            pipe = self.client.pipeline(transaction=False)
            for key, op in self.KEYS:
                getattr(pipe, op)(f"{self.prefix}:{key}")
            counts = dict(zip([k for k, _ in self.KEYS], pipe.execute(), strict=True))
        except (redis.RedisError, OSError):
            return dict.fromkeys(
                (
                    PRIMARY,
                    "waiting",
                    "active",
                    "delayed",
                    "failed",
                    "completed",
                    "prioritized",
                    "paused",
                )
            )
        waiting = counts["wait"] + counts["paused"] + counts["prioritized"]
        return {
            PRIMARY: waiting,
            "waiting": waiting,
            "active": counts["active"],
            "delayed": counts["delayed"],
            "failed": counts["failed"],
            "completed": counts["completed"],
            "prioritized": counts["prioritized"],
            "paused": counts["paused"],
        }

    def close(self) -> None:
        self.client.close()


class HttpProbe(Probe):
    def __init__(self, spec: ProbeSpec, roles: RoleResolver):
        super().__init__(spec)
        self.url = (
            roles.base_url(spec.role) + spec.path if spec.path else roles.health_url(spec.role)
        )

    def sample(self, cycle: Cycle) -> Sample:
        import httpx

        started = time.perf_counter()
        try:
            response = cycle.http.request(self.spec.method, self.url, timeout=self.spec.timeout_s)
        except httpx.HTTPError:
            return {PRIMARY: 0, "status": 0, "ok": 0, "latency_ms": None}
        latency = round((time.perf_counter() - started) * 1000, 2)
        ok = int(response.status_code < 400)
        return {PRIMARY: ok, "status": response.status_code, "ok": ok, "latency_ms": latency}


def _scrape(cycle: Cycle, url: str, timeout: float) -> dict[str, list] | None:
    """Samples by name from one /metrics URL, fetched once per cycle."""
    if url in cycle.scrapes:
        return cycle.scrapes[url]
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    parsed: dict[str, list] | None
    try:
        response = cycle.http.get(url, timeout=timeout)
        response.raise_for_status()
        parsed = collections.defaultdict(list)
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                parsed[s.name].append((s.labels, s.value))
    except (httpx.HTTPError, ValueError):
        parsed = None
    cycle.scrapes[url] = parsed
    return parsed


class MetricProbe(Probe):
    """A metric summed over the series whose labels match; a scrape that works but has
    no such series reads 0 (a labelled counter appears on its first increment)."""

    def __init__(self, spec: ProbeSpec, roles: RoleResolver):
        super().__init__(spec)
        self.url = roles.metrics_url(spec.role)
        self.history: collections.deque[tuple[float, float]] = collections.deque()
        self.patterns = {k: re.compile(v) for k, v in spec.label_patterns.items()}

    def _wanted(self, labels: dict[str, str]) -> bool:
        if not self.spec.labels.items() <= labels.items():
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.patterns.items())

    def _value(self, cycle: Cycle) -> float | None:
        scraped = _scrape(cycle, self.url, self.spec.timeout_s)
        if scraped is None:
            return None
        return float(
            sum(v for labels, v in scraped.get(self.spec.metric or "", []) if self._wanted(labels))
        )

    def sample(self, cycle: Cycle) -> Sample:
        value = self._value(cycle)
        out: Sample = {PRIMARY: value, "rate": None}
        if not self.spec.rate:
            return out
        if value is None:
            return out
        self.history.append((cycle.now, value))
        horizon = cycle.now - self.spec.rate_window_s
        while len(self.history) > 2 and self.history[1][0] <= horizon:
            self.history.popleft()
        if len(self.history) >= 2:
            out["rate"] = round(_increase(self.history) / (cycle.now - self.history[0][0]), 6)
        return out


def _increase(points: Iterable[tuple[float, float]]) -> float:
    """Counter increase over the points, a reset (a restarted service) counted from 0."""
    total, previous = 0.0, None
    for _, value in points:
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


class ServiceProbe(Probe):
    def __init__(self, spec: ProbeSpec, roles: RoleResolver, target: Target):
        super().__init__(spec)
        self.service = roles.service(spec.role)
        self.target = target

    def sample(self, cycle: Cycle) -> Sample:
        try:
            status = self.target.service_status(self.service)
        except Exception:  # a target that cannot answer: unknown, not a crash
            return {PRIMARY: None, "up": None, "running": None, "state": None}
        up = int(status.state == "running" and status.health == "healthy")
        return {
            PRIMARY: up,
            "up": up,
            "running": int(status.state == "running"),
            "state": status.state,
        }


def make_probe(spec: ProbeSpec, roles: RoleResolver, target: Target) -> Probe:
    if spec.kind == "queue":
        return QueueProbe(spec, roles)
    if spec.kind == "http":
        return HttpProbe(spec, roles)
    if spec.kind == "metric":
        return MetricProbe(spec, roles)
    return ServiceProbe(spec, roles, target)


class ProbeSet:
    """All probes of a drill, sampled together; `sample()` is one cycle."""

    def __init__(self, probes: list[Probe], clock: Clock = time.monotonic, workers: int = 8):
        self.probes = probes
        self.clock = clock
        import httpx

        self.http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=16))
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(probes))))

    def sample(self) -> dict[str, Sample]:
        cycle = Cycle(http=self.http, now=self.clock())
        # metric probes of one URL share a scrape: fetch each URL once, first
        urls = {p.url: p.spec.timeout_s for p in self.probes if isinstance(p, MetricProbe)}
        list(self.pool.map(lambda u: _scrape(cycle, u, urls[u]), urls))
        results = self.pool.map(lambda p: (p.name, p.sample(cycle)), self.probes)
        return dict(results)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()
        for probe in self.probes:
            close = getattr(probe, "close", None)
            if close is not None:
                close()


# --------------------------------------------------------------------- rules


@dataclass
class RuleState:
    """A rule is pending from the first sample it holds, firing once it has held `for_s`."""

    name: str
    expr: Expr
    for_s: float
    since: float | None = None
    firing: bool = False
    fired_at: float | None = None
    """When it last started firing."""

    def update(self, samples: Samples, now: float) -> str | None:
        """'firing' or 'resolved' when the state changes, else None."""
        if self.expr.holds(samples):
            if self.since is None:
                self.since = now
            if not self.firing and now - self.since >= self.for_s:
                self.firing = True
                self.fired_at = now
                return "firing"
        else:
            self.since = None
            if self.firing:
                self.firing = False
                return "resolved"
        return None


def alert_states(rules: list[AlertRule], compile_: Callable[[str], Expr]) -> list[RuleState]:
    return [RuleState(r.name, compile_(r.expr), r.for_s) for r in rules]


def guard_states(guards: list[Guard], compile_: Callable[[str], Expr]) -> list[RuleState]:
    return [RuleState(g.name, compile_(g.expr), g.for_s) for g in guards]
