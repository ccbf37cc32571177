"""The traffic generator as a background process, tracked like the local target's
services: its pid and kernel start time in `<state dir>/traffic.json`, so any later
command can stop exactly that process (a pid alone may have been reused) and nothing
else.

Who started it is its owner: `stack` (`stack up --traffic`, until `stack down`) or
`drill:<id>` (until that drill lets go of the stack). A drill's generator outliving
its drill (a `kill -9`) is an orphan that `recover` stops.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, StackError
from pagerdrill.targets.base import process_start_ticks
from pagerdrill.targets.localprocs import stop_process_group
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.targets.state import ABSENT, bad_state_error, read_state, write_state
from pagerdrill.workspace import Workspace, bound_hosts
from pagerdrill.workspace.config import GENERATOR_SERVICE
from pagerdrill.workspace.traffic import STATE_FILE, host_refusal

READY_WAIT_S = 20.0
STOP_GRACE_S = 5.0
POLL_S = 0.02
STACK_OWNER = "stack"

_children: dict[int, subprocess.Popen] = {}
"""Processes this one started: polled so that a stopped one is reaped, not a zombie."""


def state_path(workspace: Workspace) -> Path:
    return workspace.state_dir / STATE_FILE


def log_path(workspace: Workspace) -> Path:
    return workspace.state_dir / "logs" / f"{GENERATOR_SERVICE}.log"


def _read(workspace: Workspace) -> dict[str, Any] | None:
    path = state_path(workspace)
    state = read_state(
        path,
        lambda why: bad_state_error(
            GENERATOR_SERVICE, path, why, "stop the process it names by hand and delete it"
        ),
    )
    if state is ABSENT:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        raise bad_state_error(
            GENERATOR_SERVICE, path, "no pid in it", "stop the process by hand and delete it"
        )
    return state


def _alive(pid: int, start_ticks: int | None) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    return start_ticks is not None and process_start_ticks(pid) == start_ticks


def running_traffic(workspace: Workspace) -> dict[str, Any] | None:
    """The generator's state (pid, owner, metrics URL ...) while it runs, else None."""
    state = _read(workspace)
    if state is None or not _alive(state["pid"], state.get("start_ticks")):
        return None
    return state


def _base_and_hosts(workspace: Workspace, roles: RoleResolver) -> tuple[str, set[str]]:
    """The URL the profile sends to and the hosts it may reach; refused when the URL is
    not one of the stack's."""
    profile = workspace.config.traffic
    assert profile is not None
    base = profile.url or roles.base_url(str(profile.role))
    allowed = bound_hosts(workspace.config.model_dump()["roles"])
    if profile.role is not None:
        # the URL a bound role's service answers on is the stack's by definition
        allowed.add((urllib.parse.urlsplit(base).hostname or "").lower())
    refusal = host_refusal(base, allowed)
    if refusal:
        raise BadInputError(f"traffic: {refusal}")
    return base, allowed


def start_traffic(
    workspace: Workspace, roles: RoleResolver, owner: str, *, wait_s: float = READY_WAIT_S
) -> dict[str, Any]:
    """Start the workspace's traffic profile in the background (or keep the one that
    runs) and return its state once its /metrics answers."""
    profile = workspace.config.traffic
    if profile is None:
        raise BadInputError(f"{workspace.config_path}: there is no traffic: profile to run")
    already = running_traffic(workspace)
    if already is not None:
        return already
    base, allowed = _base_and_hosts(workspace, roles)
    path = state_path(workspace)
    ready = workspace.state_dir / "traffic.ready.json"
    ready.unlink(missing_ok=True)
    log = log_path(workspace)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "pagerdrill.traffic",
        "--workspace", str(workspace.root), "--base", base, "--ready-file", str(ready),
        *[arg for host in sorted(allowed) for arg in ("--allow-host", host)],
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workspace.state_dir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a Ctrl-C of the command that started it is not its
        )
    _children[proc.pid] = proc
    state: dict[str, Any] = {
        "pid": proc.pid,
        "start_ticks": process_start_ticks(proc.pid),
        "owner": owner,
        "base": base,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }
    # written before anything is sent, so whatever happens next can stop it
    write_state(path, state, path.with_name(f".{STATE_FILE}.tmp"))
    deadline = time.monotonic() + wait_s
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_traffic(workspace)
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            said = " | ".join(tail) or "nothing"
            raise StackError(GENERATOR_SERVICE, f"the traffic generator did not start: {said}")
        time.sleep(POLL_S)
    said = json.loads(ready.read_text())
    state.update({k: said[k] for k in ("metrics", "http", "health") if k in said})
    ready.unlink(missing_ok=True)
    write_state(path, state, path.with_name(f".{STATE_FILE}.tmp"))
    return state


def stop_traffic(workspace: Workspace, *, owner: str | None = None) -> bool:
    """Stop the generator (only when `owner` started it, if given); True when one was
    running. SIGTERM, then SIGKILL, to its process group, which it leads."""
    state = _read(workspace)
    if state is None or (owner is not None and state.get("owner") != owner):
        return False
    pid, ticks = state["pid"], state.get("start_ticks")
    was_running = _alive(pid, ticks)
    if was_running and not stop_process_group(pid, lambda: _alive(pid, ticks), STOP_GRACE_S):
        raise StackError(GENERATOR_SERVICE, f"process {pid} did not exit after SIGKILL")
    _children.pop(pid, None)
    state_path(workspace).unlink(missing_ok=True)
    return was_running


def stop_orphaned_traffic(workspace: Workspace, *, stack_up: bool) -> bool:
    """For `recover`, which holds the drill lock (so no drill runs): stop a generator a
    drill started, and any at all when the stack is down. True when one was stopped."""
    state = _read(workspace)
    if state is None:
        return False
    if not stack_up or str(state.get("owner", "")).startswith("drill:"):
        return stop_traffic(workspace)
    return False
