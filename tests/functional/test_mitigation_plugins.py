"""Mitigation actions plug in through the `pagerdrill.mitigations` entry-point group, the
built-ins too: a scenario names a team's own, the drill runs it, journals its undo record
before it acts, and puts it back on its end (or `recover` does, after a crash)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pagerdrill.drill.mitigations as mitigations
from drilling import FAST, assert_stack_clean, cli
from helpers import REPO
from pagerdrill.drill.engine import Action, Phase
from pagerdrill.drill.recover import recover
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.journal import read_journal
from pagerdrill.scenarios.model import mitigation_actions, parse_scenario
from standin import stand_in_drill, stand_in_scenario

PLUGIN = '''
from pagerdrill.drill.mitigations import Mitigation


class Mark(Mitigation):
    """Restart the role's service with MARK_FOR_TEST=on; put back by its own revert."""

    def apply(self):
        service = self.service
        target = self.ctx.target
        self.ctx.write_undo(
            {"service": service, "was": target.overrides(service).get("MARK_FOR_TEST")}
        )
        target.restart(service, env={"MARK_FOR_TEST": "on"})
        return {"service": service, "marked": True}

    @classmethod
    def revert(cls, undo, target, roles):
        service = undo["service"]
        env = {k: v for k, v in target.overrides(service).items() if k != "MARK_FOR_TEST"}
        if undo["was"] is not None:
            env["MARK_FOR_TEST"] = undo["was"]
        target.restart(service, env=env, reset_env=True)
        return {"service": service, "unmarked": True}


class NotOne:
    """Not a Mitigation subclass."""
'''

ENTRY_POINTS = """[pagerdrill.mitigations]
mark = mark_mitigation:Mark
broken = missing_module_for_pagerdrill_tests:Nope
notamitigation = mark_mitigation:NotOne
"""


def install_plugin(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mark_mitigation.py").write_text(PLUGIN)
    dist = folder / "pagerdrill_mark-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pagerdrill-mark\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    folder = install_plugin(tmp_path / "plugin")
    monkeypatch.syspath_prepend(str(folder))
    # a drill run by the CLI in a child process finds the plugin the same way
    monkeypatch.setenv("PYTHONPATH", str(folder))
    yield folder
    for name in ("mark", "broken", "notamitigation"):
        mitigations._loaded.pop(name, None)


SCENARIO = stand_in_scenario(
    before_answer=(
        "mitigations:\n  - {id: mark-api, title: Mark the api, action: ACTION, role: api}\n"
    )
)
ACTION_LINE = 1 + next(i for i, line in enumerate(SCENARIO.splitlines()) if "ACTION" in line)


# ------------------------------------------------------------------ the registry


def test_the_built_in_actions_are_listed_from_entry_points():
    assert {"start", "restart", "reset-env", "set-env", "block-source", "revert-fault",
            "replay-lost-jobs"} <= set(mitigation_actions())  # fmt: skip
    assert mitigations.mitigation_class("restart") is mitigations.Restart


def test_a_plugin_action_is_listed_loaded_and_accepted_by_a_scenario(plugin, tmp_path):
    assert "mark" in mitigation_actions()
    assert mitigations.mitigation_class("mark").__name__ == "Mark"
    sc = parse_scenario(SCENARIO.replace("ACTION", "mark"), tmp_path / "s.yaml")
    assert sc.model.mitigations[0].action == "mark"


def test_a_plugin_that_fails_to_load_is_reported_not_skipped(plugin, capsys):
    with pytest.raises(BadInputError, match="failed to load"):
        mitigations.mitigation_class("broken")
    assert "mitigation plugin 'broken' failed to load" in capsys.readouterr().err


def test_an_entry_point_that_is_not_a_mitigation_is_refused(plugin):
    with pytest.raises(BadInputError, match="not a Mitigation subclass"):
        mitigations.mitigation_class("notamitigation")


def test_an_unknown_action_is_refused_at_its_file_and_line_with_what_is_installed(plugin, tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_scenario(SCENARIO.replace("ACTION", "restrat"), tmp_path / "s.yaml")
    message = str(err.value)
    where = f"s.yaml:{ACTION_LINE}: mitigations[0].action"
    assert f"{where}: unknown mitigation action 'restrat'" in message
    assert "did you mean 'restart'?" in message
    assert "installed: " in message and "mark" in message and "revert-fault" in message


def test_an_unknown_action_is_named_even_when_the_scenario_has_other_problems(tmp_path):
    text = SCENARIO.replace("ACTION", "strat").replace("severity: P2", "severity: P9")
    with pytest.raises(ConfigError) as err:
        parse_scenario(text, tmp_path / "s.yaml")
    message = str(err.value)
    assert "s.yaml:3: severity" in message
    where = f"s.yaml:{ACTION_LINE}: mitigations[0].action"
    assert f"{where}: unknown mitigation action 'strat'" in message


# ------------------------------------------------------- a drill on a stand-in target


def paged_drill(tmp_path: Path):
    engine, target, clock, ws = stand_in_drill(tmp_path, SCENARIO.replace("ACTION", "mark"))
    engine.start()
    while engine.phase != Phase.PAGED and not engine.done:
        clock.now += 1
        engine.tick()
    assert engine.phase == Phase.PAGED
    engine.act(Action("ack"))
    return engine, target, ws


def test_a_plugin_mitigation_runs_journals_its_undo_first_and_is_put_back_on_close(
    plugin, tmp_path
):
    engine, target, _ = paged_drill(tmp_path)
    engine.act(Action("mitigate", mitigation="mark-api"))
    assert target.env["api"] == {"MARK_FOR_TEST": "on"}
    # write-ahead: the undo record was durable before the plugin restarted the api
    assert target.journalled_at_restart[0][-2:] == ["mitigation.started", "mitigation.undo"]
    engine.act(Action("resolve"))
    assert engine.phase == Phase.CLOSED
    assert target.env["api"] == {}
    events = read_journal(engine.journal_path).events
    undo = next(e for e in events if e["type"] == "mitigation.undo")
    assert undo["mitigation"] == "mark-api" and undo["undo"] == {"service": "api", "was": None}
    done = next(e for e in events if e["type"] == "mitigation")
    assert done["action"] == "mark" and done["detail"] == {"service": "api", "marked": True}
    reverted = next(e for e in events if e["type"] == "mitigation.reverted")
    # the plugin's own revert put it back, not the built-in environment restore
    assert reverted["detail"] == {"service": "api", "unmarked": True}
    assert reverted["undo_seq"] == undo["seq"]


def test_a_plugin_mitigation_left_in_is_put_back_by_recover_with_its_own_revert(plugin, tmp_path):
    engine, target, ws = paged_drill(tmp_path)
    engine.act(Action("mitigate", mitigation="mark-api"))
    target.failing_restarts = 5  # the close cannot put it back
    engine.act(Action("resolve"))
    assert "mark-api" in engine.revert_failed
    assert target.env["api"] == {"MARK_FOR_TEST": "on"}
    target.failing_restarts = 0
    results = recover(ws, target)
    assert [r.reverted for r in results] == [["mark-api"]]
    assert target.env["api"] == {}
    events = read_journal(engine.journal_path).events
    by_recover = [e for e in events if e["type"] == "mitigation.reverted"]
    assert by_recover[-1]["by"] == "recover"
    assert by_recover[-1]["detail"] == {"service": "api", "unmarked": True}
    assert events[-1]["type"] == "recover.finished"


# ----------------------------------------------------------- on the real stack


@pytest.mark.stack
def test_a_scenarios_own_mitigation_runs_and_is_put_back_on_the_real_stack(plugin, stack, tmp_path):
    root = stack.workspace.root
    text = (REPO / "scenarios" / "api-500-injection.yaml").read_text()
    text = text.replace(
        "mitigations:\n  - {id: disable-fault,",
        "mitigations:\n  - {id: mark-api, title: Mark the api, action: mark, role: api}\n"
        "  - {id: disable-fault,",
    ).replace("  mitigations: [disable-fault]", "  mitigations: [mark-api, disable-fault]")
    path = tmp_path / "marked-500s.yaml"
    path.write_text(text)
    done = cli(
        "run", str(path), "--headless", "--engineer", "ci", "--autopilot", "--json",
        *FAST, "-w", str(root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    events = read_journal(Path(json.loads(done.stdout)["journal"])).events
    types = [e["type"] for e in events]
    undo = types.index("mitigation.undo")
    assert types[undo - 1] == "mitigation.started" and types[undo + 1] == "mitigation"
    mark = next(e for e in events if e["type"] == "mitigation" and e["mitigation"] == "mark-api")
    assert mark["detail"] == {"service": "api", "marked": True}
    reverted = next(e for e in events if e["type"] == "mitigation.reverted")
    assert reverted["mitigation"] == "mark-api"
    assert reverted["detail"] == {"service": "api", "unmarked": True}
    assert "MARK_FOR_TEST" not in stack.overrides("api")
    assert_stack_clean(stack)
