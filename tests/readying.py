"""Helpers for readiness tests: a workspace with a roster, a gate, runbooks, documents
and drill journals written as the engine writes them."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from helpers import REPO, pagerdrill_cli

ROSTER = {
    "version": 1,
    "people": [
        {"name": "Ana Lima", "roles": ["engineer"], "contacts": {"chat": "@ana"}},
        {"name": "Bruno Costa", "roles": ["engineer"], "contacts": {"chat": "@bruno"}},
        {"name": "Dana Diaz", "roles": ["on-call", "lead"], "contacts": {"chat": "@dana"}},
        {"name": "Eli Park", "roles": ["engineer", "on-call"], "contacts": {"chat": "@eli"}},
        {"name": "Morgan Reyes", "roles": ["lead"], "contacts": {"chat": "@morgan"}},
    ],
}


def gate_data(**top) -> dict:
    """The shipped gate, without the escalation item unless asked (its own tests have a
    matrix), with `top` keys set."""
    data = yaml.safe_load((REPO / "readiness" / "gate.yaml").read_text())
    if not top.pop("escalation", False):
        data["items"] = [i for i in data["items"] if i["kind"] != "escalation"]
    data.update(top)
    return data


def make_workspace(root: Path, gate: dict | None = None, roster: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "pagerdrill.yaml", root / "pagerdrill.yaml")
    shutil.copytree(REPO / "runbooks", root / "runbooks")
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    (root / "drills").mkdir()
    (root / "readiness").mkdir()
    (root / "docs").mkdir()
    shutil.copy(REPO / "readiness" / "security-register.md", root / "readiness")
    shutil.copy(REPO / "docs" / "api-changelog.md", root / "docs")
    write_yaml(root / "readiness" / "gate.yaml", gate if gate is not None else gate_data())
    write_yaml(root / "readiness" / "roster.yaml", roster if roster is not None else ROSTER)
    return root


def write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def write_journal(
    root: Path,
    engineer: str,
    *,
    mode: str = "tui",
    severity: str = "P2",
    scenario: str = "redis-cache-flush",
    recovered: bool = True,
    reviews: tuple[tuple[str, str], ...] = (("Dana Diaz", "pass"),),
    drill: str | None = None,
    started: str = "2026-11-20T10:00:00.000Z",
) -> Path:
    """A closed drill's journal with the events readiness reads, in the engine's form."""
    drill = (
        drill
        or f"20261120T100000Z-{scenario}-{engineer.lower().replace(' ', '-')}-{os.urandom(2).hex()}"
    )
    ts = started
    events = [
        {
            "type": "drill.started",
            "engineer": engineer,
            "mode": mode,
            "scenario": {"name": scenario, "title": scenario, "severity": severity},
            "checklist": {"steps": [], "hypothesis_target_s": 600},
        },
        {"type": "page", "alert": "cache-miss", "drill_s": 1.0},
        {"type": "ack", "drill_s": 5.0},
        {"type": "hypothesis", "text": "cache flushed", "correct": True, "drill_s": 60.0},
    ]
    if recovered:
        events.append({"type": "recovery.verified", "drill_s": 200.0})
    events.append({"type": "drill.closed", "drill_s": 210.0})
    for by, verdict in reviews:
        events.append({"type": "review", "by": by, "verdict": verdict, "comment": "ok"})
    path = root / "drills" / f"{drill}.jsonl"
    with path.open("w") as fh:
        for seq, e in enumerate(events):
            fh.write(
                json.dumps({"v": 1, "seq": seq, "ts": ts, "t": float(seq), "drill": drill} | e)
                + "\n"
            )
    return path


def write_runbook(root: Path, author: str, name: str = "postgres-pool-exhaustion") -> Path:
    """A lint-clean runbook by `author`, added to the index."""
    from pagerdrill.runbooks import settings
    from pagerdrill.runbooks.index import refresh_index

    source = (root / "runbooks" / "redis-oom.md").read_text()
    body = source.split("---\n", 2)[2] if source.startswith("---\n") else source
    path = root / "runbooks" / f"{name}.md"
    path.write_text(
        f"---\nauthor: {author}\nseverity: P2\n---\n" + body.replace("# ", "# Pool exhaustion: ", 1)
    )
    refresh_index(root / "runbooks", settings(root).index)
    return path


def pagerdrill(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return pagerdrill_cli("readiness", *args, "--workspace", str(root), input=stdin)


def satisfy_all(root: Path, engineer: str) -> None:
    """Evidence and entries for every item but the sign-off."""
    from pagerdrill.readiness import actions
    from pagerdrill.readiness.records import ToolCheck
    from pagerdrill.readiness.status import Context

    write_journal(root, engineer)
    write_runbook(root, engineer, name=f"pool-{engineer.lower().replace(' ', '-')}")
    ctx = Context(root)
    actions.attest(
        ctx, engineer, "runbook", "Dana Diaz", runbook=f"pool-{engineer.lower().replace(' ', '-')}"
    )
    for doc in ("security-register", "api-changelog"):
        actions.record_read(ctx, engineer, actions.preview_read(ctx, engineer, doc))
    actions.attest(ctx, engineer, "security-register", "Dana Diaz", note="SF-001 discussed")
    actions.attest(ctx, engineer, "shadow", "Dana Diaz", date="2026-11-18", hours=12)
    actions.attest(ctx, engineer, "reverse-shadow", "Eli Park", date="2026-11-19", hours=12)
    tools = [ToolCheck(name=t.name, confirmed=True) for t in actions.access_item(ctx).tools]
    actions.record_access(ctx, engineer, tools)
    actions.record_quiz(
        ctx,
        engineer,
        "Acknowledge the page, open the dashboards, search "
        "Jaeger for error traces, then check the runbooks for a recurrence",
        8.0,
    )


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
