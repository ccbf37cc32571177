"""Keys pressed faster than the engine's events come back: the drill screen reads its
view of the drill, which follows the engine a moment later, and the app hands the
engine one action at a time in the order the keys were pressed."""

from __future__ import annotations

import asyncio
import threading
import time

import tui_demo
from pagerdrill.drill.engine import Action, DrillEngine
from pagerdrill.journal import events as ev
from pagerdrill.tui.app import DrillApp
from pagerdrill.tui.messages import EngineEvent

SIZE = (120, 40)


def _kinds(app: DrillApp) -> list[str]:
    return [a.kind for a in app.sent]  # type: ignore[attr-defined]


def test_p_twice_before_the_pause_comes_back_pauses_and_resumes(tmp_path):
    app = tui_demo.demo_app(tmp_path)  # actions are kept in app.sent, never run

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            tui_demo.page(app)
            await pilot.pause()
            await pilot.press("p", "p")  # no clock event has come back yet
            assert _kinds(app) == ["pause", "resume"]
            # the events arrive; the next p reads the screen's view again
            app.post_message(EngineEvent(ev.ClockPaused(by="coach", drill_s=30.0)))
            app.post_message(EngineEvent(ev.ClockResumed(by="coach", drill_s=30.0)))
            await pilot.pause()
            assert not app.drill_screen.view.paused
            await pilot.press("p")
            assert _kinds(app)[-1] == "pause"
            # paused by someone else (a coach's script): the screen shows it, p resumes
            app.post_message(EngineEvent(ev.ClockPaused(by="coach", drill_s=31.0)))
            await pilot.pause()
            await pilot.press("p")
            assert _kinds(app)[-1] == "resume"

    asyncio.run(run())


def test_p_after_the_pause_is_shown_resumes(tmp_path):
    app = tui_demo.demo_app(tmp_path)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            tui_demo.page(app)
            await pilot.pause()
            await pilot.press("p")
            app.post_message(EngineEvent(ev.ClockPaused(by="coach", drill_s=30.0)))
            await pilot.pause()
            assert "(paused)" in str(app.drill_screen.query_one("#status").render())
            await pilot.press("p")
            assert _kinds(app) == ["pause", "resume"]

    asyncio.run(run())


def test_actions_reach_the_engine_in_the_order_they_were_asked(tmp_path):
    """The first action is slow in the engine; the second, asked just after it, must
    still be applied after it, not beside it on another thread."""
    engine, _ = tui_demo.demo_engine(tmp_path)
    applied: list[str] = []
    guard = threading.Lock()
    inside = most = 0

    def act(action: Action) -> None:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        if action.kind == "ack":
            time.sleep(0.3)
        applied.append(action.kind)
        with guard:
            inside -= 1

    engine.act = act  # type: ignore[method-assign, assignment]
    app = DrillApp(engine, engine.target, ensure_stack=False, autostart=False)
    assert isinstance(app.engine, DrillEngine)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.act(Action("ack"))
            app.act(Action("note", text="second"))
            app.act(Action("hint"))
            deadline = time.monotonic() + 10
            while len(applied) < 3 and time.monotonic() < deadline:
                await pilot.pause(0.05)

    asyncio.run(run())
    assert applied == ["ack", "note", "hint"]
    assert most == 1, "two actions were in the engine at once"
