"""Faults: small objects that break one thing on a target and put it back.

A fault kind is a `Fault` subclass registered in the entry-point group
`pagerdrill.faults` (the built-ins are registered the same way, in pyproject.toml).
The engine calls, in order: `prepare()` (reads the stack, returns the undo record
that goes to the journal before anything is touched), `inject()`, and later
`revert(undo)`. `revert` must be idempotent and must work from the undo record
alone, in a fresh process: that is how `pagerdrill recover` puts a stack back
after a crash.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pagerdrill.errors import BadInputError

GROUP = "pagerdrill.faults"


class FaultParams(BaseModel):
    """Parameters of a fault kind, as written in a scenario (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class FaultContext:
    """What a fault may use: the target, the role bindings, and the drill's stop flag."""

    target: Any
    roles: Any
    """A `pagerdrill.targets.roles.RoleResolver`."""
    stop: threading.Event = field(default_factory=threading.Event)
    report: Callable[[str, dict], None] = lambda _type, _data: None
    """Emit an event to the drill (e.g. a storm's progress); journalled like the rest."""


class Fault:
    """Base of every fault kind."""

    kind: ClassVar[str] = ""
    Params: ClassVar[type[FaultParams]] = FaultParams
    reversible: ClassVar[bool] = True
    """False for faults whose damage cannot be undone (FLUSHDB): revert only records it."""
    secret_params: ClassVar[frozenset[str]] = frozenset()
    """Parameters whose values are secrets (every value under them): never journalled.
    A parameter (or a key under one) whose name says password, token or secret is one
    too, declared or not."""

    @classmethod
    def secret_values(cls, params: dict) -> set[str]:
        """The secret values in `params`, as a scenario wrote them."""
        from pagerdrill.journal.redact import secret_leaves

        return secret_leaves(params, cls.secret_params)

    def __init__(self, fault_id: str, role: str, params: FaultParams, ctx: FaultContext):
        self.id = fault_id
        self.role = role
        self.params = params
        self.ctx = ctx

    @property
    def service(self) -> str:
        return self.ctx.roles.service(self.role)

    def describe(self) -> str:
        """One line for --dry-run: what inject would do, with names resolved."""
        raise NotImplementedError

    def prepare(self) -> dict:
        """Read what revert will need; touch nothing."""
        return {"service": self.service}

    def inject(self) -> dict:
        raise NotImplementedError

    def revert(self, undo: dict) -> dict:
        raise NotImplementedError

    def in_effect(self) -> bool | None:
        """Whether the fault is visible on the stack now (None: cannot tell). For benchmarks."""
        return None


_BUILTIN = {
    "stop-service": "pagerdrill.faults.builtin:StopService",
    "redis-command": "pagerdrill.faults.builtin:RedisCommand",
    "restart-with-env": "pagerdrill.faults.builtin:RestartWithEnv",
    "http-fault": "pagerdrill.faults.builtin:HttpFault",
    "socketio-storm": "pagerdrill.faults.builtin:SocketioStorm",
}


def _entry_points() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    # a source checkout that was never installed still has the built-ins
    return {**_BUILTIN, **found}


def fault_kinds() -> list[str]:
    """The names of every installed fault kind, without importing any of them."""
    return sorted(_entry_points())


_loaded: dict[str, type[Fault]] = {}


def fault_class(kind: str) -> type[Fault]:
    """The class of fault `kind`; a clear error for an unknown or broken plugin."""
    if kind in _loaded:
        return _loaded[kind]
    points = _entry_points()
    if kind not in points:
        raise BadInputError(f"unknown fault kind '{kind}' (installed: {', '.join(sorted(points))})")
    module_name, _, attr = points[kind].partition(":")
    try:
        import importlib

        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # a broken plugin is reported, never silently skipped
        print(f"pagerdrill: fault plugin '{kind}' failed to load: {exc!r}", file=sys.stderr)
        raise BadInputError(f"fault kind '{kind}' is installed but failed to load: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Fault)):
        raise BadInputError(f"fault kind '{kind}' ({points[kind]}) is not a Fault subclass")
    _loaded[kind] = obj
    return obj
