"""Helpers for tests that run whole drills with the real CLI against a real stack."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from helpers import REPO, UNBUFFERED, pagerdrill_cli, start_pagerdrill, wait_for
from pagerdrill.journal import read_journal
from pagerdrill.targets.local import LocalTarget

SCENARIOS = REPO / "scenarios"
FAST = ["-p", "quiet_min_s=0.5", "-p", "quiet_max_s=1", "-p", "recovery_s=2"]


def cli(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, timeout=timeout, env=UNBUFFERED)


def start_cli(*args: str) -> subprocess.Popen:
    return start_pagerdrill(*args, env=UNBUFFERED)


def scenario(name: str) -> str:
    return str(SCENARIOS / f"{name}.yaml")


def autopilot_drill(
    root: Path, name: str, *params: str, timeout: float = 150
) -> tuple[dict, list[dict]]:
    """A whole drill of `name` run headless by the CLI on the workspace at `root`, the
    answer key playing the engineer: its JSON summary and its journal's events. Fails
    unless the run exits 0 with a whole journal."""
    done = cli(
        "run", scenario(name), "--headless", "--engineer", "ci", "--autopilot", "--json",
        *FAST, *params, "-w", str(root), timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads(done.stdout)
    read = read_journal(Path(summary["journal"]))
    assert read.complete, read.problems
    return summary, read.events


def journals(root: Path) -> list[Path]:
    return sorted((root / "drills").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)


def newest_journal(root: Path, before: set[Path]) -> Path:
    found: list[Path] = []

    def appeared() -> bool:
        found[:] = [p for p in journals(root) if p not in before]
        return bool(found)

    wait_for(appeared, 30, "a new drill journal")
    return found[-1]


def events(path: Path) -> list[dict]:
    return read_journal(path).events


def wait_for_event(path: Path, type_: str, timeout: float = 60) -> dict:
    seen: list[dict] = []

    def present() -> bool:
        seen[:] = [e for e in events(path) if e["type"] == type_]
        return bool(seen)

    wait_for(present, timeout, f"{type_} in {path.name}")
    return seen[0]


def samples(evs: list[dict], probe: str, field: str, after: str | None = None) -> list:
    """Values of probe.field in sample order, optionally only after the first `after` event."""
    start = 0
    if after is not None:
        start = next(e["seq"] for e in evs if e["type"] == after)
    return [
        e["values"][probe][field] for e in evs if e["type"] == "probe.sample" and e["seq"] > start
    ]


def write_script(path: Path, actions: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1, "actions": actions}))
    return path


# a script that acknowledges and then waits: the fault stays in until someone acts
WAIT_SCRIPT = [{"do": "ack"}, {"wait": "recovered"}]


def stack_clean(target: LocalTarget) -> bool:
    """Every service running and healthy, with no environment override left."""
    return all(
        s.state == "running" and s.health == "healthy" and not s.env_overrides
        for s in target.status()
    )


def assert_stack_clean(target: LocalTarget, timeout: float = 20) -> None:
    try:
        wait_for(lambda: stack_clean(target), timeout, "a healthy stack with no overrides")
    except AssertionError:
        raise AssertionError(
            "stack not clean: " + repr([s.to_json() for s in target.status()])
        ) from None


def api_faults(target: LocalTarget) -> dict:
    """The fault rules the reference api holds right now."""
    import httpx

    base = target.service_endpoints("api")["http"]
    token = target.environment("api")["FAULT_TOKEN"]
    response = httpx.get(f"{base}/_pagerdrill/faults", headers={"X-Fault-Token": token})
    response.raise_for_status()
    return response.json()


def rejected(target: LocalTarget, reason: str = "throttled") -> float:
    from helpers import metric

    url = target.service_endpoints("rt")["metrics"]
    return metric(url, "rt_handshakes_rejected_total", default=0.0, reason=reason)


def settle(seconds: float) -> None:
    time.sleep(seconds)
