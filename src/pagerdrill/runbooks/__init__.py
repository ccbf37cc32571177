"""The workspace's runbooks (`runbooks/*.md`) as checked artefacts: parsed (front matter,
title, sections), linted against the team's template, indexed, searched, scaffolded
and validated on the local stack. No UI here: the CLI (`pagerdrill.cli.runbooks`)
and the TUI render what these return."""

from __future__ import annotations

from pathlib import Path

from pagerdrill.runbooks.lint import Problem, lint_folder, runbook_files
from pagerdrill.runbooks.model import Runbook, parse_runbook
from pagerdrill.runbooks.search import Hit, RunbookIndex, search
from pagerdrill.workspace.config import RunbooksConfig

RUNBOOKS_DIR = "runbooks"
INDEX = "README.md"

__all__ = [
    "INDEX",
    "RUNBOOKS_DIR",
    "Hit",
    "Problem",
    "Runbook",
    "RunbookIndex",
    "RunbooksConfig",
    "lint_folder",
    "load_runbooks",
    "parse_runbook",
    "runbook_files",
    "search",
    "settings",
]


def settings(root: Path | None) -> RunbooksConfig:
    """The `runbooks:` block of the workspace at `root` (the default template when
    there is no workspace). A malformed pagerdrill.yaml raises its ConfigError."""
    if root is None or not (root / "pagerdrill.yaml").is_file():
        return RunbooksConfig()
    from pagerdrill.workspace import load_workspace

    return load_workspace(root).config.runbooks


def load_runbooks(root: Path | None, config: RunbooksConfig | None = None) -> list[Runbook]:
    """Every runbook of the workspace at `root`, by file name. Unreadable files are left
    out (a runbook is never worth failing a drill over)."""
    if root is None:
        return []
    if config is None:
        try:
            config = settings(root)
        except Exception:  # the drill goes on with the default layout
            config = RunbooksConfig()
    out = []
    for path in runbook_files(root / config.dir, config.index):
        try:
            out.append(parse_runbook(path, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return out
