"""Fault kinds plug in through the `pagerdrill.faults` entry-point group, built-ins too."""

from __future__ import annotations

import pytest

import pagerdrill.faults as faults
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.scenarios.model import parse_scenario

PLUGIN = """
from pagerdrill.faults import Fault, FaultParams


class NoopParams(FaultParams):
    level: int


class Noop(Fault):
    kind = "noop"
    Params = NoopParams

    def describe(self):
        return f"do nothing at level {self.params.level}"

    def inject(self):
        return {}

    def revert(self, undo):
        return {}
"""

ENTRY_POINTS = """[pagerdrill.faults]
noop = noop_fault:Noop
broken = missing_module_for_pagerdrill_tests:Nope
notafault = noop_fault:NoopParams
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "noop_fault.py").write_text(PLUGIN)
    dist = tmp_path / "pagerdrill_noop-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pagerdrill-noop\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for kind in ("noop", "broken", "notafault"):
        faults._loaded.pop(kind, None)


def scenario_text(kind: str, extra: str) -> str:
    return f"""
title: t
severity: P3
symptom: s
roles: [api]
faults:
  - id: f1
    kind: {kind}
    role: api
{extra}
probes:
  - {{name: api, kind: service, role: api}}
alerts:
  - {{name: down, expr: api.up == 0}}
root_cause: r
hypotheses:
  choices:
    - {{id: right, text: right, correct: true}}
recovery:
  all: ["api.up == 1"]
answer:
  hypothesis: right
"""


def test_the_built_in_kinds_are_listed_from_entry_points():
    assert {"stop-service", "redis-command", "restart-with-env", "http-fault",
            "socketio-storm"} <= set(faults.fault_kinds())  # fmt: skip


def test_a_plugin_kind_is_listed_and_loaded_and_its_params_validated(plugin, tmp_path):
    assert "noop" in faults.fault_kinds()
    cls = faults.fault_class("noop")
    assert cls.kind == "noop"
    sc = parse_scenario(scenario_text("noop", "    level: 3"), tmp_path / "s.yaml")
    assert sc.model.faults[0].params == {"level": 3}
    with pytest.raises(ConfigError) as err:
        parse_scenario(scenario_text("noop", "    level: high"), tmp_path / "s.yaml")
    assert "s.yaml:10: faults[0].level" in str(err.value)


def test_a_plugin_that_fails_to_load_is_reported_not_skipped(plugin, capsys):
    with pytest.raises(BadInputError, match="failed to load"):
        faults.fault_class("broken")
    assert "fault plugin 'broken' failed to load" in capsys.readouterr().err


def test_an_entry_point_that_is_not_a_fault_is_refused(plugin):
    with pytest.raises(BadInputError, match="not a Fault subclass"):
        faults.fault_class("notafault")


def test_an_unknown_kind_names_what_is_installed(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_scenario(scenario_text("stop-servce", ""), tmp_path / "s.yaml")
    message = str(err.value)
    assert "s.yaml:8: faults[0].kind: unknown fault kind 'stop-servce'" in message
    assert "stop-service" in message


# ------------------------------------------------------------------ how a revert reads


def test_a_flush_revert_says_the_flush_cannot_be_undone_and_what_its_repair_replayed():
    detail = {"service": "redis-cache", "irreversible": True, "command": "FLUSHDB",
              "repair": {"action": "replay-lost-jobs", "replayed": 12}}  # fmt: skip
    assert faults.reverted_text("flushdb", "abort", detail) == (
        "fault flushdb: FLUSHDB cannot be undone; 12 lost jobs replayed (abort)"
    )


def test_a_repair_with_nothing_lost_says_it_found_nothing_to_replay():
    detail = {"service": "redis-cache", "irreversible": True, "command": "FLUSHDB",
              "repair": {"action": "replay-lost-jobs", "replayed": 0}}  # fmt: skip
    assert faults.reverted_text("flushdb", "close", detail) == (
        "fault flushdb: FLUSHDB cannot be undone; no lost jobs to replay (close)"
    )


def test_an_irreversible_fault_is_never_said_to_be_reverted():
    old = {"service": "redis-cache", "irreversible": True}  # journalled before `command`
    assert faults.reverted_text("flushdb", "close", old) == "fault flushdb cannot be undone (close)"
    assert faults.reverted_text("stop-api", "close", {"service": "api"}) == (
        "fault stop-api reverted (close)"
    )
