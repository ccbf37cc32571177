"""Shared fixtures: workspaces in temporary folders and a real local reference stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import write_workspace
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace

# Examples are judged on what they do, never on how long one took: CI machines are
# shared and their timing varies (speed is measured in bench/).
settings.register_profile("pagerdrill", deadline=None)
settings.load_profile("pagerdrill")


# A whole drill on a real stack waits on its own clocks: after an earlier test's outage,
# the traffic's 30 s error window must clear before it settles, then the page, then
# recovery held. pyproject's 120 s is for everything else.
STACK_TEST_TIMEOUT_S = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("stack") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(STACK_TEST_TIMEOUT_S))


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalTarget]:
    """A real reference stack, shared by the tests of one module, always taken down."""
    root = write_workspace(tmp_path_factory.mktemp("stack") / "ws")
    target = LocalTarget(load_workspace(root))
    try:
        target.up()
        yield target
    finally:
        target.down()


@pytest.fixture(autouse=True)
def _no_user_workspace(monkeypatch):
    """Tests never pick up a workspace from the developer's environment."""
    monkeypatch.delenv("PAGERDRILL_WORKSPACE", raising=False)


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    """Text cursors in Pilot tests stay still: a blink is a timer that wakes the app
    while a test waits and can catch a screenshot with the cursor hidden. The cursor is
    shown, as at the start of a blink, so snapshots are those of a blinking one."""
    from textual.reactive import Reactive
    from textual.widgets import Input, TextArea

    for widget in (Input, TextArea):
        blink = vars(widget)["cursor_blink"]
        assert isinstance(blink, Reactive), widget
        monkeypatch.setattr(blink, "_default", False)
