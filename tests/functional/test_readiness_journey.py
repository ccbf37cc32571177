"""The readiness journey end to end on the real reference stack: an engineer drives a P2
drill in the TUI (Pilot), a lead reviews it, the engineer writes a runbook that passes
lint, the matrix validates, the attestations, reads and the quiz are recorded, both sign
go and `readiness team` shows the engineer ready. A second engineer's headless autopilot
drill leaves the drill item open; with the rest done, a no-go sends them to rotation 2
with the per-rotation items reopened."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("textual", reason="textual is not installed: the TUI is not tested")

from test_readiness_escalation import PEOPLE
from test_tui import FAST, SIZE, screen_sees_recovery, wait_until
from textual.widgets import OptionList

from drilling import assert_stack_clean
from helpers import REPO, pagerdrill_cli
from pagerdrill.drill.engine import Phase
from pagerdrill.journal import read_journal
from pagerdrill.tui.app import make_app
from pagerdrill.tui.modals import HypothesisPicker, MitigationPicker
from pagerdrill.tui.screens.summary import SummaryScreen
from readying import gate_data, satisfy_all, write_runbook, write_yaml

ENGINEER = "Ana Lima"
SECOND = "Bruno Costa"


def cli(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, "--workspace", str(root), input=stdin, timeout=300)


def ok(root: Path, *args: str, stdin: str | None = None) -> str:
    done = cli(root, *args, stdin=stdin)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def readiness_files(root: Path) -> None:
    """The reference workspace's readiness and escalation files beside the stack's own
    pagerdrill.yaml (the gate with every item, the escalation one included)."""
    shutil.copytree(REPO / "runbooks", root / "runbooks", dirs_exist_ok=True)
    shutil.copytree(REPO / "scenarios", root / "scenarios", dirs_exist_ok=True)
    shutil.copytree(REPO / "escalation", root / "escalation", dirs_exist_ok=True)
    shutil.copy(REPO / "escalation-matrix.yaml", root / "escalation-matrix.yaml")
    (root / "readiness").mkdir(exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    (root / "drills").mkdir(exist_ok=True)
    shutil.copy(REPO / "readiness" / "security-register.md", root / "readiness")
    shutil.copy(REPO / "docs" / "api-changelog.md", root / "docs")
    write_yaml(root / "readiness" / "gate.yaml", gate_data(escalation=True))
    write_yaml(root / "readiness" / "roster.yaml", PEOPLE)


def drive_a_p2_drill_in_the_tui(root: Path) -> Path:
    """The engineer's own drill: bullmq-backpressure (P2), acknowledged, the right
    hypothesis, the api started from the TUI, recovery verified, resolved."""
    app = make_app(root, str(root / "scenarios" / "bullmq-backpressure.yaml"), ENGINEER, dict(FAST))
    engine = app.engine
    assert engine.model.severity == "P2"

    async def drill() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: engine.page_mono is not None, "the page", 90)
            await pilot.press("a")
            await wait_until(pilot, lambda: engine.acknowledged, "the ack")
            await pilot.press("h")
            assert isinstance(app.screen, HypothesisPicker)
            shown = engine.hypothesis_choices
            app.screen.query_one(OptionList).highlighted = next(
                i for i, c in enumerate(shown) if c.correct
            )
            await pilot.press("enter")
            await wait_until(pilot, lambda: engine.phase == Phase.HYPOTHESIS, "the hypothesis")
            await pilot.press("m")
            assert isinstance(app.screen, MitigationPicker)
            ids = [m.id for m in engine.mitigation_choices]  # the order shown
            app.screen.query_one(OptionList).highlighted = ids.index("start-consumer")
            await pilot.press("enter")
            await wait_until(pilot, lambda: screen_sees_recovery(app), "recovery", 90)
            await pilot.pause(0.2)
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen), "the summary")
            await pilot.press("q")

    asyncio.run(drill())
    assert engine.phase == Phase.CLOSED
    path = engine.journal_path
    assert path.parent == root / "drills"  # archived where the gate reads drills
    assert read_journal(path).events[0]["mode"] == "tui"
    return path


def status_of(root: Path, engineer: str) -> dict:
    done = cli(root, "readiness", "status", engineer, "--json")
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def items_of(root: Path, engineer: str) -> dict[str, dict]:
    return {i["id"]: i for i in status_of(root, engineer)["items"]}


@pytest.mark.stack
@pytest.mark.timeout(360)  # two drills (one in the TUI) and the gate's every step
def test_the_whole_readiness_journey_on_the_real_stack(stack):
    root = stack.workspace.root
    readiness_files(root)
    assert stack.service_status("api").state == "running"

    # the engineer's P2 drill in the TUI, then the lead's review of it
    journal = drive_a_p2_drill_in_the_tui(root)
    drill_id = read_journal(journal).drill_id
    assert not items_of(root, ENGINEER)["drill"]["done"]  # not reviewed yet
    ok(root, "drills", "review", drill_id, "--by", "Morgan Reyes", "--verdict", "pass")
    drill = items_of(root, ENGINEER)["drill"]
    assert drill["done"], drill["blockers"]
    assert drill["evidence"][0].startswith(f"drill {drill_id} (bullmq-backpressure, P2,")
    assert "reviewed pass by Morgan Reyes" in drill["evidence"][0]

    # a runbook the engineer wrote, lint clean and in the index, reviewed by a lead
    write_runbook(root, ENGINEER, name="pool-ana-lima")
    ok(root, "runbooks", "lint")
    ok(root, "readiness", "attest", ENGINEER, "runbook", "--by", "Dana Diaz",
       "--runbook", "pool-ana-lima")  # fmt: skip

    # the escalation matrix validates, and the gate says so
    ok(root, "escalation", "validate")
    assert items_of(root, ENGINEER)["escalation"]["done"]

    # reads, the lead's discussion of the pending findings, the shifts, access, the quiz
    register = ok(root, "readiness", "read", ENGINEER, "security-register", "--yes")
    assert "SF-001" in register
    ok(root, "readiness", "read", ENGINEER, "api-changelog", "--yes")
    ok(root, "readiness", "attest", ENGINEER, "security-register", "--by", "Dana Diaz",
       "--note", "SF-001 and SF-004 discussed")  # fmt: skip
    ok(root, "readiness", "attest", ENGINEER, "shadow", "--by", "Dana Diaz",
       "--date", "2026-11-18", "--hours", "12")  # fmt: skip
    ok(root, "readiness", "attest", ENGINEER, "reverse-shadow", "--by", "Eli Park",
       "--date", "2026-11-19", "--hours", "12")  # fmt: skip
    ok(root, "readiness", "access", ENGINEER, "--yes")
    ok(root, "readiness", "quiz", ENGINEER, stdin="acknowledge, open the dashboards, "
       "search jaeger traces for errors, then the runbooks for a recurrence\n")  # fmt: skip
    items = items_of(root, ENGINEER)
    assert [i for i, v in items.items() if not v["done"]] == ["signoff"], items

    # both sign go; the team view shows the engineer ready
    ok(root, "readiness", "signoff", ENGINEER, "--by", ENGINEER, "--role", "engineer",
       "--go", "--note", "ready for the pager")  # fmt: skip
    ok(root, "readiness", "signoff", ENGINEER, "--by", "Dana Diaz", "--role", "oncall",
       "--go", "--note", "drove the reverse shadow well")  # fmt: skip
    assert status_of(root, ENGINEER)["ready"]
    team = json.loads(ok(root, "readiness", "team", "--json"))
    rows = {r["engineer"]: r for r in team["engineers"]}
    assert rows[ENGINEER]["ready"] and rows[ENGINEER]["blocked_on"] == []
    assert rows[ENGINEER]["last_drill"] is not None
    assert ENGINEER not in {w["person"] for w in team["warnings"]}
    assert ok(root, "readiness", "verify", ENGINEER) == ""

    # the second engineer: a headless autopilot drill on the same stack does not count
    params = [a for k, v in FAST.items() for a in ("-p", f"{k}={v}")]
    ok(root, "run", "bullmq-backpressure", "--autopilot", "-e", SECOND, *params)
    drill = items_of(root, SECOND)["drill"]
    assert not drill["done"]
    assert any("ran headless" in b and "only a drill driven in the TUI counts" in b
               for b in drill["blockers"]), drill["blockers"]  # fmt: skip

    # with a TUI drill and the rest done, the on-call's no-go sends them back
    satisfy_all(root, SECOND)
    assert [i for i, v in items_of(root, SECOND).items() if not v["done"]] == ["signoff"]
    ok(root, "readiness", "signoff", SECOND, "--by", SECOND, "--role", "engineer",
       "--go", "--note", "I think I am ready")  # fmt: skip
    ok(root, "readiness", "signoff", SECOND, "--by", "Dana Diaz", "--role", "oncall",
       "--no-go", "--note", "froze on the second page; another rotation")  # fmt: skip
    st = status_of(root, SECOND)
    assert st["rotation"] == 2 and not st["ready"]
    assert st["reopen_reason"] == "no-go by Dana Diaz: froze on the second page; another rotation"
    reopened = {i["id"] for i in st["items"] if i["reopened"]}
    assert reopened == {"shadow", "reverse-shadow", "signoff"}
    assert {i["id"] for i in st["items"] if not i["done"]} == reopened
    text = cli(root, "readiness", "status", SECOND).stdout
    assert f"{SECOND} — rotation 2 — not ready: 3 item(s) open" in text
    assert "✗ shadow (again this rotation)" in text
    team = json.loads(ok(root, "readiness", "team", "--json"))
    rows = {r["engineer"]: r for r in team["engineers"]}
    assert rows[ENGINEER]["ready"] and not rows[SECOND]["ready"]
    assert rows[SECOND]["rotation"] == 2
    assert_stack_clean(stack)
