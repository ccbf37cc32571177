"""Guards stop a drill and revert at once; a coach's pause keeps the fault in but stops
the drill clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from drilling import FAST, assert_stack_clean, cli, scenario, write_script
from pagerdrill.journal import read_journal

pytestmark = pytest.mark.stack


def run(stack, scenario_path: str, *args: str):
    done = cli(
        "run", scenario_path, "--headless", "--engineer", "ci", "--json", *FAST, *args,
        "-w", str(stack.workspace.root),
    )  # fmt: skip
    summary = json.loads(done.stdout) if done.stdout.strip() else None
    return done, summary


def test_a_guard_that_fires_aborts_the_drill_reverts_and_says_why(stack, tmp_path):
    data = yaml.safe_load(Path(scenario("bullmq-backpressure")).read_text())
    data["guards"] = [
        {"name": "producer-stalled", "expr": "waiting > 30", "for_s": 0,
         "reason": "the backlog must not pass 30 in this test"}
    ]  # fmt: skip
    path = tmp_path / "guarded.yaml"
    path.write_text(yaml.safe_dump(data))
    done, summary = run(stack, str(path), "--autopilot", "-p", "outage_s=120",
                        "-p", "depth_alert=1000")  # fmt: skip
    assert done.returncode == 1
    assert summary["outcome"] == "aborted"
    assert "guard producer-stalled" in summary["abort_reason"]
    assert "must not pass 30" in summary["abort_reason"]
    evs = read_journal(Path(summary["journal"])).events
    assert [e["fault"] for e in evs if e["type"] == "fault.reverted"] == ["stop-consumer"]
    assert_stack_clean(stack)


def test_a_service_outside_the_roles_going_down_aborts_the_drill(stack, tmp_path):
    script = write_script(tmp_path / "wait.json", [{"do": "ack"}, {"wait": "recovered"}])
    from drilling import journals, kill_and_recover, newest_journal, start_cli, wait_for_event

    root = stack.workspace.root
    before = set(journals(root))
    proc = start_cli(
        "run", scenario("api-500-injection"), "--headless", "--engineer", "ci",
        "--script", str(script), *FAST, "-w", str(root),
    )  # fmt: skip
    try:
        journal = newest_journal(root, before)
        wait_for_event(journal, "page")
        stack.stop("game")  # not one of api-500's roles (api, traffic)
        proc.communicate(timeout=60)
    finally:
        kill_and_recover(proc, root)
        stack.start("game")
    assert proc.returncode == 1
    last = read_journal(journal).events[-1]
    assert last["type"] == "drill.aborted"
    assert "game" in last["reason"] and "outside" in last["reason"]
    assert_stack_clean(stack)


def test_a_coach_pause_stops_the_drill_clock_but_not_the_fault(stack, tmp_path):
    script = write_script(
        tmp_path / "paused.json",
        [
            {"do": "ack"},
            {"do": "pause", "by": "coach"},
            {"after": 3, "do": "resume", "by": "coach"},
            {"do": "step", "step": "dashboards"},
            {"do": "hypothesis", "text": "the promotions route is failing with 500s"},
            {"do": "mitigate", "mitigation": "disable-fault"},
            {"wait": "recovered"},
            {"do": "resolve"},
        ],
    )
    done, summary = run(stack, scenario("api-500-injection"), "--script", str(script))
    assert done.returncode == 0, done.stderr + done.stdout
    assert summary["paused_s"] >= 3
    steps = {s["id"]: s for s in summary["steps"]}
    # ticked right after a 3 s pause: the pause is not on the engineer's clock
    assert steps["dashboards"]["done_s"] < 2
    assert summary["hypothesis"]["correct"]  # graded from free text by keywords
    evs = read_journal(Path(summary["journal"])).events
    types = [e["type"] for e in evs]
    paused, resumed = types.index("clock.paused"), types.index("clock.resumed")
    assert "fault.reverted" not in types[paused:resumed]  # the fault stayed in
    errors = [
        e["values"]["errors"]["value"] for e in evs[paused:resumed] if e["type"] == "probe.sample"
    ]
    assert errors and max(errors) > 0
    assert_stack_clean(stack)


def test_a_wrong_first_hypothesis_a_hint_a_note_a_wrong_decision_and_untaken_steps_are_recorded(
    stack, tmp_path
):
    script = write_script(
        tmp_path / "wrong.json",
        [
            {"do": "ack"},
            {"do": "hypothesis", "choice": "api-down"},
            {"do": "hint"},
            {"do": "note", "text": "api answers fine; only promotions fails"},
            {"do": "hypothesis", "choice": "one-route"},
            {"do": "decision", "choice": "page"},
            {"do": "mitigate", "mitigation": "restart-api"},
            {"do": "mitigate", "mitigation": "disable-fault"},
            {"wait": "recovered"},
            {"do": "resolve"},
        ],
    )
    done, summary = run(stack, scenario("api-500-injection"), "--script", str(script))
    assert done.returncode == 0, done.stderr + done.stdout
    h = summary["hypothesis"]
    assert h["attempts"] == 2 and not h["first_correct"] and h["correct"]
    assert summary["decision"] == {"choice": "page", "correct": False}
    assert summary["hints_used"] == 1
    assert summary["notes"] == 1
    notes = [e for e in read_journal(Path(summary["journal"])).events if e["type"] == "note"]
    assert [e["text"] for e in notes] == ["api answers fine; only promotions fails"]
    # the ack ticks its own step; no other step was taken, so none of them is met
    steps = {s["id"]: s for s in summary["steps"]}
    assert steps["acknowledge"]["met"], steps["acknowledge"]
    untaken = [s for s in summary["steps"] if s["id"] != "acknowledge"]
    assert untaken and all(s["done_s"] is None and not s["met"] for s in untaken), untaken
    # a restart of the api does not clear what answers in front of it; turning the fault
    # off does, and the probes see the recovery
    assert summary["recovery_verified"]
    assert_stack_clean(stack)
