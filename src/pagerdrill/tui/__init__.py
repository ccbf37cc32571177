"""The interactive drill (`pagerdrill drill`): a Textual UI over the drill engine.

A UI layer: it may import textual; the core never imports it. The app renders the
engine's state and sends the engineer's actions; every engine call runs in a
thread worker so the UI never blocks on the stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pagerdrill.tui.app import DrillApp, make_app

__all__ = ["DrillApp", "make_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pagerdrill.tui import app

        return getattr(app, name)
    raise AttributeError(name)
