"""Options every command group takes, written once, and the target they open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from pagerdrill.targets.base import ProjectTarget, Target

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        metavar="DIR",
        help="Workspace folder (default: the nearest one holding pagerdrill.yaml).",
        envvar="PAGERDRILL_WORKSPACE",
        show_default=False,
    ),
]
ALLOW_REMOTE_HELP = (
    "Drive a Docker Engine that is not local (DOCKER_HOST over TCP/SSH, a docker context "
    "other than default). Refused without this flag."
)
AllowRemoteOption = Annotated[
    bool, typer.Option("--allow-remote-docker", help=ALLOW_REMOTE_HELP, show_default=False)
]


def _target(workspace: Path | None, allow_remote_docker: bool = False) -> Target:
    from pagerdrill.targets import open_target
    from pagerdrill.workspace import open_workspace

    return open_target(open_workspace(workspace), allow_remote_docker=allow_remote_docker)


def _stack_name(target: Target) -> str:
    if target.name == "compose":
        return f"compose project {cast('ProjectTarget', target).project}"
    return "the reference stack"
