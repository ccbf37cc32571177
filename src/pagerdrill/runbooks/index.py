"""The index table in the runbooks' README: one row per runbook (title, symptom,
severity), written between two markers so the prose around it is the team's own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pagerdrill.runbooks.model import Runbook

START = "<!-- runbooks-index:start (written by `pagerdrill runbooks index`) -->"
END = "<!-- runbooks-index:end -->"
_START_RE = re.compile(r"<!--\s*runbooks-index:start\b.*?-->")
_END_RE = re.compile(r"<!--\s*runbooks-index:end\s*-->")
_ROW_LINK = re.compile(r"^\|\s*\[[^\]]*\]\(<?([^)>\s]+)>?\)")
SYMPTOM_WIDTH = 110


@dataclass(frozen=True)
class IndexRow:
    line: int
    target: str


@dataclass(frozen=True)
class IndexTable:
    start_line: int
    end_line: int
    rows: tuple[IndexRow, ...]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def summary(symptom: str, width: int = SYMPTOM_WIDTH) -> str:
    """The symptom's first sentence, on one line, cut at `width`."""
    flat = " ".join(symptom.split())
    m = re.search(r"(?<=[.!?])\s", flat)
    first = flat[: m.start()] if m else flat
    if len(first) > width:
        first = first[: width - 1].rsplit(" ", 1)[0] + "…"
    return first


def render_table(runbooks: list[Runbook]) -> str:
    rows = ["| runbook | symptom | severity |", "|---|---|---|"]
    for rb in sorted(runbooks, key=lambda r: r.path.name):
        title = _cell(rb.title).replace("[", "\\[").replace("]", "\\]")
        rows.append(
            f"| [{title}]({rb.path.name}) | {_cell(summary(rb.symptom))} | "
            f"{_cell(rb.severity) or '-'} |"
        )
    return "\n".join(rows)


def find_table(text: str) -> IndexTable | None:
    """The index between the markers, or None when a marker is missing."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if _START_RE.search(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _END_RE.search(lines[i])), None)
    if end is None:
        return None
    rows = []
    for i in range(start + 1, end):
        m = _ROW_LINK.match(lines[i].strip())
        if m:
            rows.append(IndexRow(i + 1, m.group(1).split("#", 1)[0]))
    return IndexTable(start + 1, end + 1, tuple(rows))


def updated_index(text: str, runbooks: list[Runbook]) -> str:
    """`text` (the README) with the table between the markers rewritten; without
    markers, an `## Index` section holding them is added at the end."""
    table = render_table(runbooks)
    found = find_table(text)
    lines = text.split("\n")
    if found is None:
        base = text.rstrip("\n")
        head = f"{base}\n\n" if base else ""
        return f"{head}## Index\n\n{START}\n{table}\n{END}\n"
    out = [*lines[: found.start_line], table, *lines[found.end_line - 1 :]]
    return "\n".join(out)


def index_path(folder: Path, name: str) -> Path:
    return folder / name


def refresh_index(folder: Path, index: str, write: bool = True) -> tuple[Path, bool]:
    """Bring the index in `folder/index` up to date; returns (its path, whether it was
    stale). With `write=False` nothing is changed (`index --check`)."""
    import os

    from pagerdrill.runbooks.lint import read_runbook, runbook_files

    path = folder / index
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        from pagerdrill.errors import BadInputError

        raise BadInputError(f"{path}: cannot read: {exc}") from None
    books = [read_runbook(p) for p in runbook_files(folder, index)]
    new = updated_index(text, books)
    stale = new != text
    if stale and write:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(new, encoding="utf-8")
        os.replace(tmp, path)
    return path, stale
