"""The readiness gate in the terminal, driven with Pilot (no stack needed): the gate
screen's items, evidence and next step; the register and changelog reads and the pager
question done there and recorded; and the drill's start screen showing the engineer's
readiness with the scenario the lead assigned first, marked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("textual", reason="textual is not installed: the TUI is not tested")

from textual.pilot import Pilot
from textual.widgets import Input, Label, OptionList, Static

from pagerdrill.readiness import actions
from pagerdrill.readiness.status import Context, status
from pagerdrill.tui.app import make_app
from pagerdrill.tui.readiness import GateScreen, QuizScreen, ReadinessApp, ReadScreen
from pagerdrill.tui.screens.start import StartScreen
from readying import make_workspace, write_journal

SIZE = (120, 40)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def entries(root: Path, kind: str) -> list:
    return [e for e in Context(root).records.entries("Ana Lima") if e.kind == kind]


async def wait_until(pilot: Pilot, cond: Callable[[], bool], what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)


def items_text(app: ReadinessApp) -> str:
    items = app.gate_screen.query_one("#gate-items", OptionList)
    return "\n".join(str(items.get_option_at_index(i).prompt) for i in range(items.option_count))


def next_text(app: ReadinessApp) -> str:
    return str(app.gate_screen.query_one("#gate-next", Static).content)


def test_the_gate_screen_shows_each_item_its_evidence_and_the_next_thing_to_do(ws):
    write_journal(ws, "Ana Lima")
    actions.assign(Context(ws), "Ana Lima", "redis-cache-flush", "Morgan Reyes")
    app = ReadinessApp(ws, "Ana Lima")

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            assert isinstance(app.screen, GateScreen)
            title = str(app.gate_screen.query_one("#gate-title", Label).content)
            assert title.startswith("Ana Lima — rotation 1 — 8 item(s) open")
            assert "assigned: redis-cache-flush (by Morgan Reyes)" in title
            text = items_text(app)
            marks = [line[:2] for line in text.splitlines() if line[:2] in ("✓ ", "✗ ")]
            assert len(marks) == len(Context(ws).gate.items)  # every item, one row each
            assert "✓ drill" in text and "evidence: drill 2026" in text
            assert "✗ runbook" in text
            assert "blocks: no runbook in runbooks/ names Ana Lima as its author" in text
            assert next_text(app) == (
                "next: runbook: no runbook in runbooks/ names Ana Lima as its author"
            )

    asyncio.run(run())


def test_the_register_is_read_on_the_gate_screen_after_its_pending_findings(ws):
    app = ReadinessApp(ws, "Ana Lima")

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ReadScreen), "the read")
            shown = str(app.screen.query_one("#read-text", Static).content)
            assert "pending findings in the on-call categories" in shown
            assert "SF-001" in shown
            await pilot.press("escape")  # not yet: nothing recorded
            await wait_until(pilot, lambda: isinstance(app.screen, GateScreen), "the gate")
            assert entries(ws, "read") == []
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ReadScreen), "the read")
            await pilot.press("y")
            await wait_until(pilot, lambda: len(app.recorded) == 1, "the record")
            await wait_until(pilot, lambda: "read by Ana Lima" in items_text(app), "the evidence")
            (read,) = entries(ws, "read")
            assert read.item == "security-register"

    asyncio.run(run())


def test_the_changelog_read_on_the_gate_screen_shows_the_versions_since_the_last(ws):
    app = ReadinessApp(ws, "Ana Lima")

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ReadScreen), "the read")
            shown = str(app.screen.query_one("#read-text", Static).content)
            assert "versions since your last read" in shown
            newest = next(line for line in shown.splitlines() if line.startswith("  [1."))
            await pilot.press("y")
            await wait_until(pilot, lambda: len(app.recorded) == 1, "the record")
            await wait_until(
                pilot,
                lambda: app.status is not None and app.status.item("api-changelog").done,
                "the item",
            )
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ReadScreen), "the read")
            shown = str(app.screen.query_one("#read-text", Static).content)
            assert newest not in shown  # only what came since the read

    asyncio.run(run())


@pytest.mark.parametrize(
    ("answer", "passes"),
    [
        ("ack, open the dashboards, jaeger traces, then the runbooks for a recurrence", True),
        ("I would NOT acknowledge first; dashboards, jaeger traces, runbooks", False),
    ],
)
def test_the_pager_question_on_the_gate_screen_is_timed_graded_and_recorded(ws, answer, passes):
    app = ReadinessApp(ws, "Ana Lima")

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            await pilot.press("z")
            await wait_until(pilot, lambda: isinstance(app.screen, QuizScreen), "the question")
            question = str(app.screen.query_one("#quiz-question", Label).content)
            assert question.startswith("What's the first thing you do when the pager fires?")
            app.screen.query_one("#quiz-answer", Input).value = answer
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(app.recorded) == 1, "the record")
            assert app.recorded[0].startswith("right, in " if passes else "not yet: ")
            (quiz,) = entries(ws, "quiz")
            assert quiz.answer == answer and quiz.answer_s is not None
            await wait_until(
                pilot, lambda: app.status is not None and len(entries(ws, "quiz")) == 1, "reload"
            )
            assert status(Context(ws), "Ana Lima").item("quiz").done is passes

    asyncio.run(run())


def test_the_start_screen_shows_readiness_and_the_assigned_scenario_first_marked(ws):
    write_journal(ws, "Ana Lima")
    actions.assign(Context(ws), "Ana Lima", "ws-handshake-storm", "Morgan Reyes")
    app = make_app(ws, None, "Ana Lima", {}, ensure_stack=False, autostart=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StartScreen)
            line = str(app.screen.query_one("#start-readiness", Static).content)
            assert line.startswith("Readiness of Ana Lima (rotation 1): 8 item(s) left: runbook,")
            assert "assigned scenario: ws-handshake-storm (by Morgan Reyes)" in line
            options = app.screen.query_one("#scenarios", OptionList)
            first = str(options.get_option_at_index(0).prompt)
            assert first.startswith("★ assigned by Morgan Reyes")
            assert (
                sum(
                    "★" in str(options.get_option_at_index(i).prompt)
                    for i in range(options.option_count)
                )
                == 1
            )
            options.focus()
            options.highlighted = 0
            await pilot.press("enter")
            await pilot.pause()
            assert app.engine.scenario.path.stem == "ws-handshake-storm"

    asyncio.run(run())


def test_the_start_screen_of_someone_not_on_the_roster_has_no_readiness_line(ws):
    app = make_app(ws, None, "Visitor", {}, ensure_stack=False, autostart=False)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert not app.screen.query("#start-readiness")

    asyncio.run(run())


def test_at_80_columns_a_wrapped_blocker_shows_its_last_row_on_the_gate_screen(ws):
    app = ReadinessApp(ws, "Bruno Costa")

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            await pilot.pause()
            items = app.gate_screen.query_one("#gate-items", OptionList)
            rows = " ".join(items.render_line(y).text.strip() for y in range(items.size.height))
            # the security-register item's lead blocker wraps onto a third row at 80 columns
            assert "security-register --by LEAD`)" in " ".join(rows.split())

    asyncio.run(run())


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def test_at_80x24_the_read_shows_how_to_record_it_without_scrolling(ws):
    app = ReadinessApp(ws, "Ana Lima")

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ReadScreen), "the read")
            await pilot.pause()
            assert "y: I read it cover to cover" in screen_text(app)

    asyncio.run(run())


def test_at_80x24_the_pager_question_shows_its_time_limit_whole(ws):
    app = ReadinessApp(ws, "Ana Lima")

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.status is not None, "the status")
            await pilot.press("z")
            await wait_until(pilot, lambda: isinstance(app.screen, QuizScreen), "the question")
            await pilot.pause()
            box = app.screen.query_one("#quiz").region  # what shows of it, on screen
            lines = screen_text(app).splitlines()[box.y : box.bottom]
            rows = [line[box.x + 1 : box.right - 1] for line in lines]
            assert "(answer within 30 s)" in " ".join(" ".join(rows).split())

    asyncio.run(run())
