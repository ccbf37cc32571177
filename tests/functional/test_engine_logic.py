"""The engine's own rules, on a stand-in target and a clock the test moves: failed
reverts are retried and never reported as done, a journal that cannot be written does
not stop reverts, a page is only ever the fault's, a paused drill still ends.
(What the faults do to a real stack is tested against the real one elsewhere.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pagerdrill.drill.engine import Action, DrillEngine, Phase
from pagerdrill.drill.recover import recover
from pagerdrill.journal import read_journal
from pagerdrill.journal.summary import exit_code, summary_of
from standin import advance, stand_in_drill, stand_in_scenario

SCENARIO = stand_in_scenario(fault=", duration_s: DURATION")


def make(tmp_path: Path, duration: str = "null"):
    engine, target, clock, ws = stand_in_drill(tmp_path, SCENARIO.replace("DURATION", duration))
    engine.start()
    return engine, target, clock, ws


def types(engine: DrillEngine) -> list[str]:
    return [e["type"] for e in read_journal(engine.journal_path).events]


def test_a_scheduled_revert_that_fails_is_retried_not_reported_done(tmp_path):
    engine, target, clock, _ = make(tmp_path, duration="3")
    advance(engine, clock, 3)
    assert engine.phase == Phase.PAGED and target.state["api"] == "stopped"
    target.failing_starts = 1
    advance(engine, clock, 4)
    assert "fault.revert_failed" in types(engine)
    assert "fault.reverted" not in types(engine)
    advance(engine, clock, 6)  # tried again
    assert "fault.reverted" in types(engine) and target.state["api"] == "running"
    engine.abort("test over")


def test_a_revert_that_fails_at_close_is_reported_and_finished_by_recover(tmp_path):
    engine, target, clock, ws = make(tmp_path)
    advance(engine, clock, 3)
    engine.act(Action("ack"))
    target.failing_starts = 5  # two tries at close fail, then recover's works
    engine.act(Action("resolve"))
    assert engine.phase == Phase.CLOSED
    assert engine.revert_failed == ["stop-api"]
    summary = summary_of(read_journal(engine.journal_path))
    assert summary.revert_failed == ["stop-api"]
    assert exit_code(summary) == 1  # never a green run with a fault left in
    assert target.state["api"] == "stopped"
    target.failing_starts = 0
    results = recover(ws, target)
    assert [r.reverted for r in results] == [["stop-api"]]
    assert target.state["api"] == "running"
    assert types(engine)[-1] == "recover.finished"
    assert recover(ws, target) == []


def test_a_journal_that_cannot_be_written_does_not_stop_the_reverts(tmp_path):
    engine, target, clock, _ = make(tmp_path)
    advance(engine, clock, 3)
    assert target.state["api"] == "stopped"
    full = os.open("/dev/full", os.O_WRONLY)
    assert engine.journal is not None
    os.dup2(full, engine.journal._fd)  # every write now fails: disk full
    os.close(full)
    engine.abort("disk full")
    assert engine.phase == Phase.ABORTED
    assert target.state["api"] == "running"


def test_an_alert_already_firing_holds_the_fault_and_never_pages_for_it(tmp_path):
    text = SCENARIO.replace("DURATION", "null").replace(
        "quiet: {min_s: 0, max_s: 0}", "quiet: {min_s: 2, max_s: 2}"
    )
    engine, target, clock, _ = stand_in_drill(tmp_path, text)
    engine.start()
    advance(engine, clock, 1)
    assert engine.phase == Phase.QUIET
    target.state["api"] = "stopped"  # down for its own reasons, before any fault
    advance(engine, clock, 3)
    assert "fault.held" in types(engine) and "page" not in types(engine)
    assert "fault.injected" not in types(engine)
    target.state["api"] = "running"
    advance(engine, clock, 3)
    evs = read_journal(engine.journal_path).events
    kinds = [e["type"] for e in evs]
    assert kinds.index("fault.injected") < kinds.index("page")
    page = next(e for e in evs if e["type"] == "page")
    injected = next(e for e in evs if e["type"] == "fault.injected")
    assert page["t"] >= injected["t"]
    engine.abort("test over")


def test_a_paused_drill_still_ends_at_twice_its_limit(tmp_path):
    engine, target, clock, _ = make(tmp_path)
    advance(engine, clock, 3)
    engine.act(Action("pause", by="coach"))
    advance(engine, clock, 100)  # past max_duration_s, but paused
    assert not engine.done
    advance(engine, clock, 30)
    assert engine.phase == Phase.ABORTED
    assert "pauses included" in (engine.abort_reason or "")
    assert target.state["api"] == "running"


@pytest.mark.parametrize("verb", ["ack", "note", "hypothesis"])
def test_engineer_actions_before_the_page_are_refused(tmp_path, verb):
    from pagerdrill.drill.engine import ActionRefused

    engine, _, _, _ = make(tmp_path)
    with pytest.raises(ActionRefused, match="nothing has paged"):
        engine.act(Action(verb, text="x"))
    engine.abort("test over")


def test_looking_at_the_evidence_ticks_its_step_once_with_the_evidence_on_it(tmp_path):
    engine, _, clock, _ = make(tmp_path)
    advance(engine, clock, 3)
    assert engine.phase == Phase.PAGED
    engine.act(Action("ack"))
    engine.act(Action("evidence", step="logs", what="logs", text="errors of all services"))
    engine.act(Action("evidence", step="logs", what="logs", text="api only"))
    engine.act(Action("evidence", step="dashboards", what="signals", text="the signals panel"))
    engine.abort("test over")
    done = [e for e in read_journal(engine.journal_path).events if e["type"] == "step.done"]
    by_step = {e["step"]: e for e in done}
    assert [e["step"] for e in done] == ["acknowledge", "logs", "dashboards"]  # each once
    assert by_step["logs"]["evidence"] == "logs: errors of all services"
    assert by_step["logs"]["target_s"] > 0 and by_step["logs"]["over"] is False
    assert by_step["dashboards"]["evidence"] == "signals: the signals panel"


def make_with_side_alert(tmp_path: Path, timeout_s: int = 30):
    """The stand-in scenario with a second, non-paging alert on rt that takes a while
    to fire: the kind of alert a warm-up trips."""
    text = (
        SCENARIO.replace("DURATION", "null")
        .replace("roles: [api]", "roles: [api, rt]")
        .replace("steady_state: {for_s: 0, timeout_s: 30}",
                 f"steady_state: {{for_s: 2, timeout_s: {timeout_s}}}")
        .replace("  - {name: api, kind: service, role: api}\n",
                 "  - {name: api, kind: service, role: api}\n"
                 "  - {name: rt, kind: service, role: rt}\n")
        .replace("  - {name: api-down, expr: api.up == 0, summary: api is down}\n",
                 "  - {name: api-down, expr: api.up == 0, summary: api is down}\n"
                 "  - {name: rt-down, expr: rt.up == 0, for_s: 20, page: false}\n")
    )  # fmt: skip
    engine, target, clock, _ = stand_in_drill(tmp_path, text)
    engine.start()
    return engine, target, clock


def test_the_quiet_period_waits_while_any_alert_is_pending_or_firing_even_one_that_never_pages(
    tmp_path,
):
    engine, target, clock = make_with_side_alert(tmp_path)
    target.state["rt"] = "stopped"  # warming up: rt-down pending, far from firing
    advance(engine, clock, 5)
    assert engine.phase == Phase.STEADY_STATE
    target.state["rt"] = "running"
    advance(engine, clock, 4)
    assert engine.phase in (Phase.QUIET, Phase.INJECTED, Phase.PAGED)
    engine.abort("test over")


def test_a_stack_that_never_settles_aborts_the_steady_state_and_says_which_alert(tmp_path):
    engine, target, clock = make_with_side_alert(tmp_path, timeout_s=10)
    target.state["rt"] = "stopped"
    advance(engine, clock, 15)
    assert engine.phase == Phase.ABORTED
    reason = engine.abort_reason or ""
    assert "never reached steady state in 10 s" in reason and "rt-down (pending)" in reason
    assert "fault.undo" not in types(engine)


def test_a_script_entry_carries_every_field_of_the_engines_action_to_it():
    from pagerdrill.drill.runner import ScriptAction

    detail = {"step": "page-lead", "text": "t", "choice": "no-page", "mitigation": "m",
              "source": "s", "by": "coach", "what": "logs", "reason": "P2, contained"}  # fmt: skip
    action = ScriptAction(do="evidence", at=3, **detail).action()
    assert action == Action("evidence", **detail)
    assert set(Action.model_fields) - {"kind"} == set(detail)


def test_an_unknown_action_or_evidence_is_bad_input_naming_what_is_known():
    from pagerdrill.errors import BadInputError

    with pytest.raises(BadInputError, match="unknown action 'fix' \\(known: ack, step"):
        Action("fix")
    with pytest.raises(BadInputError, match="unknown evidence 'gut' \\(known: logs"):
        Action("evidence", what="gut")


def test_an_abort_for_no_page_names_the_alert_signals_that_never_had_a_value(tmp_path):
    port = _closed_port()
    config = {"version": 1, "target": "local",
              "roles": {"api": {"service": "api", "url": f"http://127.0.0.1:{port}"}}}  # fmt: skip
    text = (
        SCENARIO.replace("DURATION", "null")
        .replace(
            "  - {name: api, kind: service, role: api}\n",
            "  - {name: api, kind: service, role: api}\n"
            "  - {name: read, kind: http, role: api, path: /api/markets/1}\n",
        )
        .replace(
            "  - {name: api-down, expr: api.up == 0, summary: api is down}\n",
            "  - {name: slow-reads, expr: read.latency_ms > 100 or api.up == 2, summary: slow}\n",
        )
        .replace("max_duration_s: 60\n", "max_duration_s: 60\npage_timeout_s: 5\n")
    )
    engine, _, clock, _ = stand_in_drill(tmp_path, text, config=config)
    engine.start()
    advance(engine, clock, 12)
    assert engine.done
    aborted = next(
        e for e in read_journal(engine.journal_path).events if e["type"] == "drill.aborted"
    )
    assert aborted["reason"].startswith("no alert paged within 5 s of the fault")
    # the service probe had values all along; the read never answered
    assert aborted["reason"].endswith("alert signals that never produced a value: read.latency_ms")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
