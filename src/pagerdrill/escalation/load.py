"""Reading the matrix: `escalation-matrix.yaml`, or a Markdown table of the same
content (`escalation-matrix.md`), and the PagerDuty exports its schedules name.

Loading reads files and nothing else; what the files mean is `validate`'s to judge.
A file that does not parse, or has unknown keys or wrong types, becomes problems of
kind `invalid` with their lines, so one run reports everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.escalation.model import Matrix
from pagerdrill.escalation.schedules import PDExport
from pagerdrill.workspace.yamlfile import LineMap, check, parse_yaml, read_text

MATRIX_NAME = "escalation-matrix.yaml"
MARKDOWN_NAME = "escalation-matrix.md"
#: Where a Markdown matrix's schedules live: NAME.yaml (a rotation) or NAME.json (a
#: PagerDuty export). A Markdown table has no room for a rotation's definition.
SCHEDULES_DIR = "escalation/schedules"


@dataclass(frozen=True)
class LoadedFile:
    """A parsed file: its data, its lines, and what was wrong with it as (line, message)."""

    path: Path
    data: Any
    lines: LineMap
    errors: tuple[tuple[int | None, str], ...] = ()


@dataclass(frozen=True)
class LoadedExport:
    path: Path
    model: PDExport | None
    lines: LineMap = field(default_factory=LineMap, compare=False, repr=False)
    errors: tuple[tuple[int | None, str], ...] = ()


@dataclass(frozen=True)
class LoadedMatrix:
    """The matrix with where it came from: `validate` names lines through it."""

    path: Path
    root: Path
    data: Any
    model: Matrix | None
    lines: LineMap = field(default_factory=LineMap, compare=False, repr=False)
    errors: tuple[tuple[int | None, str], ...] = ()
    exports: dict[str, LoadedExport] = field(default_factory=dict, compare=False)

    def line(self, *loc: str | int) -> int | None:
        return self.lines.line_of(tuple(loc))

    @property
    def roster_path(self) -> Path:
        name = self.model.roster if self.model is not None else "readiness/roster.yaml"
        return self.root / name


def _parse(path: Path) -> LoadedFile:
    """YAML, or JSON (read as YAML for its lines; by `json` alone when YAML refuses it)."""
    text = read_text(path)
    try:
        data, lines = parse_yaml(text, path)
        return LoadedFile(path, data, lines)
    except ConfigError as exc:
        if path.suffix == ".json":
            try:
                return LoadedFile(path, json.loads(text), LineMap())
            except ValueError:
                pass
        return LoadedFile(path, None, LineMap(), tuple(exc.problems))


def load_export(path: Path) -> LoadedExport:
    try:
        parsed = _parse(path)
    except ConfigError as exc:  # not found, unreadable
        return LoadedExport(path, None, LineMap(), tuple(exc.problems))
    if parsed.errors:
        return LoadedExport(path, None, parsed.lines, parsed.errors)
    if not isinstance(parsed.data, dict):
        return LoadedExport(
            path, None, parsed.lines, ((1, 'expected PagerDuty\'s {"schedule": {...}}'),)
        )
    model, problems = check(PDExport, parsed.data, parsed.lines)
    return LoadedExport(path, model, parsed.lines, tuple(problems))


def load_matrix(path: Path, root: Path | None = None) -> LoadedMatrix:
    """The matrix at `path` (YAML or Markdown). Only a file that cannot be read raises
    (BadInputError); everything else wrong with it is kept as its `errors`."""
    root = (root or path.parent).resolve()
    if not path.is_file():
        raise BadInputError(f"{path}: no escalation matrix here (expected {MATRIX_NAME})")
    if path.suffix.lower() in (".md", ".markdown"):
        from pagerdrill.escalation.markdown import parse_markdown

        parsed = parse_markdown(read_text(path), path, root / SCHEDULES_DIR)
    else:
        parsed = _parse(path)
    errors = list(parsed.errors)
    model = None
    data = parsed.data
    if not errors:
        if data is None:
            data = {}
        if isinstance(data, dict):
            model, problems = check(Matrix, data, parsed.lines)
            errors += problems
        else:
            errors.append((1, "expected a mapping (version, tiers, schedules ...)"))
    exports: dict[str, LoadedExport] = {}
    if model is not None:
        for name, spec in model.schedules.items():
            if spec.pagerduty:
                exports[name] = load_export(root / spec.pagerduty)
    return LoadedMatrix(path, root, data, model, parsed.lines, tuple(errors), exports)


def matrix_path(root: Path, explicit: Path | None = None) -> Path:
    """The matrix a command reads: `explicit`, else pagerdrill.yaml's `escalation.matrix`,
    else `escalation-matrix.yaml`, else `escalation-matrix.md`, in the workspace."""
    if explicit is not None:
        return explicit
    from pagerdrill.workspace import load_workspace

    configured = load_workspace(root).config.escalation.matrix
    if configured:
        return root / configured
    yaml_path = root / MATRIX_NAME
    if not yaml_path.exists() and (root / MARKDOWN_NAME).exists():
        return root / MARKDOWN_NAME
    return yaml_path
