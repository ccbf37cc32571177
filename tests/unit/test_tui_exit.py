"""The drill screen on the app's way out: the engine's last events may arrive after
`exit()` has begun taking the widgets down (a quit's abort does), and must not crash
the app with a query for a widget that is gone."""

from __future__ import annotations

import asyncio

import tui_demo
from pagerdrill.journal import events as ev
from pagerdrill.tui.messages import EngineEvent, StackLine


def test_events_that_arrive_while_the_app_exits_are_not_drawn(tmp_path):
    app = tui_demo.demo_app(tmp_path)
    drawn: list[ev.Event] = []

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            tui_demo.page(app)
            await pilot.pause()
            screen = app.drill_screen
            apply = screen.apply_event

            def record(event: ev.Event) -> None:
                drawn.append(event)
                apply(event)

            screen.apply_event = record  # type: ignore[method-assign]
            app.post_message(EngineEvent(ev.Note(drill_s=80.0, text="before the quit")))
            await pilot.pause()
            # exit() first, the abort's events after it, as a quit can deliver them
            app.exit()
            screen.query_one("#events").remove()
            app.post_message(EngineEvent(ev.DrillAborted(reason="quit from the TUI")))
            app.post_message(StackLine("taking down the stack"))
            await pilot.pause()

    asyncio.run(run())  # run_test re-raises whatever crashed the app
    assert [type(e) for e in drawn] == [ev.Note]
