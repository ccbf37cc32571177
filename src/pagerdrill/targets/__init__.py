"""Targets: the stacks pagerdrill can drill, the local reference stack and a compose project.

`open_target` returns the one a workspace's `pagerdrill.yaml` names (`target:`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pagerdrill.targets.compose import ComposeTarget
    from pagerdrill.targets.local import LocalTarget
    from pagerdrill.workspace import Workspace


def open_target(
    workspace: Workspace, *, allow_remote_docker: bool = False
) -> LocalTarget | ComposeTarget:
    """The target `workspace` drills. A compose target refuses a Docker Engine that is
    not local unless `allow_remote_docker` (checked before any connection is made)."""
    if workspace.config.target == "compose":
        from pagerdrill.targets.compose import ComposeTarget

        return ComposeTarget(workspace, allow_remote_docker=allow_remote_docker)
    from pagerdrill.targets.local import LocalTarget

    return LocalTarget(workspace)
