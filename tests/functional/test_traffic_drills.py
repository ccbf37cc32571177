"""The traffic profile in drills on the real reference stack: a drill runs it and stops
it, its `traffic` signal is read from the generator when the role binds it, `stack up
--traffic` runs it until `stack down`, and `recover` stops the one a `kill -9`ed drill
left behind."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from drilling import (
    WAIT_SCRIPT,
    autopilot_drill,
    cli,
    newest_journal,
    promotions_fail,
    samples,
    scenario,
    start_cli,
    wait_for_event,
    write_script,
)
from helpers import TEST_ENV, metric, pid_alive, wait_for, write_workspace
from pagerdrill.targets.local import LocalTarget
from pagerdrill.traffic import running_traffic
from pagerdrill.workspace import load_workspace

pytestmark = pytest.mark.stack

PROFILE = {
    "role": "api",
    "rate": 20,
    "concurrency": 4,
    "duration_s": 600,
    "window_s": 5,
    "headers": {"Accept": "application/json"},
    "sign_in": {
        "path": "/auth/sign-in",
        "body": {"username": "admin", "password": TEST_ENV["api"]["ADMIN_DEFAULT_PASSWORD"]},
        "token": {"json": "token"},
    },
    "requests": [
        {"name": "market", "path": "/api/markets/{int:1..20}", "weight": 4},
        {"name": "promotions", "path": "/api/promotions", "weight": 2},
        {
            "name": "bet",
            "method": "POST",
            "path": "/api/bets",
            "headers": {"Authorization": "Bearer {token}"},
            "body": {"market_id": "{int:1..20}", "stake": 5},
        },
    ],
}


def config(**extra) -> dict:
    return {
        "version": 1,
        "target": "local",
        "local": {"services": {name: {"env": env} for name, env in TEST_ENV.items()}},
        "roles": {"traffic": {"generator": "profile"}},
        "traffic": PROFILE,
        **extra,
    }


@pytest.fixture(scope="module")
def traffic_stack(tmp_path_factory) -> Iterator[LocalTarget]:
    root = write_workspace(tmp_path_factory.mktemp("traffic") / "ws", config())
    target = LocalTarget(load_workspace(root))
    try:
        target.up()
        yield target
    finally:
        state = running_traffic(target.workspace)
        if state is not None:  # a failed test must not leave it sending
            os.kill(state["pid"], signal.SIGKILL)
        target.down()


def traffic_pid(root: Path) -> int | None:
    try:
        return json.loads((root / ".pagerdrill" / "traffic.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_a_drill_runs_the_profile_pages_from_its_error_rate_and_stops_it(traffic_stack):
    root = traffic_stack.workspace.root
    summary, evs = autopilot_drill(root, "api-500-injection")
    assert summary["paged"], summary
    # the scenario's traffic probe read the generator: its failed promotions showed
    seen = [v for v in samples(evs, "errors", "value", after="fault.injected") if v]
    assert seen and max(seen) > 0
    assert running_traffic(traffic_stack.workspace) is None
    assert traffic_pid(root) is None


def test_a_drill_stops_the_traffic_an_earlier_drill_left_and_runs_its_own(traffic_stack):
    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.targets.roles import RoleResolver
    from pagerdrill.traffic import start_traffic

    ws = traffic_stack.workspace
    left = start_traffic(ws, RoleResolver(role_bindings(ws), traffic_stack), "drill:gone")
    try:
        summary, _ = autopilot_drill(ws.root, "api-500-injection")
        assert summary["paged"], summary
        assert not pid_alive(left["pid"])
        assert running_traffic(ws) is None
    finally:
        if pid_alive(left["pid"]):
            os.kill(left["pid"], signal.SIGKILL)


def test_recover_after_kill_9_of_a_drill_stops_the_traffic_it_started(traffic_stack, tmp_path):
    root = traffic_stack.workspace.root
    before = set((root / "drills").glob("*.jsonl"))
    script = write_script(tmp_path / "wait.json", WAIT_SCRIPT)
    proc = start_cli(
        "run", scenario("api-500-injection"), "--headless", "--engineer", "ci",
        "--script", str(script), "-p", "quiet_min_s=0.5", "-p", "quiet_max_s=1",
        "-w", str(root),
    )  # fmt: skip
    pid = None
    try:
        journal = newest_journal(root, before)
        wait_for_event(journal, "fault.injected")
        pid = traffic_pid(root)
        assert pid is not None and pid_alive(pid)
    finally:
        proc.kill()  # SIGKILL: the drill reverts nothing and stops nothing
        proc.communicate(timeout=30)
    try:
        assert pid_alive(pid), "the traffic outlives a drill killed with -9"
        assert promotions_fail(traffic_stack)  # the fault stays in
        done = cli("recover", "-w", str(root))
        assert done.returncode == 0, done.stderr + done.stdout
        assert not pid_alive(pid)
        assert running_traffic(traffic_stack.workspace) is None
        assert not promotions_fail(traffic_stack)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_stack_up_with_traffic_runs_it_until_stack_down(tmp_path):
    root = write_workspace(tmp_path / "ws", config())
    pid = None
    try:
        up = cli("stack", "up", "--traffic", "-w", str(root))
        assert up.returncode == 0, up.stderr + up.stdout
        assert "its metrics on http://127.0.0.1:" in up.stdout
        pid = traffic_pid(root)
        assert pid is not None and pid_alive(pid)
        state = running_traffic(load_workspace(root))
        assert state is not None and state["owner"] == "stack"

        def signed_in_bets() -> bool:
            ok = metric(state["metrics"], "traffic_requests_total", 0.0, request="bet",
                        status="201")  # fmt: skip
            return (
                ok
                + metric(
                    state["metrics"], "traffic_requests_total", 0.0, request="bet", status="200"
                )
                > 0
            )

        wait_for(signed_in_bets, 30, "bets placed with the sign-in's token")
        down = cli("stack", "down", "-w", str(root))
        assert down.returncode == 0, down.stderr
        assert not pid_alive(pid)
        assert traffic_pid(root) is None
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        target = LocalTarget(load_workspace(root))
        if target.is_up():
            target.down()
