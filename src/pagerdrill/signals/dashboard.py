"""The drill's dashboard: what the Signals pane shows, the way a team's dashboard does.

Two parts. The stack's standard signals (api 5xx, client error share and p95, cache
hits and misses, the queue's waiting and delayed jobs, rt's accepted and refused
handshakes) are the same for every scenario: before the page they are all the pane
shows, so the quiet period says nothing of which fault is coming (a blind drill
depends on it). From the page on, the scenario's own watched signals (its probes, the
fields its alerts, recovery and hints read) come first, with the alert's rule.

The standard probes are sampled with the scenario's in one cycle (each /metrics URL
scraped once). Their names start with `stack.`, which no scenario probe can take, so
no expression reads them and they never clash with a scenario's own probes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pagerdrill.signals.expressions import PRIMARY
from pagerdrill.targets.base import Target

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


STANDARD_PROBES: dict[str, dict[str, Any]] = {
    "api_5xx": {
        "kind": "metric",
        "role": "api",
        "metric": "http_requests_total",
        "label_patterns": {"status": "5.."},
        "rate": True,
    },
    "traffic_errors": {"kind": "metric", "role": "traffic", "metric": "traffic_error_rate"},
    "traffic_p95": {
        "kind": "metric",
        "role": "traffic",
        "metric": "traffic_latency_seconds",
        "labels": {"quantile": "0.95"},
    },
    "cache_hits": {"kind": "metric", "role": "api", "metric": "cache_hits_total", "rate": True},
    "cache_misses": {"kind": "metric", "role": "api", "metric": "cache_misses_total", "rate": True},
    "queue": {"kind": "queue", "role": "queue"},
    "rt_accepted": {
        "kind": "metric",
        "role": "rt",
        "metric": "rt_handshakes_accepted_total",
        "rate": True,
    },
    "rt_refused": {
        "kind": "metric",
        "role": "rt",
        "metric": "rt_handshakes_rejected_total",
        "rate": True,
    },
}
"""The reference stack's standard signals, by the roles a workspace binds (a role the
workspace does not bind has no rows). Probe fields as in `scenario.ProbeSpec`."""

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


def standard_rows(bound: Iterable[str]) -> list[Row]:
    """The standard rows a workspace binding these roles shows: the same whatever the
    scenario."""
    roles = set(bound)
    return [r for r in STANDARD_ROWS if _role(r) in roles]


def _role(row: Row) -> str:
    return str(STANDARD_PROBES[row.probe.removeprefix(STACK)]["role"])


def standard_probes(rows: Iterable[Row], roles: Any, target: Target) -> list[Any]:
    """The probes behind `rows`, named `stack.NAME`. One the stack cannot serve (no URL
    or queue known for its role) is left out: its rows read "—"."""
    from pagerdrill.errors import PagerdrillError
    from pagerdrill.signals.probes import make_probe
    from pagerdrill.signals.specs import ProbeSpec

    out = []
    for name in dict.fromkeys(r.probe for r in rows):
        key = name.removeprefix(STACK)
        spec = ProbeSpec.model_validate({"name": key, **STANDARD_PROBES[key]})
        try:
            probe = make_probe(spec, roles, target)
        except (PagerdrillError, OSError, ValueError) as exc:
            log.info("standard signal %s left out: %s", name, exc)
            continue
        probe.name = name
        out.append(probe)
    return out


def _default_fields(kind: str, rate: bool) -> list[str]:
    """What a dashboard shows of a probe when nothing reads a field of it."""
    if kind == "metric":
        return ["rate" if rate else PRIMARY]
    if kind == "queue":
        return [PRIMARY, "delayed"]
    if kind == "http":
        return ["latency_ms"]
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


def _same(kind: str, field: str) -> str:
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
