"""Targets: the stacks pagerdrill can drill, the local reference stack and a compose project.

A target is a class registered in the entry-point group `pagerdrill.targets` under the
name a workspace's `pagerdrill.yaml` gives it (`target:`); the built-ins are registered
the same way, in pyproject.toml, so another target (Kubernetes) is a plugin. It is
built as `cls(workspace, allow_remote_docker=...)` and offers `base.Target`.
`open_target` returns the one a workspace names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pagerdrill.errors import BadInputError
from pagerdrill.plugins import PluginLoadError, load_plugin, plugin_points, unknown_plugin

if TYPE_CHECKING:
    from pagerdrill.targets.base import Target
    from pagerdrill.workspace import Workspace

GROUP = "pagerdrill.targets"

_BUILTIN = {
    "local": "pagerdrill.targets.local:LocalTarget",
    "compose": "pagerdrill.targets.compose:ComposeTarget",
}


def _entry_points() -> dict[str, str]:
    return plugin_points(GROUP, _BUILTIN)


def _load(name: str, value: str) -> Any | None:
    """The class `value` names; None (reported on stderr) when its plugin is broken."""
    try:
        return load_plugin("target", name, value)
    except PluginLoadError:
        return None


def target_names() -> list[str]:
    """The names of every installed target, without importing any of them."""
    return sorted(_entry_points())


def target_class(name: str) -> Any:
    """The class of target `name`; a clear error for an unknown or broken plugin."""
    points = _entry_points()
    if name not in points:
        raise BadInputError(unknown_plugin("target", name, points))
    cls = _load(name, points[name])
    if cls is None:
        raise BadInputError(f"target '{name}' is installed but failed to load ({points[name]})")
    if not isinstance(cls, type):
        raise BadInputError(f"target '{name}' ({points[name]}) is not a class")
    return cls


def open_target(workspace: Workspace, *, allow_remote_docker: bool = False) -> Target:
    """The target `workspace` drills. A compose target refuses a Docker Engine that is
    not local unless `allow_remote_docker` (checked before any connection is made)."""
    cls = target_class(workspace.config.target)
    target: Target = cls(workspace, allow_remote_docker=allow_remote_docker)
    return target
