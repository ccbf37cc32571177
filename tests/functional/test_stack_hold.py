"""Who holds the stack: a drill holds it from before its stack starts until the stack it
started is down; a second drill, or a `stack down`, never pulls it from under a drill.
And whatever ends a headless drill (SIGHUP, Ctrl-C with its output pipe gone), the
faults are reverted and the journal says it was interrupted."""

from __future__ import annotations

import getpass
import json
import signal
from pathlib import Path

import pytest
from test_drill_safety import start_waiting_drill

from drilling import (
    FAST,
    assert_stack_clean,
    cli,
    events,
    journals,
    scenario,
    start_cli,
    wait_for_event,
)
from helpers import pid_alive, wait_for, write_workspace
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace

pytestmark = pytest.mark.stack


def _lock_taken_or_stack_starting(root: Path) -> bool:
    state = root / ".pagerdrill"
    lock = state / "drill.lock"
    return (lock.exists() and lock.stat().st_size > 0) or (state / "stack.json").exists()


def test_a_second_drill_refused_by_the_lock_touches_nothing_and_the_first_recovers(tmp_path):
    root = write_workspace(tmp_path / "ws")
    target = LocalTarget(load_workspace(root))
    assert not target.is_up()
    first = start_cli(
        "run", scenario("api-500-injection"), "--headless", "--engineer", "ana",
        "--autopilot", "--json", *FAST, "-w", str(root),
    )  # fmt: skip
    try:
        # the first is under way (the stack still down or coming up) when the second starts
        wait_for(lambda: _lock_taken_or_stack_starting(root), 30, "the first drill under way")
        second = cli(
            "run", scenario("signin-failure-spike"), "--headless", "--engineer", "bo",
            "--autopilot", *FAST, "-w", str(root),
        )  # fmt: skip
        out, err = first.communicate(timeout=150)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)
            first.communicate(timeout=60)
        if target.is_up():
            target.down()
    assert second.returncode == 1, second.stderr
    assert "one drill per stack" in second.stderr
    assert "starting the stack" not in second.stderr + second.stdout
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err + out
    summary = json.loads(out)
    assert summary["outcome"] == "closed" and summary["recovery_verified"]
    # the refusal named the drill that held the stack, and left no journal of its own
    assert [p.stem for p in journals(root)] == [summary["drill"]]
    assert summary["drill"] in second.stderr and "ana" in second.stderr
    # the first drill started the stack, and took it down at its end
    assert not target.is_up()


def test_stack_down_is_refused_while_a_drill_holds_the_stack_and_names_it(stack, tmp_path):
    proc, journal = start_waiting_drill(stack, tmp_path, "signin-failure-spike")
    try:
        started = wait_for_event(journal, "fault.injected") and events(journal)[0]
        refused = cli("stack", "down", "-w", str(stack.workspace.root))
        assert refused.returncode == 2, refused.stderr
        assert started["drill"] in refused.stderr
        assert "signin-failure-spike" in refused.stderr and "engineer ci" in refused.stderr
        assert "--force" in refused.stderr
        assert "Traceback" not in refused.stderr
        # nothing went down: the drill runs on, its fault in
        assert stack.is_up() and proc.poll() is None
        assert "ADMIN_DEFAULT_PASSWORD" in stack.overrides("api")
        assert all(s.state == "running" for s in stack.status())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert events(journal)[-1]["type"] == "drill.aborted"
    assert_stack_clean(stack)


def test_stack_down_force_aborts_the_drill_which_reverts_and_journals_why(tmp_path):
    root = write_workspace(tmp_path / "ws")
    target = LocalTarget(load_workspace(root))
    target.up()
    pids = [s.pid for s in target.status()]
    try:
        proc, journal = start_waiting_drill(target, tmp_path, "signin-failure-spike")
        try:
            wait_for_event(journal, "fault.injected")
            wait_for(lambda: "ADMIN_DEFAULT_PASSWORD" in target.overrides("api"), 15, "override")
            forced = cli("stack", "down", "--force", "-w", str(root))
            assert forced.returncode == 0, forced.stderr
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    finally:
        if target.is_up():
            target.down()
    assert proc.returncode == 1
    evs = events(journal)
    assert evs[-1]["type"] == "drill.aborted"
    assert evs[-1]["reason"] == f"stack down --force by {getpass.getuser()}"
    assert [e["fault"] for e in evs if e["type"] == "fault.reverted"] == ["bad-password"]
    assert not evs[-1]["revert_failed"]
    # the drill reverted before the stack went down, and nothing of the stack runs
    assert not target.is_up()
    assert not any(pid_alive(pid) for pid in pids if pid)
    assert not (root / ".pagerdrill" / "drill.abort").exists()


def test_sighup_mid_fault_reverts_the_fault_and_journals_interrupted(stack, tmp_path):
    proc, journal = start_waiting_drill(stack, tmp_path, "signin-failure-spike")
    try:
        wait_for_event(journal, "fault.injected")
        wait_for(lambda: "ADMIN_DEFAULT_PASSWORD" in stack.overrides("api"), 15, "override")
    finally:
        proc.send_signal(signal.SIGHUP)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    last = events(journal)[-1]
    assert last["type"] == "drill.aborted"
    assert last["reason"].startswith("interrupted") and "SIGHUP" in last["reason"]
    assert stack.overrides("api") == {}
    assert_stack_clean(stack)


def test_ctrl_c_with_the_output_pipe_gone_journals_interrupted_and_reverts(stack, tmp_path):
    proc, journal = start_waiting_drill(stack, tmp_path, "signin-failure-spike")
    try:
        wait_for_event(journal, "page")
        # the reader of both pipes goes away (as `| tee` does on Ctrl-C), then the signal
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode != 0
    evs = events(journal)
    assert evs[-1]["type"] == "drill.aborted"
    assert evs[-1]["reason"] == "interrupted (Ctrl-C)", evs[-1]["reason"]
    assert not any(e.get("reason", "").startswith("error") for e in evs)
    assert [e["fault"] for e in evs if e["type"] == "fault.reverted"] == ["bad-password"]
    assert_stack_clean(stack)
