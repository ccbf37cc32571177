"""Safety: whatever stops a drill (Ctrl-C, SIGTERM, kill -9 then `recover`), the stack
is put back; and one drill per stack at a time."""

from __future__ import annotations

import json
import signal

import pytest

from drilling import (
    FAST,
    WAIT_SCRIPT,
    api_faults,
    assert_stack_clean,
    cli,
    events,
    journals,
    newest_journal,
    promotions_fail,
    rejected,
    scenario,
    start_cli,
    wait_for_event,
    write_script,
)
from helpers import pid_alive, wait_for
from pagerdrill.journal import read_journal

pytestmark = pytest.mark.stack

# what each fault looks like on the stack while it is in effect
IN_EFFECT = {
    "bullmq-backpressure": lambda t: t.service_status("api").state != "running",
    "redis-cache-flush": lambda t: True,  # irreversible: nothing stays broken to see
    "ws-handshake-storm": lambda t: rejected(t) > 0,
    "signin-failure-spike": lambda t: "ADMIN_DEFAULT_PASSWORD" in t.overrides("api"),
    "api-500-injection": promotions_fail,
}


def start_waiting_drill(stack, tmp_path, name: str, *params: str):
    """A drill whose engineer acknowledges and then does nothing: the fault stays in."""
    root = stack.workspace.root
    before = set(journals(root))
    script = write_script(tmp_path / "wait.json", WAIT_SCRIPT)
    proc = start_cli(
        "run", scenario(name), "--headless", "--engineer", "ci", "--script", str(script),
        *FAST, *params, "-w", str(root),
    )  # fmt: skip
    journal = newest_journal(root, before)
    return proc, journal


@pytest.mark.parametrize("name", sorted(IN_EFFECT))
def test_ctrl_c_during_the_fault_reverts_it_and_leaves_the_stack_healthy(stack, tmp_path, name):
    proc, journal = start_waiting_drill(stack, tmp_path, name)
    try:
        wait_for_event(journal, "fault.injected")
        wait_for(lambda: IN_EFFECT[name](stack), 15, f"{name}'s fault in effect")
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    evs = events(journal)
    assert evs[-1]["type"] == "drill.aborted"
    assert "interrupted" in evs[-1]["reason"]
    reverted = {e["fault"] for e in evs if e["type"] == "fault.reverted"}
    undone = {e["fault"] for e in evs if e["type"] == "fault.undo"}
    assert reverted == undone
    assert_stack_clean(stack)
    assert api_faults(stack) == {}
    if name == "ws-handshake-storm":  # the storm stopped with the drill
        count = rejected(stack)
        import time

        time.sleep(2.5)
        assert rejected(stack) == count


def test_sigterm_aborts_and_reverts_like_ctrl_c(stack, tmp_path):
    proc, journal = start_waiting_drill(stack, tmp_path, "signin-failure-spike")
    try:
        wait_for_event(journal, "fault.injected")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert events(journal)[-1]["type"] == "drill.aborted"
    assert stack.overrides("api") == {}
    assert_stack_clean(stack)


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("signin-failure-spike", lambda t: "ADMIN_DEFAULT_PASSWORD" in t.overrides("api")),
        ("bullmq-backpressure", lambda t: t.service_status("api").state != "running"),
        ("api-500-injection", promotions_fail),
    ],
)
def test_kill_9_mid_fault_leaves_a_journal_that_recover_finishes(stack, tmp_path, name, broken):
    proc, journal = (
        start_waiting_drill(stack, tmp_path, name, "-p", "outage_s=600")
        if (name == "bullmq-backpressure")
        else start_waiting_drill(stack, tmp_path, name)
    )
    try:
        wait_for_event(journal, "fault.injected")
        wait_for(lambda: broken(stack), 15, "the fault in effect")
        wait_for_event(journal, "page", timeout=30)
    finally:
        proc.kill()  # SIGKILL: no finally, no revert
        proc.communicate(timeout=30)
    assert broken(stack), "the fault should still be in after kill -9"
    crashed = read_journal(journal)
    assert not crashed.finished
    assert not crashed.problems  # every event up to the kill is whole
    types = [e["type"] for e in crashed.events]
    assert types.index("fault.undo") < types.index("fault.injected") < types.index("page")

    done = cli("recover", "--json", "-w", str(stack.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    mine = next(r for r in report if r["journal"] == str(journal))
    assert mine["reverted"] and not mine["failed"]
    assert not broken(stack)
    assert_stack_clean(stack)
    finished = read_journal(journal)
    assert finished.finished
    assert finished.events[-1]["type"] == "drill.aborted"
    assert finished.events[-1]["recovered"] is True
    # nothing left: a second recover has nothing to do
    again = cli("recover", "--json", "-w", str(stack.workspace.root))
    assert json.loads(again.stdout) == []


def test_kill_9_during_the_proxy_fault_then_recover_stops_the_proxy_and_moves_the_api_back(
    stack, tmp_path
):
    api_port = stack._read_state()["services"]["api"]["port"]
    proc, journal = start_waiting_drill(stack, tmp_path, "api-500-injection")
    try:
        injected = wait_for_event(journal, "fault.injected")
        wait_for(lambda: promotions_fail(stack), 15, "the proxy answering 500")
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    proxy_pid = injected["detail"]["proxy_pid"]
    moved = stack._read_state()["services"]["api"]
    assert pid_alive(proxy_pid), "the proxy outlives the drill's process"
    assert moved["listen_port"] != api_port and moved["proxy"]["pid"] == proxy_pid

    done = cli("recover", "--json", "-w", str(stack.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    assert not pid_alive(proxy_pid)
    entry = stack._read_state()["services"]["api"]
    assert "proxy" not in entry and "listen_port" not in entry
    assert entry["port"] == api_port
    # the api itself answers on its own port again, and the route works
    import httpx

    health = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).json()
    assert health["pid"] == entry["pid"]
    assert not promotions_fail(stack)
    assert_stack_clean(stack)


def test_stack_down_during_the_proxy_fault_stops_the_proxy_too(tmp_path):
    from helpers import write_workspace
    from pagerdrill.faults.httpproxy import proxy_script
    from pagerdrill.targets.local import LocalTarget
    from pagerdrill.workspace import load_workspace

    target = LocalTarget(load_workspace(write_workspace(tmp_path / "ws")))
    try:
        target.up()
        detail = target.insert_http_proxy("api", {"status": 503}, proxy_script())
        assert pid_alive(detail["proxy_pid"])
    finally:
        target.down()
    assert not pid_alive(detail["proxy_pid"])
    assert all(not pid_alive(pid) for pid in target.spawned)


def test_a_second_drill_on_the_same_stack_is_refused_with_who_holds_it(stack, tmp_path):
    proc, journal = start_waiting_drill(stack, tmp_path, "api-500-injection")
    try:
        started = wait_for_event(journal, "drill.started")
        second = cli(
            "run", scenario("signin-failure-spike"), "--headless", "--engineer", "other",
            "--autopilot", *FAST, "-w", str(stack.workspace.root),
        )  # fmt: skip
        assert second.returncode == 1
        assert started["drill"] in second.stderr
        assert "one drill per stack" in second.stderr
        assert "Traceback" not in second.stderr
        # recover leaves a running drill alone
        busy = cli("recover", "-w", str(stack.workspace.root))
        assert busy.returncode == 1 and "is running" in busy.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert_stack_clean(stack)
