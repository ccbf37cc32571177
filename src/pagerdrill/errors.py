"""One error hierarchy; messages are written for a person. Only the CLI prints them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def did_you_mean(name: str, names: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The one of `names` closest to a mistyped `name`, if any is close enough (0 to 1:
    how alike they must be), for the "did you mean" of an error message."""
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=cutoff)
    return close[0] if close else None


class PagerdrillError(Exception):
    """Base of every error pagerdrill raises on purpose."""

    #: process exit code when this error ends a command
    exit_code = 1


class BadInputError(PagerdrillError):
    """The user gave us something we cannot use (a file, a flag, a name)."""

    exit_code = 2


class ConfigError(BadInputError):
    """A file is malformed or inconsistent: says which file, where, and what was expected."""

    def __init__(self, path: Path | str, problems: list[tuple[int | None, str]]):
        self.path = Path(path)
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        lines = []
        for line, message in self.problems:
            where = f"{self.path}:{line}" if line else str(self.path)
            lines.append(f"{where}: {message}")
        return "\n".join(lines)


class WorkspaceNotFound(BadInputError):
    pass


class UnknownServiceError(BadInputError):
    pass


class StackError(PagerdrillError):
    """A service of the stack failed: names it and shows its last log lines."""

    def __init__(self, service: str, message: str, log_tail: list[str] | None = None):
        self.service = service
        self.log_tail = log_tail or []
        text = f"{service}: {message}"
        if self.log_tail:
            text += f"\n  last log lines of {service}:\n" + "\n".join(
                f"    {line}" for line in self.log_tail
            )
        super().__init__(text)


class StackBusyError(PagerdrillError):
    """Another pagerdrill command is changing the same stack right now."""
