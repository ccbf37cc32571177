"""Targets plug in through the `pagerdrill.targets` entry-point group, built-ins too, and
both built-in targets offer everything the `Target` protocol says callers use."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import pagerdrill.targets as targets
from pagerdrill.errors import BadInputError
from pagerdrill.targets.base import Target
from pagerdrill.targets.compose import ComposeTarget
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace

PLUGIN = """
class StandIn:
    name = "standin"

    def __init__(self, workspace, *, allow_remote_docker=False):
        self.workspace = workspace
        self.allow_remote_docker = allow_remote_docker
"""

ENTRY_POINTS = """[pagerdrill.targets]
standin = standin_target:StandIn
broken = missing_module_for_pagerdrill_tests:Nope
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "standin_target.py").write_text(PLUGIN)
    dist = tmp_path / "pagerdrill_standin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pagerdrill-standin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))


def naming(workspace_dir, target: str):
    """The workspace at `workspace_dir` with its `target:` set to `target`."""
    ws = load_workspace(workspace_dir)
    return dataclasses.replace(ws, config=ws.config.model_copy(update={"target": target}))


def test_a_target_registered_as_an_entry_point_is_what_open_target_builds(plugin, workspace_dir):
    ws = naming(workspace_dir, "standin")
    target = targets.open_target(ws, allow_remote_docker=True)
    assert type(target).__name__ == "StandIn"
    assert target.workspace is ws
    assert target.allow_remote_docker is True  # type: ignore[attr-defined]


def test_the_built_in_targets_are_listed_from_entry_points(plugin):
    assert {"local", "compose", "standin", "broken"} <= set(targets.target_names())


def test_the_local_target_is_opened_through_the_registry(workspace_dir):
    assert type(targets.open_target(load_workspace(workspace_dir))) is LocalTarget


def test_an_unknown_target_is_bad_input_listing_the_installed_ones(plugin, workspace_dir):
    with pytest.raises(BadInputError) as err:
        targets.open_target(naming(workspace_dir, "kubernetes"))
    assert err.value.exit_code == 2
    assert str(err.value) == (
        "unknown target 'kubernetes' (installed: broken, compose, local, standin)"
    )


def test_a_target_plugin_that_fails_to_load_is_reported_and_refused(plugin, workspace_dir, capsys):
    with pytest.raises(BadInputError, match="target 'broken' is installed but failed to load"):
        targets.open_target(naming(workspace_dir, "broken"))
    assert "target plugin 'broken' failed to load" in capsys.readouterr().err
    # the others still open
    assert type(targets.open_target(naming(workspace_dir, "standin"))).__name__ == "StandIn"


def protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(value)
        for name, value in vars(Target).items()
        if not name.startswith("_") and callable(value)
    }


def test_the_protocol_names_what_callers_use_of_a_target():
    assert {"service_status", "is_up", "service_endpoints", "overrides", "up", "down",
            "stop", "start", "restart", "exec", "logs", "follow_logs", "environment",
            "services", "status"} <= set(protocol_methods())  # fmt: skip
    assert {"name", "workspace"} <= set(Target.__annotations__)


@pytest.mark.parametrize("cls", [LocalTarget, ComposeTarget])
def test_each_built_in_target_offers_every_protocol_method_as_the_protocol_calls_it(cls):
    for name, wanted in protocol_methods().items():
        assert callable(getattr(cls, name, None)), f"{cls.__name__} has no {name}"
        got = inspect.signature(getattr(cls, name)).parameters
        for param in wanted.parameters.values():
            assert param.name in got, f"{cls.__name__}.{name} takes no {param.name}"
            assert got[param.name].kind == param.kind, f"{cls.__name__}.{name}({param.name})"
            assert got[param.name].default == param.default, f"{cls.__name__}.{name}"
        extra = [p for p in got.values() if p.name not in wanted.parameters]
        assert all(p.default is not p.empty for p in extra), f"{cls.__name__}.{name}"
    assert isinstance(cls.name, str)


def test_a_local_target_is_a_target_at_run_time(workspace_dir):
    assert isinstance(LocalTarget(load_workspace(workspace_dir)), Target)
