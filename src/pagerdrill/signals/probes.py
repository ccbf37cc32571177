"""Probes read the scenario's signals on a fixed cadence; alert rules and guards
turn the samples into events.

Kinds: BullMQ queue counts on a role's Redis; an HTTP endpoint's status and
latency; a Prometheus metric (summed over matching series) and its per-second
rate, scraped from the role's /metrics; a service's state; other queues on Redis
(signals/queues.py) and counts of log events (signals/logcount.py). One cycle
samples every probe concurrently and scrapes each /metrics URL once, however many
probes read it.
A probe that cannot read its signal reports None for its fields, never raises;
`check(cycle)` says why in one line (which source it tried, what came back), so a
drill never waits on a signal that cannot come.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pagerdrill.signals.expressions import PRIMARY, Expr, Samples
from pagerdrill.signals.specs import AlertRule, Guard, ProbeSpec
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace.config import LogFormat

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

    def check(self, cycle: Cycle) -> str | None:
        """One live read: None when the signal resolves, else one line saying which
        source was tried and what came back."""
        raise NotImplementedError

    def scrape_urls(self) -> dict[str, float]:
        """The /metrics URLs this probe reads, with their timeouts (scraped once a cycle)."""
        return {}


@dataclass
class Cycle:
    """Shared state of one sampling round: scrapes made once, reused by every probe."""

    http: httpx.Client
    now: float
    scrapes: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """Why a URL of `scrapes` could not be read (its entry there is None)."""


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

        role = spec.role or ""
        self.queue = roles.queue(role)
        self.prefix = f"bull:{self.queue}"
        self.url = roles.redis_url(role)
        self.client = redis.Redis.from_url(
            self.url,
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

    def check(self, cycle: Cycle) -> str | None:
        import redis

        keys = [f"{self.prefix}:{k}" for k in ("meta", "id", *(k for k, _ in self.KEYS))]
        where = f"BullMQ queue {self.queue} on {_redacted(self.url)}"
        try:
            found = self.client.exists(*keys)
        except (redis.RedisError, OSError) as exc:
            return f"{where}: Redis did not answer ({exc or type(exc).__name__})"
        if not found:
            return f"{where}: no such queue (none of its keys {self.prefix}:* exists)"
        return None

    def close(self) -> None:
        self.client.close()


def _redacted(url: str) -> str:
    """A Redis URL without its password, for a message."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class HttpProbe(Probe):
    """A request's status and latency. Ok is a status below 400, or, when the probe
    expects a status or a body, exactly that status with a body that matches: a wrong
    answer that comes back as a 200 is not ok."""

    def __init__(
        self,
        spec: ProbeSpec,
        roles: RoleResolver,
        expect_status: int | None = None,
        body_match: str | None = None,
    ):
        super().__init__(spec)
        role = spec.role or ""
        self.url = roles.base_url(role) + spec.path if spec.path else roles.health_url(role)
        self.expect_status = expect_status
        self.body = re.compile(body_match) if body_match else None

    def _request(self, cycle: Cycle) -> httpx.Response:
        return cycle.http.request(self.spec.method, self.url, timeout=self.spec.timeout_s)

    def _ok(self, response: httpx.Response) -> bool:
        if self.expect_status is None:
            return response.status_code < 400
        if response.status_code != self.expect_status:
            return False
        return self.body is None or self.body.search(response.text) is not None

    def sample(self, cycle: Cycle) -> Sample:
        import httpx

        started = time.perf_counter()
        try:
            response = self._request(cycle)
        except httpx.HTTPError:
            return {PRIMARY: 0, "status": 0, "ok": 0, "latency_ms": None}
        latency = round((time.perf_counter() - started) * 1000, 2)
        ok = int(self._ok(response))
        return {PRIMARY: ok, "status": response.status_code, "ok": ok, "latency_ms": latency}

    def check(self, cycle: Cycle) -> str | None:
        import httpx

        where = f"{self.spec.method} {self.url}"
        try:
            response = self._request(cycle)
        except httpx.HTTPError as exc:
            return f"{where}: no answer ({exc or type(exc).__name__})"
        expected = self.expect_status
        if expected is None and response.status_code >= 400:
            return f"{where} answered {response.status_code}"
        if expected is not None and response.status_code != expected:
            return f"{where} answered {response.status_code}, expected {expected}"
        if self.body is not None and self.body.search(response.text) is None:
            start = " ".join(response.text[:80].split())
            return (
                f"{where} answered {response.status_code} but its body does not match "
                f"/{self.body.pattern}/ (it begins: {start!r})"
            )
        return None


_SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


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
            # a labelled metric is declared before its first series: its names are
            # known, with no series yet (it reads 0)
            for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)):
                parsed.setdefault(family.name + suffix, [])
            for s in family.samples:
                parsed[s.name].append((s.labels, s.value))
    except httpx.HTTPStatusError as exc:
        parsed = None
        cycle.errors[url] = f"it answered {exc.response.status_code}"
    except httpx.HTTPError as exc:
        parsed = None
        cycle.errors[url] = f"no answer ({exc or type(exc).__name__})"
    except ValueError as exc:
        parsed = None
        cycle.errors[url] = f"not Prometheus text format ({exc})"
    cycle.scrapes[url] = parsed
    return parsed


class MetricProbe(Probe):
    """A metric summed over the series whose labels match; a scrape that works but has
    no such series reads 0 (a labelled counter appears on its first increment)."""

    def __init__(self, spec: ProbeSpec, roles: RoleResolver):
        super().__init__(spec)
        self.url = roles.metrics_url(spec.role or "")
        self.history: collections.deque[tuple[float, float]] = collections.deque()
        self.patterns = {k: re.compile(v) for k, v in spec.label_patterns.items()}

    def _wanted(self, labels: dict[str, str]) -> bool:
        if not self.spec.labels.items() <= labels.items():
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.patterns.items())

    def scrape_urls(self) -> dict[str, float]:
        return {self.url: self.spec.timeout_s}

    def selector(self, name: str | None = None) -> str:
        """The series this probe reads, written as PromQL does."""
        matchers = [f'{k}="{v}"' for k, v in self.spec.labels.items()]
        matchers += [f'{k}=~"{v}"' for k, v in self.spec.label_patterns.items()]
        return f"{name or self.spec.metric}{{{','.join(matchers)}}}"

    def check(self, cycle: Cycle) -> str | None:
        return series_problem(cycle, self.url, self.spec.timeout_s, self.spec.metric or "", self)

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


def series_problem(
    cycle: Cycle, url: str, timeout: float, name: str, probe: MetricProbe
) -> str | None:
    """Why the samples `name` with the probe's labels are not on `url`, else None."""
    scraped = _scrape(cycle, url, timeout)
    if scraped is None:
        return f"{url}: {cycle.errors.get(url, 'could not be read')}"
    if name not in scraped:
        others = len(scraped)
        return f"metric {probe.selector(name)} not on {url} (it has {others} other metrics)"
    series = scraped[name]
    # a series with the label names resolves even before the values it matches appear
    # (an error counter has no 5xx series until the first error)
    names = set(probe.spec.labels) | set(probe.spec.label_patterns)
    if series and not any(names <= labels.keys() for labels, _ in series):
        seen = sorted({",".join(f"{k}={v}" for k, v in sorted(la.items())) for la, _ in series})
        shown = "; ".join(f"{{{x}}}" for x in seen[:3]) + (" ..." if len(seen) > 3 else "")
        return (
            f"metric {probe.selector(name)}: {name} on {url} has no series with the labels "
            f"{', '.join(sorted(names))} ({len(seen)} series: {shown})"
        )
    return None


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
        self.service = roles.service(spec.role or "")
        self.target = target

    def check(self, cycle: Cycle) -> str | None:
        try:
            names = self.target.services()
            if self.service not in names:
                return f"service {self.service}: the stack has no such service ({', '.join(names)})"
            self.target.service_status(self.service)
        except Exception as exc:  # a target that cannot answer: say what it said
            return f"service {self.service}: its state could not be read ({exc})"
        return None

    def sample(self, cycle: Cycle) -> Sample:
        try:
            status = self.target.service_status(self.service)
        except Exception:  # a target that cannot answer: unknown, not a crash
            return {PRIMARY: None, "up": None, "running": None, "state": None}
        # a running service whose health nothing can tell is not known to be up
        unknown = status.state == "running" and status.health == "unknown"
        up = None if unknown else int(status.state == "running" and status.health == "healthy")
        return {
            PRIMARY: up,
            "up": up,
            "running": int(status.state == "running"),
            "state": status.state,
        }


def make_probe(
    spec: ProbeSpec,
    roles: RoleResolver,
    target: Target,
    logs: Mapping[str, LogFormat] | None = None,
) -> Probe:
    """`logs`: the workspace's log formats by service (a log probe reads its service's)."""
    if spec.signal is not None:
        from pagerdrill.signals.mapped import mapped_probe

        return mapped_probe(spec, roles.signal_source(spec.signal), roles, target, logs or {})
    if spec.kind == "queue":
        from pagerdrill.signals.queues import make_queue_probe, queue_type

        kind = queue_type(spec, roles)
        return QueueProbe(spec, roles) if kind == "bullmq" else make_queue_probe(spec, roles, kind)
    if spec.kind == "log":
        from pagerdrill.signals.logcount import LogCountProbe

        return LogCountProbe(spec, roles, target, logs or {})
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
        urls = {u: t for p in self.probes for u, t in p.scrape_urls().items()}
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
