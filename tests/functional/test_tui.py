"""The interactive drill (`pagerdrill drill`), driven through Textual's Pilot on the real
reference stack: a whole drill from the page to the summary, and a quit mid-fault
that aborts and reverts. The start screen (no --scenario) is tested without the stack."""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip(
    "textual", reason="textual is not installed: the TUI (pagerdrill.tui) is not tested"
)

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Label, OptionList, RichLog, Static

from drilling import SCENARIOS, api_faults, assert_stack_clean, promotions_fail, scenario
from helpers import REPO, summary_from, write_workspace
from pagerdrill.drill.engine import Phase
from pagerdrill.journal import read_journal
from pagerdrill.journal.events import DrillStarted, Note
from pagerdrill.scenarios.model import load_scenario, scenario_files
from pagerdrill.timefmt import mmss
from pagerdrill.tui.app import QUIT_REASON, DrillApp, make_app
from pagerdrill.tui.modals import (
    ConfirmQuit,
    DecisionPicker,
    HypothesisPicker,
    MitigationPicker,
    NoteInput,
    StepPrompt,
)
from pagerdrill.tui.panes import LogsScreen, RunbookReader, RunbookScreen
from pagerdrill.tui.screens.drill import KEYS
from pagerdrill.tui.screens.start import BLIND_TEXT, StartScreen
from pagerdrill.tui.screens.summary import SummaryScreen
from pagerdrill.tui.wrapping import EventLog

FAST = {"quiet_min_s": "0.5", "quiet_max_s": "1", "recovery_s": "2"}
SIZE = (80, 24)


def notices(app: DrillApp) -> list[str]:
    """The notifications the app has shown (textual keeps them on the app)."""
    return [str(n.message) for n in app._notifications]


def screen_text(screen: Screen) -> str:
    return " ".join(str(label.content) for label in screen.query(Label))


def rich_log_text(screen: Screen) -> list[str]:
    return [line.text for line in screen.query_one(RichLog).lines]


async def wait_until(pilot: Pilot, cond: Callable[[], bool], what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.2)


def screen_sees_recovery(app: DrillApp) -> bool:
    """The engine verified recovery and the drill screen has the event: `r` (resolve)
    is offered by the screen's view, which follows the engine's events a moment later."""
    return app.engine.recovered and app.drill_screen.view.recovered


def new_app(stack, name: str = "api-500-injection") -> DrillApp:
    return make_app(stack.workspace.root, scenario(name), "tui-test", dict(FAST))


DASHBOARD = "http://grafana.example.test/d/api-overview?from=now-15m"


def team_checklist(root: Path) -> None:
    """The workspace's own checklist: the dashboards step links to the team's Grafana."""
    data = yaml.safe_load((REPO / "checklist.yaml").read_text())
    for step in data["steps"]:
        if step["id"] == "dashboards":
            step["url"] = DASHBOARD
    (root / "checklist.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def fake_browser(tmp_path: Path) -> tuple[str, Path]:
    """A $BROWSER that writes down the URL it is asked to open."""
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    script.chmod(0o755)
    return str(script), opened


async def wait_for_page(pilot: Pilot, app: DrillApp) -> None:
    await wait_until(pilot, lambda: app.drill_screen.page is not None, "the page")
    banner = app.drill_screen.query_one("#banner", Static)
    assert banner.display
    text = str(banner.content)
    assert "PAGE" in text and "http-5xx" in text
    assert "Error rate on the api is up" in text  # the symptom


# One drill on the real stack, driven through every key an engineer uses: a drill per
# part would multiply the suite's slowest setup. Each part is a named step below, so
# a failure names the part; the journal checks all run and report every one that fails.


async def _ack_and_tick_the_dashboards_step(pilot: Pilot, app: DrillApp, opened: Path) -> None:
    engine = app.engine
    # before the page: the phase shows, the quiet period's length never does
    await wait_until(pilot, lambda: engine.phase != Phase.SCHEDULED, "the drill start")
    await wait_for_page(pilot, app)
    status = str(app.drill_screen.query_one("#status", Static).content)
    assert "drill 0:" in status, f"the drill clock runs from the page: {status!r}"

    await pilot.press("a")
    await wait_until(pilot, lambda: engine.acknowledged, "the ack")
    await pilot.press("2")  # the second step: open the dashboards
    await wait_until(pilot, lambda: "dashboards" in engine.steps_done, "a step")
    checklist = app.drill_screen.query_one("#checklist", OptionList)
    prompt = str(checklist.get_option_at_index(1).prompt)
    assert "[✓]" in prompt, f"the dashboards step is not ticked: {prompt!r}"
    assert checklist.highlighted == 2, "the cursor moves on to the next open step"

    # the step's link: the team's dashboard, in the browser
    app.drill_screen.query_one("#checklist", OptionList).highlighted = 1
    await pilot.press("o")
    await wait_until(pilot, lambda: opened.exists(), "the browser")
    assert opened.read_text().strip() == DASHBOARD, "the browser opened another URL"


async def _read_the_error_logs_and_spans(pilot: Pilot, app: DrillApp) -> None:
    engine = app.engine
    # the logs: every service, then errors only; the clients' 500s are there (the api
    # never sees them: a proxy in front of it answers)
    await pilot.press("l")
    assert isinstance(app.screen, LogsScreen), f"l opened {app.screen!r}, not the logs"
    await pilot.press("e")
    await wait_until(
        pilot,
        lambda: any("/api/promotions failed: status 500" in t for t in rich_log_text(app.screen)),
        "the 500s in the errors-only logs",
    )
    heads = [t for t in rich_log_text(app.screen) if re.match(r"\d\d:\d\d:\d\d ", t)]
    assert heads and all(" ERR " in t or " WARN " in t for t in heads), heads
    await pilot.press("escape")
    # looking at the logs is the logs step done
    await wait_until(pilot, lambda: "logs" in engine.steps_done, "the logs step")
    # the error spans: one per trace_id, the route named
    await pilot.press("s")
    assert isinstance(app.screen, LogsScreen) and app.screen.spans, "s shows no error spans"
    await wait_until(
        pilot,
        lambda: any("traces with warnings" in t for t in rich_log_text(app.screen)),
        "the error spans",
    )
    assert any("/api/promotions" in t for t in rich_log_text(app.screen)), "no span names it"
    await pilot.press("escape")


async def _search_and_open_a_runbook(pilot: Pilot, app: DrillApp) -> None:
    await pilot.press("slash")
    assert isinstance(app.screen, RunbookScreen), f"/ opened {app.screen!r}, not runbooks"
    await pilot.press(*"promotions 500")
    await pilot.press("enter")
    hits = app.screen.hits
    assert hits and hits[0].runbook.path.name == "api-5xx-on-route.md", hits
    await pilot.press("enter")
    assert isinstance(app.screen, RunbookReader), "enter on a hit opens no reader"
    assert app.screen.runbook.title == hits[0].runbook.title
    await pilot.press("escape")
    await pilot.press("escape")
    assert app.screen is app.drill_screen, "two escapes lead back to the drill"


async def _pause_resume_and_note(pilot: Pilot, app: DrillApp) -> None:
    engine = app.engine
    # the coach pauses the clock and resumes it
    # as the coach would: press it again once the screen shows the pause (a second p
    # before that is the unit tests' case, tests/unit/test_tui_keys.py)
    view = app.drill_screen.view
    await pilot.press("p")
    await wait_until(pilot, lambda: engine.paused and view.paused, "the pause on the screen")
    await pilot.press("p")
    await wait_until(pilot, lambda: not engine.paused and not view.paused, "the resume")

    await pilot.press("n")
    assert isinstance(app.screen, NoteInput), f"n opened {app.screen!r}, not a note"
    app.screen.query_one(Input).value = "500s only on /api/promotions"
    await pilot.press("enter")


async def _make_the_paging_call_with_a_reason(pilot: Pilot, app: DrillApp) -> None:
    # step 6 asks for the call and why, showing the checklist's prompt
    await pilot.press("6")
    assert isinstance(app.screen, StepPrompt), f"6 opened {app.screen!r}, not the prompt"
    assert "If this were P0/P1 I would page now." in screen_text(app.screen)
    await pilot.press("down", "enter")  # the second call: don't page
    await pilot.press(*"P3, one route")
    await pilot.press("enter")
    await wait_until(pilot, lambda: "page-lead" in app.engine.steps_done, "step 6")
    events_log = app.drill_screen.query_one("#events", EventLog)
    assert any("(why: P3, one route)" in line for line in events_log.lines), "no reason shown"


async def _state_the_right_hypothesis_unseen_grade(pilot: Pilot, app: DrillApp) -> None:
    engine = app.engine
    await pilot.press("h")
    assert isinstance(app.screen, HypothesisPicker), f"h opened {app.screen!r}"
    # listed in the drill's shuffled order, as journalled
    shown = engine.hypothesis_choices
    options = app.screen.query_one(OptionList)
    listed = [options.get_option_at_index(i).id for i in range(options.option_count)]
    assert listed == [c.id for c in shown], "the picker's order is not the drill's"
    options.highlighted = next(i for i, c in enumerate(shown) if c.correct)
    await pilot.press("enter")
    await wait_until(pilot, lambda: engine.phase == Phase.HYPOTHESIS, "the hypothesis")
    # recorded, on screen; the grade stays hidden (the scenario's default)
    await wait_until(pilot, lambda: "hypothesis recorded" in notices(app), "the notice")
    events_log = app.drill_screen.query_one("#events", EventLog)
    await wait_until(
        pilot,
        lambda: any("hypothesis recorded:" in line for line in events_log.lines),
        "the hypothesis line",
    )
    assert not any("right" in n or "wrong" in n for n in notices(app)), "the grade showed"


async def _decide_and_take_a_hint(pilot: Pilot, app: DrillApp) -> None:
    engine = app.engine
    await pilot.press("d")
    assert isinstance(app.screen, DecisionPicker), f"d opened {app.screen!r}"
    decision_ids = [c.id for c in engine.decision_choices]  # the order shown
    app.screen.query_one(OptionList).highlighted = decision_ids.index("hours")
    await pilot.press("enter")
    events_log = app.drill_screen.query_one("#events", EventLog)
    await wait_until(
        pilot, lambda: any("decision:" in line for line in events_log.lines), "a decision"
    )
    await pilot.press("i")
    hint = engine.model.hints[0].text
    await wait_until(pilot, lambda: any(hint in line for line in events_log.lines), "a hint")


async def _mitigate_recover_and_close(pilot: Pilot, app: DrillApp) -> None:
    engine = app.engine
    await pilot.press("m")
    assert isinstance(app.screen, MitigationPicker), f"m opened {app.screen!r}"
    ids = [m.id for m in engine.mitigation_choices]  # the order shown
    app.screen.query_one(OptionList).highlighted = ids.index("disable-fault")
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen_sees_recovery(app), "recovery")
    await pilot.pause(0.2)

    await pilot.press("r")
    await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen), "the summary")
    summary = str(app.screen.query_one("#summary-text", Static).content)
    assert "Drill closed, recovery verified" in summary, summary
    assert "right" in summary, summary
    assert engine.journal_path.name in summary.replace("\n", ""), summary
    await pilot.press("q")


def _journal_has_every_kind_of_action(evs: list[dict], engine) -> None:
    types = [e["type"] for e in evs]
    for expected in ("ack", "step.done", "note", "hypothesis", "decision", "hint",
                     "mitigation", "recovery.verified", "drill.closed"):  # fmt: skip
        assert expected in types, (expected, types)
    assert evs[0]["mode"] == "tui"
    assert [e["type"] for e in evs if e["type"].startswith("clock.")] == [
        "clock.paused",
        "clock.resumed",
    ]


def _journal_has_the_steps_and_the_note(evs: list[dict], engine) -> None:
    assert {e["step"] for e in evs if e["type"] == "step.done"} >= {"acknowledge", "dashboards"}
    assert next(e for e in evs if e["type"] == "note")["text"] == "500s only on /api/promotions"
    page_lead = next(e for e in evs if e["type"] == "step.done" and e["step"] == "page-lead")
    assert (page_lead["choice"], page_lead["reason"]) == ("no-page", "P3, one route")
    assert page_lead["prompt"] == "If this were P0/P1 I would page now."


def _journal_has_the_choices_in_the_order_shown(evs: list[dict], engine) -> None:
    hypothesis = next(e for e in evs if e["type"] == "hypothesis")
    assert hypothesis["correct"] is True and hypothesis["grade"] == "right", hypothesis
    assert evs[0]["hypotheses"]["shown"] == [c.id for c in engine.hypothesis_choices]
    decision = next(e for e in evs if e["type"] == "decision")
    assert decision["choice"] == "hours" and decision["correct"] is True, decision
    assert evs[0]["decision"]["shown"] == [c.id for c in engine.decision_choices]
    assert evs[0]["mitigations"]["shown"] == [m.id for m in engine.mitigation_choices]
    assert next(e for e in evs if e["type"] == "mitigation")["mitigation"] == "disable-fault"


def _journal_has_the_evidence_against_its_steps(evs: list[dict], engine) -> None:
    # what the engineer looked at is journalled against the step it evidences
    evidence = {(e["step"], e["what"]) for e in evs if e["type"] == "evidence"}
    assert evidence >= {
        ("dashboards", "url"),
        ("logs", "logs"),
        ("error-spans", "error-spans"),
        ("recurrence", "runbook-search"),
        ("recurrence", "runbook-open"),
    }, evidence
    url = next(e for e in evs if e["type"] == "evidence" and e["what"] == "url")
    assert url["about"] == DASHBOARD
    assert "errors of all services" in {
        e["about"] for e in evs if e["type"] == "evidence" and e["what"] == "logs"
    }


JOURNAL_CHECKS = (
    _journal_has_every_kind_of_action,
    _journal_has_the_steps_and_the_note,
    _journal_has_the_choices_in_the_order_shown,
    _journal_has_the_evidence_against_its_steps,
)


@pytest.mark.stack
def test_a_whole_drill_from_the_page_to_the_summary(stack, tmp_path, monkeypatch):
    root = stack.workspace.root
    shutil.copytree(REPO / "runbooks", root / "runbooks", dirs_exist_ok=True)
    team_checklist(root)
    browser, opened = fake_browser(tmp_path)
    monkeypatch.setenv("BROWSER", browser)
    app = new_app(stack)
    engine = app.engine

    async def drill() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await _ack_and_tick_the_dashboards_step(pilot, app, opened)
            await _read_the_error_logs_and_spans(pilot, app)
            await _search_and_open_a_runbook(pilot, app)
            await _pause_resume_and_note(pilot, app)
            await _make_the_paging_call_with_a_reason(pilot, app)
            await _state_the_right_hypothesis_unseen_grade(pilot, app)
            await _decide_and_take_a_hint(pilot, app)
            await _mitigate_recover_and_close(pilot, app)

    asyncio.run(drill())
    assert engine.phase == Phase.CLOSED
    read = read_journal(engine.journal_path)
    assert read.complete, read.problems
    failed = []
    for check in JOURNAL_CHECKS:
        try:
            check(read.events, engine)
        except AssertionError as err:
            failed.append(f"{check.__name__}: {err}")
    assert not failed, "\n".join(failed)
    assert api_faults(stack) == {}
    assert_stack_clean(stack)


@pytest.mark.stack
def test_a_scenario_with_live_feedback_shows_each_hypothesis_grade_as_it_is_stated(stack):
    """`feedback: live` (a practice drill): the trainee sees the grade on stating it,
    and free text the matcher is not sure of says it is for the lead to grade."""
    root = stack.workspace.root
    (root / "scenarios").mkdir(exist_ok=True)
    text = (REPO / "scenarios" / "api-500-injection.yaml").read_text()
    assert text.count("  feedback: hidden") == 1
    path = root / "scenarios" / "api-500-injection.yaml"
    path.write_text(text.replace("  feedback: hidden", "  feedback: live"))
    app = make_app(root, str(path), "tui-test", dict(FAST))
    engine = app.engine

    async def drill() -> None:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_for_page(pilot, app)
            await pilot.press("h")
            assert isinstance(app.screen, HypothesisPicker)
            app.screen.query_one(Input).focus()
            await pilot.press(*"not the promotions route, it is fine")
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: "hypothesis recorded (for the lead to grade)" in notices(app),
                "the notice for free text the matcher is not sure of",
            )
            await pilot.press("h")
            shown = engine.hypothesis_choices
            app.screen.query_one(OptionList).highlighted = next(
                i for i, c in enumerate(shown) if c.correct
            )
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: "hypothesis recorded (right)" in notices(app), "the right notice"
            )
            events_log = app.drill_screen.query_one("#events", EventLog)
            assert any("hypothesis recorded (right):" in line for line in events_log.lines)
            await pilot.press("q", "y")
            await wait_until(pilot, lambda: engine.done, "the abort", timeout=30)
            await pilot.pause(0.5)

    asyncio.run(drill())
    grades = [e["grade"] for e in read_journal(engine.journal_path).events
              if e["type"] == "hypothesis"]  # fmt: skip
    assert grades == ["ungraded", "right"]
    assert api_faults(stack) == {}
    assert_stack_clean(stack)


ALL_SCENARIOS = [
    "api-500-injection",
    "bullmq-backpressure",
    "redis-cache-flush",
    "signin-failure-spike",
    "ws-handshake-storm",
]


@pytest.mark.stack
@pytest.mark.parametrize("name", ALL_SCENARIOS)
def test_quitting_mid_fault_aborts_the_drill_and_reverts_the_fault(stack, name):
    app = new_app(stack, name)
    engine = app.engine

    async def drill() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: engine.page_mono is not None, "the page", 90)
            if name == "api-500-injection":
                assert promotions_fail(stack)  # the fault is in
            await pilot.press("q")
            assert isinstance(app.screen, ConfirmQuit)
            await pilot.press("n")  # changed my mind: the drill goes on
            assert not isinstance(app.screen, ConfirmQuit) and not engine.done
            await pilot.press("q")
            await pilot.press("y")
            await wait_until(pilot, lambda: engine.done, "the abort", timeout=30)
            await pilot.pause(0.5)

    asyncio.run(drill())
    assert engine.phase == Phase.ABORTED
    evs = read_journal(engine.journal_path).events
    types = [e["type"] for e in evs]
    assert "fault.injected" in types and "page" in types
    aborted = next(e for e in evs if e["type"] == "drill.aborted")
    assert aborted["reason"] == QUIT_REASON
    assert aborted["revert_failed"] == []
    injected = {e["fault"] for e in evs if e["type"] == "fault.injected"}
    reverted = {e["fault"] for e in evs if e["type"] == "fault.reverted"}
    assert injected <= reverted, (injected, reverted)
    assert not promotions_fail(stack)
    assert_stack_clean(stack)


@pytest.mark.stack
def test_recovery_made_in_the_engineers_own_shell_is_detected(stack):
    """The engineer starts the api from their own terminal, not from the TUI: the
    probes see the recovery and the drill can be resolved."""
    app = new_app(stack, "bullmq-backpressure")
    engine = app.engine

    async def drill() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: engine.page_mono is not None, "the page", 90)
            await pilot.press("a")
            assert stack.service_status("api").state != "running"
            stack.start("api")  # what `pagerdrill stack start api` does, outside the app
            await wait_until(pilot, lambda: screen_sees_recovery(app), "the recovery", 90)
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen), "the summary")

    asyncio.run(drill())
    evs = read_journal(engine.journal_path).events
    types = [e["type"] for e in evs]
    assert "mitigation" not in types  # nothing was done through the TUI
    assert types.index("page") < types.index("recovery.verified") < types.index("drill.closed")
    assert_stack_clean(stack)


# ---------------------------------------------------------------- start screen (no stack)


def start_app(tmp_path: Path) -> tuple[DrillApp, list[Path]]:
    """The app of `pagerdrill drill` without --scenario, over a workspace holding the repo's
    scenarios; it never starts the drill (nor the stack)."""
    root = write_workspace(tmp_path / "ws")
    shutil.copytree(SCENARIOS, root / "scenarios")
    app = make_app(root, None, "start-test", {}, ensure_stack=False, autostart=False)
    return app, scenario_files(root)


def visible_text(screen: Screen) -> str:
    out: list[str] = []
    for widget in screen.query("*"):
        if isinstance(widget, Static):
            out.append(str(widget.content))
        elif isinstance(widget, OptionList):
            out += [str(widget.get_option_at_index(i).prompt) for i in range(widget.option_count)]
        elif isinstance(widget, EventLog):
            out += list(widget.lines)
    return "\n".join(out)


def test_the_start_screen_lists_the_scenarios_and_builds_the_picked_one(tmp_path):
    app, files = start_app(tmp_path)
    models = [load_scenario(p).model for p in files]
    assert len(models) >= 2

    async def pick() -> None:
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StartScreen)
            text = visible_text(app.screen)
            for m in models:
                assert m.title in text
                assert m.symptom.strip() in text
                assert m.root_cause.strip()[:40] not in text  # never the cause
            assert BLIND_TEXT in text
            engineer = app.screen.query_one("#engineer", Input)
            assert engineer.value == "start-test"
            engineer.value = "Ada Lovelace"
            options = app.screen.query_one("#scenarios", OptionList)
            options.focus()
            options.highlighted = 1
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is app.drill_screen
            assert app.engine.scenario.path == files[1]
            assert app.engine.model.title == models[1].title
            assert app.engine.engineer == "Ada Lovelace"
            assert not app.engine.blind
            assert app.engine.phase == Phase.SCHEDULED and app.engine.journal is None

    asyncio.run(pick())


def test_a_blind_pick_hides_the_scenario_until_the_summary(tmp_path):
    app, files = start_app(tmp_path)

    async def pick() -> None:
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StartScreen)
            options = app.screen.query_one("#scenarios", OptionList)
            options.highlighted = options.option_count - 1  # the blind entry, last
            assert BLIND_TEXT in str(options.get_option_at_index(options.highlighted).prompt)
            app.screen.query_one("#engineer", Input).focus()
            await pilot.press("enter")  # enter in the engineer box starts the highlighted
            await pilot.pause()
            engine = app.engine
            assert engine.blind
            assert engine.scenario.path in files
            assert engine.engineer == "start-test"
            assert app.screen is app.drill_screen
            # the drill id names the scenario: the start line does not show it
            app.drill_screen.apply_event(DrillStarted(drill=engine.drill_id))
            await pilot.pause()
            text = visible_text(app.screen)
            assert "drill started" in text
            assert engine.model.title not in text
            assert engine.scenario.name not in text
            assert engine.phase == Phase.SCHEDULED and engine.journal is None

    asyncio.run(pick())


def test_help_shows_every_key_in_place_and_gives_the_checklist_back(tmp_path):
    from tui_demo import demo_app, page

    app = demo_app(tmp_path)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            screen = app.drill_screen
            checklist = screen.query_one("#checklist", OptionList)
            await pilot.press("question_mark")
            panel = screen.query_one("#help-panel", Static)
            assert panel.display
            assert app.screen is screen  # a panel over the drill, not a screen of its own
            assert panel.region.y == 1 and panel.region.height > len(KEYS)  # under the status
            text = str(panel.content)
            for key in ("a", "1-9", "o", "l", "s", "/", "n", "h", "m", "d", "i", "r", "p"):
                assert f"{key}  " in text, key
            assert "ctrl+c  quit" in text
            await pilot.press("escape")
            assert not panel.display
            assert screen.query_one("#banner").display  # paged: the banner is there
            assert app.focused is checklist
            before = checklist.highlighted
            await pilot.press("down")
            assert checklist.highlighted == (before or 0) + 1

    asyncio.run(run())


# ------------------------------------------------------- layout at 80x24


def region_rows(app: DrillApp, region) -> list[str]:
    """The text the terminal shows inside `region`, one string a row: what the
    compositor drew, not what a widget holds."""
    rows = [strip.text for strip in app.screen._compositor.render_strips()]
    return [row[region.x : region.right] for row in rows[region.y : region.bottom]]


FRAME = str.maketrans("", "", "▊▎▔▁")
"""The tall border's edges (an option list's frame) that a wrapped line runs between."""


def squeezed(text: str) -> str:
    return " ".join(text.translate(FRAME).split())


DECIDING = [
    path.stem
    for path in sorted(SCENARIOS.glob("*.yaml"))
    if load_scenario(path).model.decision is not None
]


@pytest.mark.parametrize("name", DECIDING)
def test_the_decision_prompt_and_its_choices_are_shown_whole_at_80x24(tmp_path, name):
    from tui_demo import demo_app, page

    app = demo_app(tmp_path, name)
    decision = app.engine.model.decision
    assert decision is not None

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            await pilot.press("d")
            await pilot.pause()
            assert isinstance(app.screen, DecisionPicker)
            dialog = app.screen.query_one(".dialog")
            shown = squeezed(" ".join(region_rows(app, dialog.content_region)))
            assert squeezed(decision.prompt) in shown
            for choice in decision.choices:
                assert squeezed(choice.text) in shown, choice.id
            assert "…" not in shown

    asyncio.run(run())


def options(app: DrillApp) -> list[str | None]:
    listed = app.screen.query_one(OptionList)
    return [listed.get_option_at_index(i).id for i in range(listed.option_count)]


def drill_id_with_the_right_one_not_first(app: DrillApp, name: str) -> str:
    """A drill id under which neither the right decision nor the right mitigation is
    listed first, so file order (the right one first) cannot pass for the drill's."""
    engine = app.engine
    right = set(engine.model.answer.mitigations)
    for n in range(100):
        engine.drill_id = f"20261122T090000Z-{name}-dana-{n:04x}"
        if not engine.decision_choices[0].correct and engine.mitigation_choices[0].id not in right:
            return engine.drill_id
    raise AssertionError("no such drill id")


@pytest.mark.parametrize("name", DECIDING)
def test_the_decision_and_mitigation_pickers_list_the_drills_shuffled_order(tmp_path, name):
    from tui_demo import demo_app, page

    app = demo_app(tmp_path, name)
    engine = app.engine
    drill_id_with_the_right_one_not_first(app, name)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            await pilot.press("d")
            await pilot.pause()
            assert isinstance(app.screen, DecisionPicker)
            assert options(app) == [c.id for c in engine.decision_choices]
            await pilot.press("down", "enter")
            await pilot.pause()
            await pilot.press("m")
            await pilot.pause()
            assert isinstance(app.screen, MitigationPicker)
            assert options(app) == [m.id for m in engine.mitigation_choices]
            await pilot.press("enter")
            await pilot.pause()

    asyncio.run(run())
    # what the trainee picked is sent by id, from the place it was shown in
    decision, mitigation = app.sent  # type: ignore[attr-defined]
    assert decision.choice == engine.decision_choices[1].id
    assert mitigation.mitigation == engine.mitigation_choices[0].id


STEP = re.compile(r"^(\s*)(\d) \[.\] ")


def step_rows(rows: list[str]) -> dict[int, list[str]]:
    """Each checklist step's rows on screen (its first row and its continuations)."""
    out: dict[int, list[str]] = {}
    current: int | None = None
    for row in rows:
        m = STEP.match(row)
        if m:
            current = int(m.group(2))
            out[current] = [row]
        elif current is not None and row.strip():
            out[current].append(row)
    return out


def test_long_checklist_titles_wrap_under_their_text_with_the_times_kept_together(tmp_path):
    from tui_demo import demo_app, page

    app = demo_app(tmp_path)
    steps = app.engine.checklist.steps
    longest = sorted(range(len(steps)), key=lambda i: len(steps[i].title))[-2:]

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            checklist = app.drill_screen.query_one("#checklist", OptionList)
            for i in [0, *longest]:
                checklist.highlighted = i  # scrolled into view
                await pilot.pause()
                rows = step_rows(region_rows(app, checklist.content_region))[i + 1]
                prefix = STEP.match(rows[0])
                assert prefix is not None
                indent = len(prefix.group(0))
                target = f"≤{mmss(steps[i].target_for(app.engine.model.severity))}"
                # the title whole, every continuation row under its text (the times
                # may take a row of their own, at the right)
                assert squeezed(steps[i].title) in squeezed(" ".join(rows)), rows
                for row in rows[1:]:
                    assert row[:indent].strip() == "", rows
                    assert target in row or row[indent] != " ", rows
                tail = next(row for row in rows if target in row)
                if i == 0:  # acknowledged at 0:12: the time by its target, never alone
                    assert "0:12" in tail, rows
            assert len(step_rows(region_rows(app, checklist.content_region))[1]) >= 1

    asyncio.run(run())


def test_an_event_line_longer_than_the_pane_wraps_under_its_text_and_rewraps_on_resize(
    tmp_path,
):
    from tui_demo import demo_app, page

    app = demo_app(tmp_path)
    note = (
        "the delayed count fell from about 60 to 0 at 09:01 while waiting climbed, "
        "so the producer's unaccounted jobs are the ones to replay from the ledger"
    )

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            app.drill_screen.apply_event(Note(drill_s=95.0, text=note))
            await pilot.pause()
            await pilot.pause()
            for width in (80, 60):
                await pilot.resize_terminal(width, 24)
                await pilot.pause()
                await pilot.pause()
                events = app.drill_screen.query_one("#events")
                rows = region_rows(app, events.content_region)
                first = next(i for i, row in enumerate(rows) if row.startswith("[1:35] note:"))
                mine = [r for r in rows[first:] if r.strip()]
                assert len(mine) >= 2, rows  # wrapped, not cut
                assert squeezed(" ".join(mine)) == f"[1:35] note: {note}"  # the newest, last
                for row in mine[1:]:
                    assert row.startswith(" " * 7) and row[7] != " ", rows

    asyncio.run(run())


JOURNALS = Path(__file__).resolve().parents[1] / "fixtures" / "journals"


def test_the_summary_wraps_long_step_titles_under_their_text_with_the_times_in_line(tmp_path):
    from msgspec.structs import replace

    from pagerdrill.journal.summary import summary_of
    from tui_demo import demo_app

    summary = summary_of(read_journal(JOURNALS / "bullmq-backpressure.jsonl"))
    summary = replace(summary, journal="drills/bullmq-backpressure.jsonl")
    steps = summary.steps
    assert max(len(s.title) for s in steps) > 50  # some titles are longer than fit
    app = demo_app(tmp_path)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(SummaryScreen(summary, "The api was stopped."))
            await pilot.pause()
            for width in (80, 70):
                await pilot.resize_terminal(width, 24)
                await pilot.pause()
                await pilot.pause()
                text = app.screen.query_one("#summary-text", Static)
                rows = region_rows(app, text.region)
                start = next(i for i, r in enumerate(rows) if r.strip().startswith("Checklist"))
                end = next(i for i, r in enumerate(rows) if r.strip().startswith("Hypothesis"))
                table = [r for r in rows[start + 1 : end] if r.strip()]
                assert "…" not in " ".join(table), table
                columns = set()
                at = 0
                for step in steps:
                    target = mmss(step.target_s)
                    # the step's rows: up to the one that holds its target (its last)
                    mine = []
                    while True:
                        mine.append(table[at])
                        at += 1
                        if re.search(rf"\s{re.escape(target)}\s", mine[-1][-28:]):
                            break
                    body = squeezed(" ".join(r[:-26] for r in mine))
                    assert body == squeezed(step.title), mine
                    first_col = len(mine[0]) - len(mine[0].lstrip())
                    for row in mine[1:]:  # continued under the title's text
                        assert len(row) - len(row.lstrip()) == first_col, mine
                    columns.add(mine[-1].rindex(target) + len(target))
                assert len(columns) == 1, table  # every target in one column
                assert at == len(table), table

    asyncio.run(run())


LONG_WARNING = (
    "handshake refused (throttled) from 203.0.113.7: 150 since it started, "
    "the per-source limit of 20 a second has held for the last 40 seconds"
)
LONG_INFO = (
    "cold read of market 7 served from the origin after a miss in the cache, "
    "the read took 48 ms and refilled the key for the next 30 seconds (cold cache)"
)


def long_log_lines(monkeypatch) -> None:
    import tui_demo

    rt = [
        tui_demo._log("01:06.000", "warning", "rt", LONG_WARNING, "07e165632a8a1c69" * 2),
        tui_demo._log("01:06.500", "info", "rt", LONG_INFO, None),
    ]
    monkeypatch.setitem(tui_demo.LOGS, "rt", rt)


async def open_pane(pilot: Pilot, app: DrillApp, key: str) -> list[str]:
    await pilot.press(key)
    await wait_until(
        pilot, lambda: isinstance(app.screen, LogsScreen) and bool(app.screen.records), "logs"
    )
    await pilot.pause()
    await pilot.pause()
    view = app.screen.query_one("#logs", RichLog)
    return region_rows(app, view.content_region)


def test_an_error_span_shows_its_header_then_its_message_once_wrapped_under_an_indent(
    tmp_path, monkeypatch
):
    from tui_demo import demo_app, page

    long_log_lines(monkeypatch)
    app = demo_app(tmp_path)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            rows = await open_pane(pilot, app, "s")
            head = next(i for i, r in enumerate(rows) if r.startswith("07e165632a8a1c69 "))
            assert re.match(r"07e165632a8a1c69 09:01:06 warning\s+rt\s*$", rows[head]), rows
            message = []
            for row in rows[head + 1 :]:
                if not row.startswith("    ") or not row.strip():
                    break
                assert row[4] != " ", rows  # under the indent, not at column 0
                message.append(row)
            assert squeezed(" ".join(message)) == LONG_WARNING, rows  # whole, once
            assert squeezed(" ".join(rows)).count("handshake refused") == 1, rows

    asyncio.run(run())


def test_a_long_log_line_wraps_under_its_message_and_rewraps_on_resize(tmp_path, monkeypatch):
    from tui_demo import demo_app, page

    long_log_lines(monkeypatch)
    app = demo_app(tmp_path)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            await open_pane(pilot, app, "l")
            for width in (80, 64, 120):
                await pilot.resize_terminal(width, 24)
                await pilot.pause()
                await pilot.pause()
                await pilot.pause()
                view = app.screen.query_one("#logs", RichLog)
                rows = region_rows(app, view.scrollable_content_region)
                for text, tag in ((LONG_WARNING, "WARN"), (LONG_INFO, "INFO")):
                    first = next(i for i, r in enumerate(rows) if text[:20] in r)
                    prefix = re.match(rf"09:01:06 rt\s+{tag} ", rows[first])
                    assert prefix is not None, rows
                    indent = len(prefix.group(0))
                    mine = [rows[first]]
                    for row in rows[first + 1 :]:
                        if row[:indent].strip() or not row.strip():
                            break
                        mine.append(row)
                    assert len(mine) >= 2, rows
                    for above, row in itertools.pairwise(mine):
                        assert row[indent] != " ", rows
                        # wrapped where the pane ends, not sooner
                        word = row.split()[0]
                        assert len(above.rstrip()) + 1 + len(word) > len(row), rows
                    assert text in squeezed(" ".join(r[indent:] for r in mine)), rows

    asyncio.run(run())


def test_down_from_the_runbook_query_then_enter_opens_the_first_hit(tmp_path):
    from tui_demo import demo_app, page

    app = demo_app(tmp_path)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            await pilot.press("slash")
            assert isinstance(app.screen, RunbookScreen)
            await pilot.press(*"queue")
            await pilot.pause()
            screen = app.screen
            assert len(screen.hits) >= 2
            await pilot.press("down")
            await pilot.pause()
            hits = screen.query_one("#runbook-hits", OptionList)
            assert hits.has_focus and hits.highlighted == 0
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, RunbookReader)
            assert app.screen.runbook == screen.hits[0].runbook

    asyncio.run(run())


def test_the_summary_says_when_the_alert_resolved_by_itself_and_what_fired_before_the_fault():
    from pagerdrill.tui.screens.summary import summary_text

    base: dict[str, Any] = {
        "outcome": "closed", "recovery_verified": True, "title": "T", "severity": "P2",
        "engineer": "e", "paged": True, "page_alert": "a", "time_to_ack_s": 1.0, "steps": [],
        "hypothesis": {"attempts": 0}, "hints_used": 0, "notes": 0, "time_to_mitigate_s": None,
        "time_to_recovery_s": 9.0, "journal": "j.jsonl",
    }  # fmt: skip
    quiet = summary_text(summary_from(base)).plain
    assert "by itself" not in quiet and "before the fault" not in quiet
    text = summary_text(summary_from(base | {"symptom_faded_s": 8.4, "alerts_before_fault": 1}))
    text = text.plain
    assert "The alert resolved by itself at T+00:08, before any mitigation" in text
    assert "1 alert fired before the fault" in text


def test_the_runbook_screen_reads_no_file_when_built_the_app_reads_them_in_a_worker(tmp_path):
    from textual.message import Message

    from pagerdrill.tui.messages import RunbooksLoaded
    from tui_demo import demo_app, page

    app = demo_app(tmp_path)
    root = app.engine.workspace.root
    built = RunbookScreen(root, lambda *_: None)
    assert built.runbooks == [] and not built.loaded, "the screen read the runbooks itself"
    seen: list[Message] = []

    async def run() -> None:
        async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
            page(app)
            await pilot.pause()
            await pilot.press("slash")
            screen = app.screen
            assert isinstance(screen, RunbookScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            loaded = [m for m in seen if isinstance(m, RunbooksLoaded)]
            assert len(loaded) == 1 and screen.loaded
            names = {r.path.name for r in screen.runbooks}
            assert names == {p.name for p in (root / "runbooks").glob("*.md")} - {"README.md"}

    asyncio.run(run())


def test_a_runbook_folder_that_cannot_be_read_is_told_to_the_engineer(tmp_path, monkeypatch):
    import pagerdrill.runbooks
    from tui_demo import demo_app, page

    def unreadable(root):
        raise PermissionError(f"{root}/runbooks: permission denied")

    monkeypatch.setattr(pagerdrill.runbooks, "load_runbooks", unreadable)
    app = demo_app(tmp_path)
    told: list[str] = []
    app.notify = lambda message, **kw: told.append(str(message))  # type: ignore[method-assign]

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            page(app)
            await pilot.pause()
            await pilot.press("slash")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(app.screen, RunbookScreen) and not app.screen.loaded

    asyncio.run(run())
    assert any(t.startswith("could not read the runbooks: ") for t in told), told


def test_a_newer_read_of_the_logs_replaces_one_not_yet_shown_and_nothing_else():
    older, newer = LogsScreen.Read([]), LogsScreen.Read([])
    assert older.can_replace(newer)
    assert not older.can_replace(LogsScreen.Opened())
    assert not LogsScreen.Read.bubble
