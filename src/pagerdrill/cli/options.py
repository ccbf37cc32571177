"""Options every command group takes, written once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
