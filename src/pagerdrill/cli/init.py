"""`pagerdrill init`: scaffold a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pagerdrill.cli.console import _console


def register(app: typer.Typer) -> None:
    app.command("init", short_help="Scaffold a workspace in a new folder.")(init)


def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Folder to make into a workspace.")
    ],
) -> None:
    """Scaffold a workspace (pagerdrill.yaml, compose/, scenarios/, runbooks/ ...)."""
    from pagerdrill.workspace import init_workspace

    written = init_workspace(directory)
    console = _console()
    console.print(f"[green]✓[/] workspace created in {directory}")
    for path in written:
        console.print(f"    {path.name}{'/' if path.is_dir() else ''}")
    console.print(f"Next: cd {directory} && pagerdrill stack up")
