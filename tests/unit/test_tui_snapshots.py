"""Snapshots (pytest-textual-snapshot) of the drill's main screens at 80x24 and 120x40:
the start screen, the drill screen once paged, the help overlay, the logs and error
spans panes, runbook search and the summary. The screens are put in a known state
(tests/tui_demo.py), so a changed pixel is a changed screen.

After an intended change to a screen, regenerate with
`pytest tests/unit/test_tui_snapshots.py --snapshot-update` and look at the SVGs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytest_textual_snapshot", reason="pytest-textual-snapshot is not installed")

from msgspec.structs import replace
from textual.pilot import Pilot

from pagerdrill.journal import read_journal
from pagerdrill.journal.events import ProbeSample
from pagerdrill.journal.summary import summary_of
from pagerdrill.tui.panes import LogsScreen
from pagerdrill.tui.screens.summary import SummaryScreen
from tui_demo import demo_app, page, start_app

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
JOURNALS = Path(__file__).resolve().parents[1] / "fixtures" / "journals"


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_start_screen(snap_compare, tmp_path, size):
    assert snap_compare(start_app(tmp_path), terminal_size=size)


async def _paged(pilot: Pilot) -> None:
    page(pilot.app)  # type: ignore[arg-type]
    await pilot.pause()
    await pilot.pause()  # the banner laid out: the events pane follows its last line


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_drill_screen_paged(snap_compare, tmp_path, size):
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=_paged)


def test_snapshot_help_overlay(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), press=["question_mark"], run_before=_paged)


def _pane(*keys: str):
    """Paged, then the keys, then wait until the pane has read the (fixed) logs."""

    async def run(pilot: Pilot) -> None:
        await _paged(pilot)
        await pilot.press(*keys)
        for _ in range(100):
            screen = pilot.app.screen
            if isinstance(screen, LogsScreen) and screen.records:
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError("the logs pane never read the logs")
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_logs_errors_only(snap_compare, tmp_path, size):
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=_pane("l", "e"))


def test_snapshot_error_spans(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), run_before=_pane("s"))


def test_snapshot_runbook_search(snap_compare, tmp_path):
    keys = ["slash", *"queue", "enter"]
    assert snap_compare(demo_app(tmp_path), press=keys, run_before=_paged)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_summary(snap_compare, tmp_path, size):
    path = JOURNALS / "bullmq-backpressure.jsonl"
    summary = replace(summary_of(read_journal(path)), journal="drills/bullmq-backpressure.jsonl")
    app = demo_app(tmp_path)

    async def show(pilot: Pilot) -> None:
        await pilot.app.push_screen(SummaryScreen(summary, "The api (the consumer) was stopped."))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=show)


async def _quiet(pilot: Pilot) -> None:
    """Before the page: the stack's standard signals only."""
    from tui_demo import sample_values

    for i in range(12):
        pilot.app.drill_screen.apply_event(  # type: ignore[attr-defined]
            ProbeSample(values=sample_values(i))
        )
    await pilot.pause()


def test_snapshot_drill_screen_quiet(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), terminal_size=(80, 24), run_before=_quiet)


def test_snapshot_hypothesis_dialog(snap_compare, tmp_path):
    """The choices in the drill's shuffled order, each about as long as the others."""
    assert snap_compare(demo_app(tmp_path), terminal_size=(80, 24), press=["h"],
                        run_before=_paged)  # fmt: skip


def test_snapshot_page_the_lead_prompt(snap_compare, tmp_path):
    """Step 6: the checklist's prompt, the call and the reason, whole at 80x24."""
    assert snap_compare(demo_app(tmp_path), terminal_size=(80, 24), press=["6"],
                        run_before=_paged)  # fmt: skip


def test_snapshot_decision_dialog(snap_compare, tmp_path):
    """The longest shipped decision prompt, wrapped whole with its choices, at 80x24."""
    assert snap_compare(demo_app(tmp_path, "redis-cache-flush"), terminal_size=(80, 24),
                        press=["d"], run_before=_paged)  # fmt: skip
