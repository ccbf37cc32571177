"""Helpers for tests that run whole drills with the real CLI against a real stack."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from helpers import REPO, UNBUFFERED, pagerdrill_cli, start_pagerdrill, wait_for
from pagerdrill.journal import events as ev
from pagerdrill.journal import read_journal
from pagerdrill.targets.local import LocalTarget

SCENARIOS = REPO / "scenarios"
FAST = ["-p", "quiet_min_s=0.5", "-p", "quiet_max_s=1", "-p", "recovery_s=2"]


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
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


ENDS = (ev.DrillClosed.TYPE, ev.DrillAborted.TYPE)
RECOVERED = ev.RecoveryVerified.TYPE


def wait_for_event(path: Path, type_: str, timeout: float = 180) -> dict:
    """The first `type_` event of the journal at `path`, waiting for it. Fails at once
    when the drill ends without it, and either way with the journal's last events, so
    that a failure says what the drill did instead. The timeout is generous, as the
    drill's own are: a drill aborts itself when its stack does not settle in 90 s or
    nothing pages in 120 s, and a stack that has just had an outage settles only once
    its clients' 30 s error window has cleared."""
    seen: list[dict] = []
    ended: list[dict] = []

    def present() -> bool:
        evs = events(path)
        seen[:] = [e for e in evs if e["type"] == type_]
        ended[:] = [e for e in evs if e["type"] in ENDS]
        return bool(seen) or bool(ended)

    try:
        wait_for(present, timeout, f"{type_} in {path.name}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the journal ends with {_tail_events(path)}") from None
    if not seen:
        raise AssertionError(f"the drill ended without {type_}: {_tail_events(path)}")
    return seen[0]


def _tail_events(path: Path, count: int = 6) -> str:
    """The last events of a journal, probe samples left out, one line each."""
    tail = [e for e in events(path) if e["type"] != "probe.sample"][-count:]
    lines = ({k: v for k, v in e.items() if k not in ("drill", "ts", "v")} for e in tail)
    return "".join(f"\n  {json.dumps(e)[:400]}" for e in lines)


def kill_and_recover(proc: subprocess.Popen, root: Path) -> None:
    """For a test's `finally`: a drill still running when the test failed is killed and
    its faults put back by `recover`, so that one failure leaves the module's shared
    stack as it found it instead of failing every test after it."""
    if proc.poll() is not None:
        return
    proc.kill()
    proc.wait(timeout=30)
    done = cli("recover", "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout


def samples(
    evs: list[dict], probe: str, field: str, after: str | None = None, until: str | None = None
) -> list:
    """Values of probe.field in sample order, optionally only after the first `after`
    event and before the first `until` event (`recovery.verified`: the samples as the
    recovery check saw them; the stack goes on moving between that and the close)."""
    start = next(e["seq"] for e in evs if e["type"] == after) if after is not None else 0
    end = next(e["seq"] for e in evs if e["type"] == until) if until is not None else None
    return [
        e["values"][probe][field]
        for e in evs
        if e["type"] == "probe.sample" and e["seq"] > start and (end is None or e["seq"] < end)
    ]


def write_script(path: Path, actions: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1, "actions": actions}))
    return path


# a script that acknowledges and then waits: the fault stays in until someone acts
WAIT_SCRIPT = [{"do": "ack"}, {"wait": "recovered"}]


def stack_clean(target: LocalTarget) -> bool:
    """Every service running and healthy (or, with no healthcheck and no health URL,
    running with its health unknown), with no environment override left."""
    return all(
        s.state == "running" and s.health in ("healthy", "unknown") and not s.env_overrides
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


def promotions_fail(target: LocalTarget, service: str = "api") -> bool:
    """Whether the api's promotions route answers 500 where its clients reach it (the
    http-proxy fault in effect)."""
    import httpx

    base = target.service_endpoints(service)["http"]
    try:
        return httpx.get(f"{base}/api/promotions", timeout=5).status_code == 500
    except httpx.HTTPError:
        return False


def rejected(target: LocalTarget, reason: str = "throttled") -> float:
    from helpers import metric

    url = target.service_endpoints("rt")["metrics"]
    return metric(url, "rt_handshakes_rejected_total", default=0.0, reason=reason)


def settle(seconds: float) -> None:
    time.sleep(seconds)
