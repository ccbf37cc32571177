"""The logs pane on a team's own log format: a structlog line shows its event as the
message, a traceback is one entry with its lines under it, and the errors filter and
the error spans work on them (the workspace's `logs:` reaching the pane)."""

from __future__ import annotations

import asyncio
import dataclasses
import io

import structlog
from textual.widgets import RichLog

from pagerdrill.tui.panes import LogsScreen
from pagerdrill.workspace.config import LogFormat

SIZE = (100, 30)
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/app/orders.py", line 41, in place_order',
    "    raise ValueError(order_id)",
    "ValueError: 77",
]


def structlog_lines() -> list[str]:
    """A warning with a request id and an info line, as structlog's JSON renderer writes
    them, with a raw traceback printed between them (as an unhandled error leaves one)."""
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        log = structlog.get_logger()
        log.warning("payment.declined", request_id="req-5b1c", route="/api/pay")
        first = out.getvalue().splitlines()
        log.info("request.finished", request_id="req-5b1c")
    finally:
        structlog.reset_defaults()
    return [*first, *TRACEBACK, out.getvalue().splitlines()[-1]]


def rows_of(app) -> list[str]:
    view = app.screen.query_one("#logs", RichLog)
    region = view.content_region
    rows = [strip.text for strip in app.screen._compositor.render_strips()]
    return [row[region.x : region.right] for row in rows[region.y : region.bottom]]


def test_the_logs_pane_shows_a_structlog_event_and_groups_a_traceback(tmp_path, monkeypatch):
    import tui_demo

    monkeypatch.setitem(tui_demo.LOGS, "api", structlog_lines())
    app = tui_demo.demo_app(tmp_path)
    ws = app.engine.workspace
    fmt = LogFormat(message="event", trace_id="request_id", multiline=True)
    config = ws.config.model_copy(update={"logs": {"api": fmt}})
    app.engine.workspace = dataclasses.replace(ws, config=config)

    async def wait_for_rows(pilot, wanted: str) -> list[str]:
        for _ in range(100):
            screen = app.screen
            if isinstance(screen, LogsScreen) and screen.records:
                rows = rows_of(app)
                if any(wanted in r for r in rows):
                    return rows
            await pilot.pause(0.05)
        raise AssertionError(f"the pane never showed {wanted!r}: {rows_of(app)}")

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            tui_demo.page(app)
            await pilot.pause()
            await pilot.press("l")
            rows = await wait_for_rows(pilot, "payment.declined")
            declined = next(r for r in rows if "payment.declined" in r)
            assert " api " in declined and "WARN" in declined, rows
            assert "trace=req-5b1c" in declined, rows  # the request id, as the trace
            head = next(i for i, r in enumerate(rows) if TRACEBACK[0] in r)
            column = rows[head].index(TRACEBACK[0])
            assert "api" in rows[head][:column] and "ERR" in rows[head][:column], rows
            under = rows[head + 1 : head + 4]
            for row, text in zip(under, TRACEBACK[1:], strict=True):
                # under the message, with no time, service or level of its own
                assert not row[:column].strip(), rows
                assert row[column:].strip() == text.strip(), rows
            await pilot.press("e")
            rows = await wait_for_rows(pilot, "ValueError: 77")
            text = "\n".join(rows)
            assert "payment.declined" in text and TRACEBACK[0] in text, rows
            assert "request.finished" not in text, rows
            await pilot.press("s")
            rows = await wait_for_rows(pilot, "req-5b1c")
            assert any(r.startswith("req-5b1c ") and "warning" in r for r in rows), rows

    asyncio.run(run())


def test_a_short_entry_over_two_lines_keeps_its_second_line_under_the_message():
    from rich.text import Text

    from pagerdrill.tui.wrapping import hang

    rows = hang(
        Text("09:00:01 api ERR  "), Text("Traceback (most recent call last):\nKeyError: 'x'"), 80
    )
    assert [r.plain for r in rows] == [
        "09:00:01 api ERR  Traceback (most recent call last):",
        "                  KeyError: 'x'",
    ]
