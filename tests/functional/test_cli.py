"""The `pagerdrill` command as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import REPO, pagerdrill_cli, pid_alive, start_pagerdrill


def run(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, cwd=cwd, check=check)


def read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """The first line of `proc`'s stdout containing `needle` (or "" after `timeout`)."""
    found: list[str] = []

    def reader():
        for line in proc.stdout:
            if needle in line:
                found.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else ""


def test_help_lists_the_commands():
    result = run("--help", check=True)
    assert "stack" in result.stdout and "init" in result.stdout


def test_help_does_not_import_the_heavy_modules():
    code = (
        "import sys; sys.argv=['pagerdrill','--help']\n"
        "from pagerdrill.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('redis', 'httpx', 'pydantic', 'aiohttp', 'textual', 'bullmq', 'rich',"
        " 'socketio', 'pagerdrill.targets.local') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in result.stderr, result.stderr


def test_init_scaffolds_the_same_workspace_this_repo_is(tmp_path):
    dest = tmp_path / "team-drills"
    result = run("init", str(dest), check=True)
    assert "workspace created" in result.stdout
    for name in ("compose", "scenarios", "runbooks", "readiness", "drills"):
        assert (dest / name).is_dir()
    assert (dest / "pagerdrill.yaml").read_text() == (REPO / "pagerdrill.yaml").read_text()
    assert ".pagerdrill/" in (dest / ".gitignore").read_text()
    assert sorted(p.name for p in (dest / "compose").iterdir()) == sorted(
        p.name for p in (REPO / "compose").iterdir() if p.name != "wheels"
    )
    # the runbooks of the reference stack's failure modes come with it (the drill's
    # runbook search reads them)
    assert sorted(p.name for p in (dest / "runbooks").glob("*.md")) == sorted(
        p.name for p in (REPO / "runbooks").glob("*.md")
    )
    # the escalation matrix, its roster and schedule export: a fresh workspace validates
    for name in (
        "escalation-matrix.yaml",
        "readiness/roster.yaml",
        "escalation/schedules/secondary.json",
    ):
        assert (dest / name).read_text() == (REPO / name).read_text()
    assert run("escalation", "validate", cwd=dest).returncode == 0


def test_init_refuses_to_overwrite_a_workspace(tmp_path):
    run("init", str(tmp_path / "ws"), check=True)
    result = run("init", str(tmp_path / "ws"))
    assert result.returncode == 2
    assert "already exists; not overwriting" in result.stderr


def test_a_malformed_workspace_file_exits_2_naming_file_and_line(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text("version: 1\ntarget: local\nlocal:\n  services: [\n")
    result = run("stack", "status", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path / 'pagerdrill.yaml'}:5: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_in_the_workspace_file_is_reported_at_once(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text(
        "version: 1\ntarget: locl\nlocal:\n  redis_pasword: x\n  startup_timeout_s: -1\n"
    )
    result = run("stack", "status", cwd=tmp_path)
    assert result.returncode == 2
    path = tmp_path / "pagerdrill.yaml"
    assert f"{path}:2: target: Input should be 'local' or 'compose'" in result.stderr
    assert f"{path}:4: local.redis_pasword: unknown key (did you mean 'redis_password'?)" in (
        result.stderr
    )
    assert f"{path}:5: local.startup_timeout_s: Input should be greater than 0" in result.stderr


def test_no_workspace_is_a_clear_error(tmp_path):
    result = run("stack", "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "no pagerdrill.yaml" in result.stderr and "pagerdrill init" in result.stderr


def test_a_bad_env_override_is_bad_input(tmp_path):
    run("init", str(tmp_path / "ws"), check=True)
    result = run("stack", "restart", "api", "--env", "NOEQUALS", cwd=tmp_path / "ws")
    assert result.returncode == 2
    assert "expected KEY=VALUE" in result.stderr


@pytest.mark.stack
def test_the_readme_flow_up_status_stop_start_restart_exec_logs_down(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws), check=True)
    try:
        up = run("stack", "up", cwd=ws)
        assert up.returncode == 0, up.stderr
        assert up.stdout.count("✓") == 5
        assert "redis://:***@127.0.0.1" in up.stdout  # the password is never printed

        doc = json.loads(run("stack", "status", "--json", cwd=ws, check=True).stdout)
        services = {s["name"]: s for s in doc["services"]}
        assert {s["health"] for s in services.values()} == {"healthy"}
        assert services["redis-cache"]["endpoints"]["redis"].startswith("redis://:cache@127.0.0.1:")
        pids = [s["pid"] for s in services.values()]

        assert run("stack", "stop", "api", cwd=ws).returncode == 0
        doc = json.loads(run("stack", "status", "--json", cwd=ws, check=True).stdout)
        assert {s["name"]: s["state"] for s in doc["services"]}["api"] == "stopped"
        assert run("stack", "start", "api", cwd=ws).returncode == 0

        restart = run("stack", "restart", "api", "--env", "ADMIN_DEFAULT_PASSWORD=oops", cwd=ws)
        assert restart.returncode == 0, restart.stderr
        table = run("stack", "status", cwd=ws, check=True).stdout
        assert "ADMIN_DEFAULT_PASSWORD" in table and "oops" not in table

        dbsize = run(
            "stack",
            "exec",
            "redis-cache",
            "redis-cli",
            "-a",
            "cache",
            "--no-auth-warning",
            "DBSIZE",
            cwd=ws,
        )
        assert dbsize.returncode == 0 and dbsize.stdout.strip().isdigit()

        time.sleep(0.5)
        logs = run("stack", "logs", "api", "-n", "3", cwd=ws, check=True).stdout.splitlines()
        assert len(logs) == 3 and all(json.loads(line)["service"] == "api" for line in logs)

        # -f prints lines written after it started: make one with a known trace id
        follow = start_pagerdrill("stack", "logs", "api", "-f", "-n", "0", cwd=ws, stderr=None)
        try:
            trace = f"follow-{os.getpid()}"
            stop = threading.Event()

            def requests() -> None:
                # until -f has started (a busy machine may take seconds), a line
                # written before it would not be followed: keep making new ones
                while not stop.is_set():
                    urllib.request.urlopen(
                        urllib.request.Request(
                            f"{services['api']['endpoints']['http']}/api/markets/1",
                            headers={"X-Trace-Id": trace},
                        ),
                        timeout=5,
                    ).read()
                    stop.wait(0.5)

            sender = threading.Thread(target=requests, daemon=True)
            sender.start()
            seen = read_until(follow, trace, timeout=30)
            stop.set()
            sender.join(10)
        finally:
            follow.terminate()
            follow.wait(5)
        assert json.loads(seen)["trace_id"] == trace

        down = run("stack", "down", cwd=ws)
        assert down.returncode == 0
        assert not [pid for pid in pids if pid_alive(pid)]
        assert "not up" in run("stack", "status", cwd=ws, check=True).stdout
    finally:
        run("stack", "down", cwd=ws)


def test_init_keeps_a_teams_gitignore_and_adds_the_state_folder(tmp_path):
    dest = tmp_path / "repo"
    dest.mkdir()
    (dest / ".gitignore").write_text("node_modules/\n")
    run("init", str(dest), check=True)
    assert (dest / ".gitignore").read_text() == "node_modules/\n.pagerdrill/\n"


def test_a_configured_redis_binary_that_is_missing_exits_2_and_starts_nothing(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws), check=True)
    config = ws / "pagerdrill.yaml"
    config.write_text(
        config.read_text().replace(
            "  redis_password: cache",
            f"  redis_server: {tmp_path}/no/redis-server\n  redis_password: cache",
        )
    )
    result = run("stack", "up", cwd=ws)
    assert result.returncode == 2
    assert f"local.redis_server: {tmp_path}/no/redis-server is not an executable file" in (
        result.stderr
    )
    # the file is refused when read, by every command, before anything starts
    assert "is not an executable file" in run("stack", "status", cwd=ws).stderr
    assert not (ws / ".pagerdrill" / "stack.json").exists()


# What a trainee could read before a drill: each secret a scenario file holds, by where
# it lives (fault kinds and parameters, signals and alerts, mitigations, the cause).
STORM_SECRETS = ("socketio-storm", "203.0.113.7", "throttled", "block-source", "flooding")


def test_scenarios_show_without_reveal_tells_only_what_a_trainee_may_know():
    shown = run("scenarios", "show", "ws-handshake-storm", "-w", str(REPO), check=True).stdout
    for secret in STORM_SECRETS:
        assert secret not in shown
    assert "Root cause" not in shown and "Answer key" not in shown
    assert "WS handshake storm" in shown and "P2" in shown and "rt, traffic" in shown
    assert "The realtime gateway is refusing connections" in shown
    assert "20-90 s" in shown  # how long the wait for the page can be
    revealed = run("scenarios", "show", "ws-handshake-storm", "-w", str(REPO), "--reveal").stdout
    for secret in STORM_SECRETS:
        assert secret in revealed
    assert "throttled: signal rt.refused_rate" in revealed  # a catalogue signal, no metric


def test_scenarios_show_json_keeps_the_same_secrets_unless_reveal():
    shown = run("scenarios", "show", "ws-handshake-storm", "-w", str(REPO), "--json", check=True)
    doc = json.loads(shown.stdout)
    assert set(doc) == {
        "name", "file", "title", "severity", "symptom", "roles", "quiet_s", "max_duration_s",
    }  # fmt: skip
    for secret in STORM_SECRETS:
        assert secret not in shown.stdout
    revealed = run("scenarios", "show", "ws-handshake-storm", "-w", str(REPO), "--json", "--reveal")
    doc = json.loads(revealed.stdout)
    assert doc["faults"][0]["source"] == "203.0.113.7" and doc["answer"]["decision"] == "block"


def test_scenarios_list_names_no_fault_unless_reveal():
    kinds = ("socketio-storm", "redis-command", "stop-service", "restart-with-env", "http-proxy")
    listed = run("scenarios", "list", "-w", str(REPO), check=True).stdout
    as_json = run("scenarios", "list", "-w", str(REPO), "--json", check=True).stdout
    for kind in kinds:
        assert kind not in listed and kind not in as_json
    assert "FAULTS" not in listed and "WS handshake storm" in listed
    assert all("faults" not in row for row in json.loads(as_json))
    revealed = run("scenarios", "list", "-w", str(REPO), "--reveal", "--json", check=True)
    assert {k for row in json.loads(revealed.stdout) for k in row["faults"]} == set(kinds)
    assert "socketio-storm" in run("scenarios", "list", "-w", str(REPO), "--reveal").stdout
