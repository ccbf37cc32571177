"""Each scenario run headless with --autopilot on the real reference stack produces the
observable the seed describes, asserted from the journal; the alert fires and recovery
is verified by the probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drilling import RECOVERED, assert_stack_clean, autopilot_drill, cli, samples

pytestmark = pytest.mark.stack


def autopilot(stack, name: str, *params: str) -> tuple[dict, list[dict]]:
    root = stack.workspace.root
    summary, evs = autopilot_drill(root, name, *params)
    check_exports(root, summary)
    return summary, evs


def check_exports(root: Path, summary: dict) -> None:
    """The fresh journal exports in every format; the JSON one meets its schema."""
    import jsonschema

    from helpers import REPO

    schema = json.loads((REPO / "src/pagerdrill/reports/drill-export.schema.json").read_text())
    drill = summary["drill"]
    for fmt in ("slack", "markdown", "json", "html"):
        done = cli("drills", "export", drill, "--format", fmt, "-w", str(root))
        assert done.returncode == 0, done.stderr + done.stdout
        if fmt == "json":
            doc = json.loads(done.stdout)
            jsonschema.validate(doc, schema)
            assert doc["summary"]["recovery_verified"] is True
        elif fmt == "slack":
            assert "PAGE (" in done.stdout and "*Resolution*" in done.stdout


def assert_paged_and_recovered(summary: dict, evs: list[dict]) -> None:
    types = [e["type"] for e in evs]
    assert summary["outcome"] == "closed"
    assert summary["alert_fired"] and summary["paged"]
    assert summary["recovery_verified"]
    assert summary["hypothesis"]["correct"]
    # the order the seed's drill runs in, from the journal
    order = ["fault.undo", "fault.injected", "alert.firing", "page", "ack", "hypothesis",
             "recovery.verified", "drill.closed"]  # fmt: skip
    # (an alert may also fire while a fresh stack warms up, before the steady state)
    start = types.index("fault.undo")
    positions = [types.index(t, start if t != "fault.undo" else 0) for t in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))


def test_bullmq_backpressure_queue_grows_while_api_is_down_and_drains_after(stack):
    summary, evs = autopilot(stack, "bullmq-backpressure", "-p", "outage_s=120")
    assert_paged_and_recovered(summary, evs)
    before = samples(evs, "waiting", "value")[:3]
    during = samples(evs, "waiting", "value", after="fault.injected", until=RECOVERED)
    assert max(before) < 10
    assert max(during) > 50  # accumulated while the consumer was away
    assert during[-1] < 10  # and drained once it came back, as recovery saw it
    api_up = samples(evs, "api_up", "value", after="fault.injected")
    assert 0 in api_up and api_up[-1] == 1
    mitigation = next(e for e in evs if e["type"] == "mitigation")
    assert mitigation["mitigation"] == "start-consumer"
    assert_stack_clean(stack)


def test_redis_flush_makes_reads_slow_and_misses_jump_and_loses_waiting_jobs(stack):
    summary, evs = autopilot(stack, "redis-cache-flush")
    assert_paged_and_recovered(summary, evs)
    before_misses = samples(evs, "misses", "value")
    injected = next(e["seq"] for e in evs if e["type"] == "fault.injected")
    # the last samples before the fault (a fresh stack's cache warms up before that)
    pre = [e["values"] for e in evs if e["type"] == "probe.sample" and e["seq"] < injected][-3:]
    post = [e["values"] for e in evs if e["type"] == "probe.sample" and e["seq"] > injected]
    assert max(v["misses"]["value"] or 0 for v in pre) < 0.5
    assert max(v["misses"]["value"] or 0 for v in post) > 0.5
    assert before_misses  # sampled throughout
    # the uncached path: the probe's market (no one else reads it) was cached before the
    # flush and takes the slow path (SLOW_PATH_MS=150) on the first read after it
    assert max(v["read"]["value"] or 0 for v in pre) < 100
    assert (post[0]["read"]["value"] or 0) >= 140
    # delayed settlements waited in the same Redis: FLUSHDB lost them
    delayed_before = pre[-1]["delayed"]["value"]
    delayed_after = post[0]["delayed"]["value"]
    assert delayed_before >= 5
    assert delayed_after < delayed_before / 2
    flush = next(e for e in evs if e["type"] == "fault.undo")
    assert flush["undo"]["irreversible"]
    assert_stack_clean(stack)


def test_ws_storm_makes_rt_reject_handshakes_until_the_source_is_blocked(stack):
    # recovery must hold 6 s, not 2: the block restarts rt (3-4 s on a busy machine),
    # and the storm's next wave, refused as blocked, can come 2 s after that; with 2 s
    # the drill could close before a sample saw it
    summary, evs = autopilot(stack, "ws-handshake-storm", "-p", "recovery_s=6")
    assert_paged_and_recovered(summary, evs)
    throttled = samples(evs, "throttled", "value", after="fault.injected")
    assert max(t or 0 for t in throttled) > 5
    blocked = samples(evs, "blocked", "value", after="mitigation")
    assert max(b or 0 for b in blocked) > 0  # the storm went on, refused as blocked
    waves = [e for e in evs if e["type"] == "fault.progress"]
    assert waves and all(w["wave"]["attempted"] <= 200 for w in waves)
    mitigation = next(e for e in evs if e["type"] == "mitigation")
    assert mitigation["detail"]["values"] == {"BLOCKED_SOURCES": "203.0.113.7"}
    # the block list was a drill-time change: put back at close
    assert any(e["type"] == "mitigation.reverted" for e in evs)
    assert_stack_clean(stack)


def test_bad_admin_password_makes_auth_failures_climb_and_revert_brings_them_to_zero(stack):
    summary, evs = autopilot(stack, "signin-failure-spike")
    assert_paged_and_recovered(summary, evs)
    pre = samples(evs, "auth", "value")[:3]
    during = samples(evs, "auth", "value", after="fault.injected")
    assert all((r or 0) == 0 for r in pre)
    assert max(r or 0 for r in during) > 0.2
    after_revert = samples(evs, "auth", "value", after="fault.reverted")
    assert after_revert[-1] == 0
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"]["previous"] == {"ADMIN_DEFAULT_PASSWORD": None}
    assert stack.overrides("api") == {}
    assert_stack_clean(stack)


def test_injected_500s_show_in_the_error_rate_and_stop_when_the_flag_is_off(stack):
    summary, evs = autopilot(stack, "api-500-injection")
    assert_paged_and_recovered(summary, evs)
    errors = samples(evs, "errors", "value", after="fault.injected")
    assert max(e or 0 for e in errors) > 0.1
    assert samples(evs, "errors", "value", after="recovery.verified")[-1:] in ([], [0.0])
    from drilling import api_faults

    assert api_faults(stack) == {}
    assert_stack_clean(stack)
    # the journal itself: one JSON object per line, versioned, in sequence
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    assert {e["v"] for e in evs} == {1}
    started = evs[0]
    assert started["type"] == "drill.started"
    assert started["scenario"]["name"] == "api-500-injection"
    assert "faults:" in started["scenario"]["text"]  # a copy of the scenario itself
    assert started["tool"]["name"] == "pagerdrill"
