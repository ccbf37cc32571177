"""What an engineer looks for in the logs of the reference stack's incidents, on the
real stack: the cold reads after a FLUSHDB are error spans of their own, a handshake
storm's refusals name the source (a line a second, not a line a handshake), and the
"errors only" view of a fresh stack holds none of Redis's start-up notices."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import redis

from helpers import wait_for
from pagerdrill.drill.engine import role_bindings
from pagerdrill.faults.storm import run_storm
from pagerdrill.signals.logs import error_spans, problems, tail_services
from pagerdrill.signals.probes import make_probe
from pagerdrill.signals.specs import ProbeSpec
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace import load_workspace

pytestmark = pytest.mark.stack

SOURCE = "203.0.113.7"


def resolver(stack) -> RoleResolver:
    return RoleResolver(role_bindings(load_workspace(stack.workspace.root)), stack)


def test_errors_only_on_a_fresh_stack_shows_no_redis_start_up_line(stack):
    lines = tail_services(stack, ["redis-cache"], tail=500)
    assert any("Ready to accept connections" in r.message for r in lines)
    assert any("Server initialized" in r.message for r in lines)
    assert problems(lines) == []


def test_after_a_flushdb_under_traffic_the_error_spans_name_the_cold_read(stack):
    def market_reads() -> bool:
        return any("GET /api/markets/" in r.message for r in tail_services(stack, ["api"]))

    wait_for(market_reads, 30, "traffic reading markets")
    flushed_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    client = redis.Redis.from_url(resolver(stack).redis_url("cache"))
    try:
        client.flushdb()
    finally:
        client.close()

    def cold_spans() -> list:
        spans = error_spans(tail_services(stack, ["api"], tail=500))
        return [s for s in spans if (s.last or "") >= flushed_at and "cold cache" in s.messages[0]]

    wait_for(lambda: bool(cold_spans()), 30, "a cold read's error span")
    span = cold_spans()[0]
    assert span.operation == "/api/markets/{market_id}" and span.services == ("api",)
    assert span.level == "warning" and "read from the slow path" in span.messages[0]


def test_a_storm_logs_each_source_once_a_second_with_a_trace(stack):
    url = resolver(stack).socketio_url("rt")
    result = run_storm(url, 200, source=SOURCE)
    assert result.rejected > 100

    def summaries() -> list:
        return [
            r
            for r in tail_services(stack, ["rt"], tail=500)
            if r.is_problem and r.fields.get("source") == SOURCE
        ]

    wait_for(lambda: bool(summaries()), 10, "rt's refusal line")
    lines = summaries()
    assert all(r.trace_id and f"from {SOURCE}" in r.message for r in lines)
    assert len(lines) <= math.ceil(result.duration_s) + 1  # not a line per handshake
    assert 1 <= sum(r.fields["refused"] for r in lines) <= result.rejected
    spans = error_spans(tail_services(stack, ["rt"], tail=500))
    assert any(SOURCE in s.messages[0] for s in spans)


def test_a_log_probe_counts_the_cold_reads_a_flushdb_makes_the_api_warn_about(stack):
    """The log-count source on the running reference stack, its api log read in the
    default format: the warnings of the last window, counted by their own times."""
    spec = ProbeSpec(name="warned", kind="log", role="api", min_level="warning", window_s=20)
    probe = make_probe(spec, resolver(stack), stack)
    assert probe.check(None) is None  # type: ignore[attr-defined]
    client = redis.Redis.from_url(resolver(stack).redis_url("cache"))
    try:
        client.flushdb()
    finally:
        client.close()
    wait_for(lambda: (probe.sample(None)["count"] or 0) > 0, 30, "the api's cold-read warnings")
    sample = probe.sample(None)
    assert sample["rate"] == round(sample["count"] / 20, 6)
