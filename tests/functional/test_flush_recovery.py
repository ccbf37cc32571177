"""`redis-cache-flush` on the real reference stack: the cache refills by itself, the lost
settlement jobs do not. Recovery is verified only once the producer's ledger has every
job it added back in the queue or processed, whoever replays them (the mitigation, or
the engineer from a shell); a replay twice adds nothing; a summary says when the symptom
faded on its own; and the steady state waits for a cold cache's warm-up alert to clear."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest
import redis

from drilling import (
    FAST,
    WAIT_SCRIPT,
    autopilot_drill,
    cli,
    events,
    journals,
    kill_and_recover,
    newest_journal,
    scenario,
    start_cli,
    wait_for_event,
    write_script,
)
from helpers import metric, wait_for
from pagerdrill.journal import read_journal
from pagerdrill.targets.local import LocalTarget

QUEUE = "bet_settled_queue"


def game_url(stack: LocalTarget) -> str:
    return stack.service_endpoints("game")["http"]


def unaccounted(stack: LocalTarget) -> float:
    return metric(f"{game_url(stack)}/metrics", "game_jobs_unaccounted", queue=QUEUE)


def replay(stack: LocalTarget) -> dict:
    """The runbook's replay, from the engineer's own shell."""
    response = httpx.post(f"{game_url(stack)}/admin/replay-lost-jobs", timeout=10)
    response.raise_for_status()
    return response.json()


def redis_client(stack: LocalTarget) -> redis.Redis:
    return redis.Redis.from_url(stack.service_endpoints("redis-cache")["redis"])


def in_queue(stack: LocalTarget, job_ids: list[str]) -> list[str]:
    """The ids among `job_ids` whose BullMQ job is in Redis."""
    client = redis_client(stack)
    try:
        return [j for j in job_ids if client.exists(f"bull:{QUEUE}:{j}")]
    finally:
        client.close()


def exports(root: Path, drill: str) -> dict[str, str]:
    out = {}
    for fmt in ("slack", "markdown", "json", "html"):
        done = cli("drills", "export", drill, "--format", fmt, "-w", str(root))
        assert done.returncode == 0, done.stderr + done.stdout
        out[fmt] = done.stdout
    return out


@pytest.mark.stack
def test_a_flush_drill_where_the_engineer_only_acknowledges_does_not_verify_recovery(stack):
    root = stack.workspace.root
    script = write_script(
        root / "ack-only.json", [{"do": "ack"}, {"after": 35, "do": "resolve", "text": "gave up"}]
    )
    done = cli(
        "run", scenario("redis-cache-flush"), "--headless", "--engineer", "ci", "--json",
        "--script", str(script), *FAST, "-w", str(root),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr + done.stdout
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "closed"
    assert not summary["recovery_verified"]
    # the cache refilled and the page's alert resolved with nothing done ...
    assert summary["symptom_faded_s"] is not None
    assert summary["time_to_mitigate_s"] is None
    evs = events(Path(summary["journal"]))
    lost = [e["values"]["lost"]["value"] for e in evs if e["type"] == "probe.sample"]
    # ... but the settlements FLUSHDB deleted stayed lost to the end
    assert max(lost) >= 5 and lost[-1] >= 5
    faded = f"the alert resolved by itself at T+00:{int(summary['symptom_faded_s']):02d}"
    for fmt, text in exports(root, summary["drill"]).items():
        if fmt == "json":
            assert json.loads(text)["summary"]["symptom_faded_s"] == summary["symptom_faded_s"]
        else:
            assert faded in text and "before any mitigation" in text, fmt
    # the fault's repair replayed them when the drill closed, after recovery was judged
    # (not verified: the repair is no mitigation of the engineer's)
    reverted = next(e for e in evs if e["type"] == "fault.reverted")
    assert reverted["by"] == "close" and reverted["detail"]["repair"]["replayed"] >= 5
    assert unaccounted(stack) == 0
    assert replay(stack)["replayed"] == 0


@pytest.mark.stack
def test_the_replay_mitigation_closes_the_drill_and_puts_the_lost_jobs_back_in_redis(stack):
    summary, evs = autopilot_drill(stack.workspace.root, "redis-cache-flush")
    assert summary["outcome"] == "closed" and summary["recovery_verified"]
    mitigation = next(e for e in evs if e["type"] == "mitigation")
    assert mitigation["mitigation"] == "replay-lost-jobs"
    job_ids = mitigation["detail"]["job_ids"]
    assert mitigation["detail"]["replayed"] == len(job_ids) >= 5
    # recovery came after the replay, with every job accounted for
    seqs = {e["type"]: e["seq"] for e in reversed(evs)}
    assert seqs["mitigation"] < seqs["recovery.verified"]
    verified = next(e for e in evs if e["type"] == "recovery.verified")
    assert verified["values"]["lost"]["value"] == 0
    assert "lost == 0" in verified["criteria"]
    assert summary["symptom_faded_s"] is None  # the replay came before the alert resolved
    assert in_queue(stack, job_ids) == job_ids
    # the engineer replayed: the fault's repair at the end finds nothing to do, and says so
    reverted = next(e for e in evs if e["type"] == "fault.reverted")
    assert reverted["detail"]["repair"]["replayed"] == 0
    assert seqs["recovery.verified"] < reverted["seq"]
    assert (
        "FLUSHDB cannot be undone; no lost jobs to replay (close)"
        in exports(stack.workspace.root, summary["drill"])["markdown"]
    )


@pytest.mark.stack
def test_a_replay_from_the_engineers_shell_is_seen_by_the_probes_and_a_second_adds_nothing(
    stack,
):
    root = stack.workspace.root
    script = write_script(
        root / "shell-replay.json",
        [{"do": "ack"}, {"do": "hypothesis", "choice": "cache-flushed"}, {"wait": "recovered"},
         {"do": "resolve"}],
    )  # fmt: skip
    before = set(journals(root))
    proc = start_cli(
        "run", scenario("redis-cache-flush"), "--headless", "--engineer", "ci", "--json",
        "--script", str(script), *FAST, "-w", str(root),
    )  # fmt: skip
    try:
        journal = newest_journal(root, before)
        wait_for_event(journal, "page", timeout=120)
        wait_for(lambda: unaccounted(stack) >= 5, 15, "the flush's lost jobs counted")
        first = replay(stack)
        out, err = proc.communicate(timeout=150)
    finally:
        kill_and_recover(proc, root)
    assert proc.returncode == 0, err + out
    summary = json.loads(out)
    assert summary["recovery_verified"] and summary["time_to_mitigate_s"] is None
    assert first["replayed"] >= 5
    assert in_queue(stack, first["job_ids"]) == first["job_ids"]
    replayed_total = metric(f"{game_url(stack)}/metrics", "game_jobs_replayed_total", queue=QUEUE)
    second = replay(stack)
    assert second["replayed"] == 0 and second["job_ids"] == []
    assert metric(f"{game_url(stack)}/metrics", "game_jobs_replayed_total", queue=QUEUE) == (
        replayed_total
    )


def start_waiting_flush(stack: LocalTarget, tmp_path: Path):
    """A flush drill whose engineer acknowledges and then does nothing, not even replay."""
    root = stack.workspace.root
    before = set(journals(root))
    script = write_script(tmp_path / "wait.json", WAIT_SCRIPT)
    proc = start_cli(
        "run", scenario("redis-cache-flush"), "--headless", "--engineer", "ci",
        "--script", str(script), *FAST, "-w", str(root),
    )  # fmt: skip
    journal = newest_journal(root, before)
    try:
        wait_for_event(journal, "page", timeout=120)
        wait_for(lambda: unaccounted(stack) >= 5, 15, "the flush's lost jobs counted")
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    return proc, journal


@pytest.mark.stack
def test_a_flush_drill_aborted_before_any_replay_replays_the_lost_jobs_and_says_so(stack, tmp_path):
    proc, journal = start_waiting_flush(stack, tmp_path)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    # the stack is whole again: every settlement the flush lost is back in the queue
    assert unaccounted(stack) == 0
    evs = events(journal)
    assert evs[-1]["type"] == "drill.aborted"
    assert not any(e["type"] == "mitigation" for e in evs)
    reverted = next(e for e in evs if e["type"] == "fault.reverted")
    assert reverted["by"] == "abort"
    repair = reverted["detail"]["repair"]
    assert repair["action"] == "replay-lost-jobs" and repair["replayed"] >= 5
    assert in_queue(stack, repair["job_ids"]) == repair["job_ids"]
    said = f"fault flushdb: FLUSHDB cannot be undone; {repair['replayed']} lost jobs replayed"
    assert said in err and "flushdb reverted" not in err


@pytest.mark.stack
def test_kill_9_mid_flush_leaves_lost_jobs_that_recover_replays_once(stack, tmp_path):
    proc, journal = start_waiting_flush(stack, tmp_path)
    proc.kill()  # SIGKILL: no finally, no revert, no repair
    proc.communicate(timeout=30)
    assert unaccounted(stack) >= 5, "the lost jobs should still be lost after kill -9"
    crashed = read_journal(journal)
    assert not crashed.finished
    types = [e["type"] for e in crashed.events]
    assert types.index("fault.undo") < types.index("fault.injected")

    done = cli("recover", "--json", "-w", str(stack.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    mine = next(r for r in json.loads(done.stdout) if r["journal"] == str(journal))
    assert mine["reverted"] == ["flushdb"] and not mine["failed"]
    assert unaccounted(stack) == 0
    # write-ahead: the repair is in the undo record journalled before the flush
    undo = next(e for e in crashed.events if e["type"] == "fault.undo")
    assert undo["undo"]["repair"] == {
        "action": "replay-lost-jobs", "role": "producer", "service": "game"
    }  # fmt: skip
    assert "FLUSHDB cannot be undone" in mine["said"]["flushdb"]
    finished = read_journal(journal)
    assert finished.finished and finished.events[-1]["type"] == "drill.aborted"
    reverted = next(e for e in finished.events if e["type"] == "fault.reverted")
    assert reverted["by"] == "recover" and reverted["detail"]["repair"]["replayed"] >= 5
    replayed_total = metric(f"{game_url(stack)}/metrics", "game_jobs_replayed_total", queue=QUEUE)
    # a second recover has nothing left to do, and replays nothing
    again = cli("recover", "--json", "-w", str(stack.workspace.root))
    assert again.returncode == 0 and json.loads(again.stdout) == []
    assert metric(f"{game_url(stack)}/metrics", "game_jobs_replayed_total", queue=QUEUE) == (
        replayed_total
    )


@pytest.mark.stack
def test_the_steady_state_waits_for_a_cold_caches_warm_up_alert_to_clear(stack):
    root = stack.workspace.root
    before = set(journals(root))
    proc = start_cli(
        "run", scenario("redis-cache-flush"), "--headless", "--engineer", "ci", "--json",
        "--autopilot", *FAST, "-w", str(root),
    )  # fmt: skip
    try:
        journal = newest_journal(root, before)
        wait_for_event(journal, "drill.started", timeout=60)
        # a cold cache (not a flush: the queue keeps its jobs) while the drill settles
        client = redis_client(stack)
        try:
            for _ in range(3):
                client.delete(*[f"cache:market:{i}" for i in range(1, 21)])
                time.sleep(1.0)
        finally:
            client.close()
        out, err = proc.communicate(timeout=240)
    finally:
        kill_and_recover(proc, root)
    assert proc.returncode == 0, err + out
    summary = json.loads(out)
    evs = events(Path(summary["journal"]))
    seq = {e["seq"]: e for e in evs}
    quiet = next(e["seq"] for e in evs if e["type"] == "state" and e["to"] == "quiet")
    injected = next(e["seq"] for e in evs if e["type"] == "fault.injected")
    warmup = [e for e in evs if e["type"].startswith("alert.") and e["seq"] < injected]
    assert warmup and warmup[0]["type"] == "alert.firing"
    # the quiet period started only once the warm-up alert had resolved
    assert all(e["seq"] < quiet for e in warmup), [(e["type"], e["seq"]) for e in warmup]
    assert warmup[-1]["type"] == "alert.resolved"
    # the steady state's hold before the quiet period: every sample of it quiet
    held = [seq[s] for s in range(quiet) if seq[s]["type"] == "probe.sample"][-3:]
    assert all((e["values"]["misses"]["value"] or 0) <= 0.5 for e in held)
    # the page is the fault's, and every export says the warm-up alert was not one
    assert summary["paged"] and summary["alerts_before_fault"] == len(
        [e for e in warmup if e["type"] == "alert.firing"]
    )
    for fmt, text in exports(root, summary["drill"]).items():
        if fmt == "json":
            doc = json.loads(text)
            lines = [e["text"] for e in doc["timeline"]]
            assert any("firing before the fault (not a page)" in t for t in lines)
        else:
            assert "before the fault (not a page)" in text.replace("&amp;", "&"), fmt


@pytest.mark.parametrize(
    ("remote", "given", "configured", "allowed"),
    [
        ("127.0.0.1", "", "", True),
        ("::1", "", "tok", True),
        ("172.18.0.1", "", "tok", False),  # the host, through docker's port proxy
        ("172.18.0.1", "tok", "tok", True),
        ("172.18.0.1", "wrong", "tok", False),
        ("172.18.0.1", "", "", False),  # no token configured: loopback only
        (None, "", "", False),
    ],
)
def test_games_replay_route_answers_loopback_and_holders_of_the_fault_token_only(
    remote, given, configured, allowed
):
    from pagerdrill.refstack.game import admin_allowed

    assert admin_allowed(remote, given, configured) is allowed
