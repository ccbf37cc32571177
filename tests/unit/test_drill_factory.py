"""The one drill factory (run, the TUI, the tests) and its stop-signal policy. Nothing
here starts a stack: building a drill touches nothing until it runs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from helpers import REPO, write_workspace
from pagerdrill.drill.factory import (
    DrillFactory,
    DrillPlan,
    interrupted_text,
    stop_reason,
    stop_signals,
)
from pagerdrill.drill.stackhold import StackHold
from pagerdrill.errors import ConfigError


@pytest.fixture
def factory(tmp_path: Path) -> DrillFactory:
    root = write_workspace(tmp_path / "ws")
    (root / "scenarios").mkdir()
    (root / "scenarios" / "bullmq-backpressure.yaml").write_text(
        (REPO / "scenarios" / "bullmq-backpressure.yaml").read_text()
    )
    return DrillFactory.open(root)


def test_a_headless_drill_is_built_with_its_roles_bound_and_the_answer_key_as_its_script(
    factory,
):
    drill = factory.headless("bullmq-backpressure", "Dana", {"quiet_min_s": "2"})
    assert drill.engine.engineer == "Dana" and drill.engine.mode == "headless"
    assert drill.engine.target is factory.target
    assert drill.scenario.params["quiet_min_s"] == 2
    assert drill.actions[0].do == "ack" and drill.actions[-1].do == "resolve"
    assert not drill.hold.started_stack
    assert not (factory.workspace.state_dir / "drill.lock").exists()


def test_the_dry_run_plan_is_a_typed_model_with_the_bound_services(factory):
    plan = factory.headless("bullmq-backpressure", "Dana", {}).plan()
    assert isinstance(plan, DrillPlan)
    assert plan.roles["api"] == "api" and plan.roles["queue"] == "redis-cache"
    assert [f.kind for f in plan.faults] == ["stop-service"]
    assert plan.to_json()["faults"][0]["does"] == plan.faults[0].does


def test_a_script_naming_an_unknown_step_is_refused_before_any_engine_is_built(factory, tmp_path):
    script = tmp_path / "script.yaml"
    script.write_text("version: 1\nactions:\n  - {do: step, step: dashbords}\n")
    with pytest.raises(ConfigError, match=r"script.yaml:3: actions\[0\]: no checklist step"):
        factory.headless("bullmq-backpressure", "Dana", {}, script=script)


def test_the_tuis_engine_is_built_by_the_same_factory_with_its_own_clock(factory):
    sc = factory.scenario(factory.find("bullmq-backpressure"), {"quiet_min_s": "3"})
    engine = factory.engine(sc, "Dana", mode="tui", blind=True, clock=lambda: 5.0)
    assert engine.mode == "tui" and engine.blind and engine.clock() == 5.0
    assert engine.checklist is factory.checklist


def test_a_stop_signal_only_asks_and_the_old_handler_comes_back_after():
    got: list[int] = []
    before = signal.getsignal(signal.SIGHUP)
    with stop_signals(got.append):
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
    assert got == [signal.SIGHUP, signal.SIGTERM]
    assert signal.getsignal(signal.SIGHUP) == before


def test_the_journal_says_which_signal_stopped_a_headless_drill():
    assert interrupted_text(signal.SIGINT) == "interrupted (Ctrl-C)"
    assert interrupted_text(signal.SIGHUP) == "interrupted (SIGHUP: the terminal went away)"
    assert interrupted_text(signal.SIGTERM) == "interrupted (SIGTERM)"
    assert interrupted_text(None) == "interrupted (SIGTERM)"


def test_a_forced_stack_down_gives_its_reason_to_the_drill_it_stops(factory):
    from pagerdrill.drill.stackhold import ABORT_FILE

    drill = factory.headless("bullmq-backpressure", "Dana", {})
    state = factory.workspace.state_dir
    state.mkdir(parents=True, exist_ok=True)
    (state / ABORT_FILE).write_text(
        f'{{"drill": "{drill.engine.drill_id}", "reason": "stack down --force by lee"}}'
    )
    assert stop_reason(drill.engine, "the TUI got SIGTERM") == "stack down --force by lee"
    assert stop_reason(drill.engine, "the TUI got SIGTERM") == "the TUI got SIGTERM"


def test_a_drill_takes_down_only_the_stack_it_started_and_only_when_not_kept(factory):
    hold = StackHold(object(), factory.target)
    assert not hold.takes_down(keep_stack=False)
    hold.started_stack = True
    assert hold.takes_down(keep_stack=False) and not hold.takes_down(keep_stack=True)
