"""The documents an engineer reads for the gate, parsed for what the read shows: a
Markdown security register (findings `SF-001` with title, category, score, mitigation
status and source link) and a Keep a Changelog changelog (`## [1.4.0] - 2026-11-20`
with Added / Changed / Deprecated / Removed / Fixed / Security)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pagerdrill.errors import ConfigError
from pagerdrill.workspace.yamlfile import read_text


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    category: str
    score: float | None
    status: str
    source: str
    line: int

    @property
    def pending(self) -> bool:
        return self.status.lower().startswith("pending")

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "score": self.score,
            "status": self.status,
            "source": self.source,
            "line": self.line,
        }


_COLUMNS = ("id", "title", "category", "score", "status", "source")
_FINDING_ID = re.compile(r"^SF-\d{3,}$")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _finding(number: int, cells: list[str], header: dict[str, int]) -> Finding | str:
    """The finding of one row of the register's table, else what is wrong with it."""
    if len(cells) < len(header):
        return f"a finding row has {len(cells)} cells, expected {len(header)}"

    def cell(name: str) -> str:
        return cells[header[name]] if name in header else ""

    fid = cell("id").strip("*` ")
    if not _FINDING_ID.match(fid):
        return f"finding id {fid!r}: expected SF- and digits (SF-001)"
    raw_score = cell("score")
    try:
        score = float(raw_score) if raw_score else None
    except ValueError:
        return f"{fid}: score {raw_score!r}: expected a number"
    link = _LINK.search(cell("source"))
    return Finding(
        id=fid,
        title=cell("title"),
        category=cell("category"),
        score=score,
        status=cell("status"),
        source=link.group(2) if link else cell("source"),
        line=number,
    )


def parse_register(path: Path) -> list[Finding]:
    """Every finding of the register's table(s). A row that is not a finding of the
    expected shape is a ConfigError naming its line and what was expected."""
    text = read_text(path)
    findings: list[Finding] = []
    problems: list[tuple[int | None, str]] = []
    header: dict[str, int] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = _cells(line)
        lowered = [c.lower() for c in cells]
        if header is None:
            if "id" in lowered and "status" in lowered:
                missing = [c for c in _COLUMNS if c not in lowered]
                if missing:
                    problems.append(
                        (
                            number,
                            f"register table lacks the column(s) {', '.join(missing)} "
                            f"(expected {' | '.join(_COLUMNS)})",
                        )
                    )
                header = {name: lowered.index(name) for name in _COLUMNS if name in lowered}
            continue
        if set(line.strip()) <= set("|-: "):
            continue
        found = _finding(number, cells, header)
        if isinstance(found, str):
            problems.append((number, found))
        else:
            findings.append(found)
    if problems:
        raise ConfigError(path, problems)
    if not findings:
        raise ConfigError(
            path, [(None, "no findings (expected a table: " + " | ".join(_COLUMNS) + ")")]
        )
    return findings


def pending_in(findings: list[Finding], categories: list[str]) -> list[Finding]:
    wanted = {c.lower() for c in categories}
    return [f for f in findings if f.pending and f.category.lower() in wanted]


@dataclass(frozen=True)
class Release:
    version: str
    date: str | None
    line: int
    changes: dict[str, list[str]] = field(default_factory=dict)
    """Added / Changed / Deprecated / Removed ... and their bullets."""

    def to_json(self) -> dict:
        return {"version": self.version, "date": self.date, "changes": self.changes}


_RELEASE = re.compile(r"^##\s+\[([^\]]+)\](?:\s*-\s*(\d{4}-\d{2}-\d{2}))?\s*$")
_KINDS = ("added", "changed", "deprecated", "removed", "fixed", "security")


def parse_changelog(path: Path) -> list[Release]:
    """The releases of a Keep a Changelog file, newest first (as the file lists them)."""
    text = read_text(path)
    releases: list[Release] = []
    problems: list[tuple[int | None, str]] = []
    current: Release | None = None
    kind: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            m = _RELEASE.match(line)
            if not m:
                problems.append(
                    (
                        number,
                        f"{line.strip()!r}: expected a release heading like "
                        "'## [1.4.0] - 2026-11-20' or '## [Unreleased]'",
                    )
                )
                current = None
                continue
            current = Release(m.group(1), m.group(2), number, {})
            releases.append(current)
            kind = None
        elif line.startswith("### ") and current is not None:
            kind = line[4:].strip()
            if kind.lower() not in _KINDS:
                problems.append(
                    (
                        number,
                        f"{kind!r}: expected one of Added, Changed, Deprecated, "
                        "Removed, Fixed, Security",
                    )
                )
                kind = None
                continue
            current.changes.setdefault(kind, [])
        elif line.lstrip().startswith(("- ", "* ")) and current is not None and kind:
            current.changes[kind].append(line.strip()[2:].strip())
    if problems:
        raise ConfigError(path, problems)
    if not releases:
        raise ConfigError(path, [(None, "no releases (expected '## [1.4.0] - 2026-11-20')")])
    return releases


def released(releases: list[Release]) -> list[Release]:
    return [r for r in releases if r.version.lower() != "unreleased"]


def since(releases: list[Release], last_seen: str | None) -> list[Release]:
    """The releases newer than `last_seen` (all of them when there was no read)."""
    out = []
    for r in releases:
        if last_seen is not None and r.version == last_seen:
            break
        out.append(r)
    return out
