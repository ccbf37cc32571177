"""The drill's dashboard: what the Signals pane shows, the way a team's dashboard does.

Two parts. The stack's standard signals (api 5xx, client error share and p95, cache
hits and misses, the queue's waiting and delayed jobs, rt's accepted and refused
handshakes) are the same for every scenario: before the page they are all the pane
shows, so the quiet period says nothing of which fault is coming (a blind drill
depends on it). From the page on, the scenario's own watched signals (its probes, the
fields its alerts, recovery and hints read) come first, with the alert's rule.

Each standard row is a catalogue signal read through the workspace's mapping, and only
a signal the workspace maps (to a role it binds) has a row. The standard probes are
sampled with the scenario's in one cycle (each /metrics URL scraped once). Their names
start with `stack.`, which no scenario probe can take, so no expression reads them and
they never clash with a scenario's own probes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pagerdrill.errors import PagerdrillError
from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.signals.probes import Cycle, Probe, Sample, make_probe
from pagerdrill.signals.specs import ProbeSpec
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver

log = logging.getLogger("pagerdrill.signals.dashboard")

STACK = "stack."
"""Prefix of the standard probes' names (not a valid scenario probe name)."""


@dataclass(frozen=True)
class Row:
    """One line of the Signals pane: a probe's field under a label."""

    probe: str
    field: str
    label: str
    scale: float = 1.0
    """What the sample is multiplied by to read in the label's unit (s -> ms, share -> %)."""
    rule: str | None = None
    """The alert rule that reads it (shown under it)."""

    @property
    def ref(self) -> str:
        return self.probe if self.field == PRIMARY else f"{self.probe}.{self.field}"


STANDARD_PROBES: dict[str, dict[str, str]] = {
    "api_5xx": {"rate": "api.error_rate"},
    "traffic_errors": {PRIMARY: "traffic.error_rate"},
    "traffic_p95": {PRIMARY: "traffic.latency_p95"},
    "cache_hits": {"rate": "cache.hit_rate"},
    "cache_misses": {"rate": "cache.miss_rate"},
    "queue": {"waiting": "queue.waiting", "delayed": "queue.delayed"},
    "rt_accepted": {"rate": "rt.handshake_rate"},
    "rt_refused": {"rate": "rt.refused_rate"},
}
"""The standard probes' fields, each a catalogue signal read through the workspace's
mapping (a signal it does not map, or maps to a role it does not bind, has no row: a
stack that has no such thing shows no zero for it)."""

STANDARD_ROWS: tuple[Row, ...] = (
    Row(f"{STACK}api_5xx", "rate", "api 5xx/s"),
    Row(f"{STACK}traffic_errors", PRIMARY, "client err %", scale=100.0),
    Row(f"{STACK}traffic_p95", PRIMARY, "client p95 ms", scale=1000.0),
    Row(f"{STACK}cache_hits", "rate", "cache hits/s"),
    Row(f"{STACK}cache_misses", "rate", "cache miss/s"),
    Row(f"{STACK}queue", "waiting", "queue waiting"),
    Row(f"{STACK}queue", "delayed", "queue delayed"),
    Row(f"{STACK}rt_accepted", "rate", "rt accepted/s"),
    Row(f"{STACK}rt_refused", "rate", "rt refused/s"),
)

STANDARD_REFS = frozenset(row.ref for row in STANDARD_ROWS)
"""What a hint may name of the standard set (`stack.queue.delayed` ...)."""


def standard_rows(signals: Mapping[str, Any], bound: Iterable[str]) -> list[Row]:
    """The standard rows of a workspace mapping `signals` and binding roles `bound`: the
    same whatever the scenario."""
    roles = set(bound)

    def shown(row: Row) -> bool:
        source = signals.get(_signal(row))
        return source is not None and getattr(source, "role", None) in roles

    return [r for r in STANDARD_ROWS if shown(r)]


def _signal(row: Row) -> str:
    return STANDARD_PROBES[row.probe.removeprefix(STACK)][row.field]


class StandardProbe(Probe):
    """A standard probe: each field the value of one catalogue signal's probe."""

    def __init__(self, spec: ProbeSpec, fields: Mapping[str, Probe], first: str):
        super().__init__(spec)
        self.fields = dict(fields)
        self.first = first

    def sample(self, cycle: Cycle) -> Sample:
        out = {field: p.sample(cycle).get(PRIMARY) for field, p in self.fields.items()}
        # the value is the probe's first field (a queue's waiting count), never another
        # field standing in for one that could not be built
        out.setdefault(PRIMARY, out.get(self.first))
        return out

    def check(self, cycle: Cycle) -> str | None:
        return next(filter(None, (p.check(cycle) for p in self.fields.values())), None)

    def scrape_urls(self) -> dict[str, float]:
        return {url: t for p in self.fields.values() for url, t in p.scrape_urls().items()}

    def close(self) -> None:
        for probe in self.fields.values():
            close = getattr(probe, "close", None)
            if close is not None:
                close()


def standard_probes(
    rows: Iterable[Row], roles: RoleResolver, target: Target, logs: Mapping[str, Any]
) -> list[Probe]:
    """The probes behind `rows`, named `stack.NAME`. A field the stack cannot serve (no
    URL or queue known for its role) is left out: its row reads "—"."""
    fields: dict[str, dict[str, Probe]] = {}
    for row in rows:
        signal = _signal(row)
        key = row.probe.removeprefix(STACK)
        spec = ProbeSpec.model_validate({"name": key, "signal": signal})
        try:
            probe = make_probe(spec, roles, target, logs)
        except (PagerdrillError, OSError, ValueError) as exc:
            log.info("standard signal %s (%s) left out: %s", row.ref, signal, exc)
            continue
        fields.setdefault(row.probe, {})[row.field] = probe
    out: list[Probe] = []
    for name, probes in fields.items():
        first = next(iter(STANDARD_PROBES[name.removeprefix(STACK)]))
        probe = StandardProbe(next(iter(probes.values())).spec, probes, first)
        probe.name = name
        out.append(probe)
    return out


def _default_fields(kind: str | None, rate: bool) -> list[str]:
    """What a dashboard shows of a probe when nothing reads a field of it (a signal
    probe, kind None, has its value only)."""
    if kind is None:
        return [PRIMARY]
    if kind == "metric":
        return ["rate" if rate else PRIMARY]
    if kind == "queue":
        return [PRIMARY, "delayed"]
    if kind == "http":
        return ["latency_ms"]
    if kind == "log":
        return [PRIMARY]
    return ["up"]


def scenario_rows(
    probes: Iterable[Any],
    alerts: Iterable[tuple[str, Iterable[tuple[str, str]]]],
    reads: Iterable[tuple[str, str]],
) -> list[Row]:
    """The scenario's watched signals: the fields each alert reads (with its rule),
    then those the hints and recovery read (`reads`, in order), then each probe's own."""
    kinds = {p.name: p for p in probes}
    out: list[Row] = []
    seen: set[tuple[str, str]] = set()

    def add(probe: str, field: str, rule: str | None = None) -> None:
        spec = kinds.get(probe)
        if spec is None:
            return
        key = (probe, _same(spec.kind, field))
        if key in seen:
            return
        seen.add(key)
        out.append(Row(probe, field, "", rule=rule))

    for rule, refs in alerts:
        for probe, field in sorted(refs):
            add(probe, field, rule)
    for probe, field in reads:
        add(probe, field)
    for spec in kinds.values():
        for field in _default_fields(spec.kind, spec.rate):
            add(spec.name, field)
    return [Row(r.probe, r.field, r.ref, rule=r.rule) for r in out]


def _same(kind: str | None, field: str) -> str:
    """A queue's primary value is its waiting count: one row for both."""
    return "waiting" if kind == "queue" and field == PRIMARY else field


PANES = ("logs", "spans", "runbooks")
"""What a hint may point at besides signals: the drill's panes, each one key away."""


def hint_refs(hints: Iterable[Any]) -> list[tuple[str, str]]:
    """(probe, field) of the scenario's own signals the hints name, in order."""
    out = []
    for hint in hints:
        for name in hint.shows:
            if name.startswith(STACK) or name in PANES:
                continue
            probe, _, field = name.partition(".")
            out.append((probe, field or PRIMARY))
    return out


def value_of(samples: Mapping[str, Any], row: Row) -> Any:
    return (samples.get(row.probe) or {}).get(row.field)
