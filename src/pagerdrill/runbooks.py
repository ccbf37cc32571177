"""The workspace's runbooks (`runbooks/*.md`): loaded, and searched by title and body.

Each runbook is markdown with a `# Title` and the template's sections (Symptom,
Likely causes, Diagnosis, Fix, Prevention; see runbooks/README.md). Search ranks a
runbook by how many of the query's words it has, a word in the title counting most,
then the symptom, then the rest; every word must appear somewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RUNBOOKS_DIR = "runbooks"
INDEX = "README.md"
_WORD = re.compile(r"[a-z0-9][a-z0-9_.:/-]*")


@dataclass(frozen=True)
class Runbook:
    path: Path
    title: str
    body: str
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def symptom(self) -> str:
        return self.sections.get("symptom", "")


@dataclass(frozen=True)
class Hit:
    runbook: Runbook
    score: float
    snippet: str


def parse_runbook(path: Path, text: str) -> Runbook:
    title = ""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            current = sections.setdefault(line[3:].strip().lower(), [])
        elif current is not None:
            current.append(line)
    return Runbook(
        path=path,
        title=title or path.stem.replace("-", " "),
        body=text,
        sections={k: "\n".join(v).strip() for k, v in sections.items()},
    )


def load_runbooks(root: Path | None) -> list[Runbook]:
    """Every `*.md` under `<root>/runbooks` but the index, by file name. Unreadable
    files are left out (a runbook is never worth failing a drill over)."""
    if root is None:
        return []
    folder = root / RUNBOOKS_DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*.md")):
        if path.name == INDEX and path.parent == folder:
            continue
        try:
            out.append(parse_runbook(path, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return out


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _snippet(text: str, words: list[str], width: int = 70) -> str:
    """The first line that has one of the words, trimmed around it."""
    for line in text.splitlines():
        low = line.lower()
        for w in words:
            at = low.find(w)
            if at >= 0:
                start = max(0, at - width // 3)
                piece = line[start : start + width].strip()
                return ("…" if start else "") + piece + ("…" if start + width < len(line) else "")
    return ""


def search(runbooks: list[Runbook], query: str) -> list[Hit]:
    """Runbooks that have every word of `query`, best first. An empty query lists all."""
    words = _words(query)
    if not words:
        return [Hit(r, 0.0, r.symptom.splitlines()[0] if r.symptom else "") for r in runbooks]
    hits = []
    for rb in runbooks:
        title, symptom, body = rb.title.lower(), rb.symptom.lower(), rb.body.lower()
        if not all(w in body or w in title for w in words):
            continue
        score = 0.0
        for w in words:
            score += 5.0 * title.count(w) + 2.0 * symptom.count(w) + min(body.count(w), 10) * 0.5
        snippet = _snippet(rb.symptom, words) or _snippet(rb.body, words)
        hits.append(Hit(rb, score, snippet))
    hits.sort(key=lambda h: (-h.score, h.runbook.name))
    return hits
