"""One runbook, parsed once: its YAML front matter, its title and its sections.

Markdown is read with markdown-it-py (CommonMark, plus GitHub's tables), so a `## `
inside a fenced block is code, not a section, the way GitHub renders it. Line numbers
are the file's own (1-based), front matter included.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

#: the heading level of a runbook's sections (`## Symptom`); `#` is the title
SECTION_LEVEL = 2
FRONT_MATTER = "---"


@lru_cache(maxsize=1)
def markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True)
class Block:
    """A top-level block of a section: a paragraph, a list, a fenced block ..."""

    kind: str
    """The markdown-it token type without `_open` (paragraph, bullet_list, fence ...)."""
    line: int
    end_line: int
    text: str
    """The inline text of a paragraph or heading, the code of a fence."""
    level: int = 0
    """A heading's level."""
    label: str | None = None
    """For a fence: the label it sits under (see `label_of`)."""
    info: str = ""


@dataclass(frozen=True)
class Section:
    name: str
    line: int
    """The line of its heading."""
    end_line: int
    blocks: tuple[Block, ...]
    text: str
    """The section's source, heading excluded."""


@dataclass(frozen=True)
class FrontMatterProblem:
    line: int
    message: str


@dataclass(frozen=True)
class Runbook:
    path: Path
    title: str
    body: str
    """The markdown after the front matter (what a reader shows)."""
    sections: dict[str, str] = field(default_factory=dict)
    """Section text by lower-cased heading (the first of a name when duplicated)."""
    front_matter: dict[str, Any] = field(default_factory=dict)
    parsed: tuple[Section, ...] = ()
    """Every section in file order, duplicates kept."""
    title_line: int | None = None
    text: str = ""
    """The whole file."""
    problems: tuple[FrontMatterProblem, ...] = ()
    """What was wrong with the front matter (lint reports them)."""
    links: tuple[tuple[int, str], ...] = ()
    """(line, target) of every link and of every `name.md` written in the text."""
    lines_total: int = 0

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def symptom(self) -> str:
        return self.sections.get("symptom", "")

    @property
    def severity(self) -> str:
        value = self.front_matter.get("severity")
        return str(value) if value is not None else ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def section(self, name: str) -> Section | None:
        for s in self.parsed:
            if s.name.lower() == name.lower():
                return s
        return None


def split_front_matter(text: str) -> tuple[str | None, int, str]:
    """(the front matter's YAML or None, how many lines it spans, the rest)."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != FRONT_MATTER:
        return None, 0, text
    for i in range(1, len(lines)):
        if lines[i].rstrip() in (FRONT_MATTER, "..."):
            return "\n".join(lines[1:i]), i + 1, "\n".join(lines[i + 1 :])
    return None, 0, text  # no closing line: it is a thematic break, not front matter


_KNOWN_KEYS: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "author": (str,),
    "severity": (str,),
    "alerts": (list,),
}


def _read_front_matter(raw: str) -> tuple[dict[str, Any], list[FrontMatterProblem]]:
    try:
        data = yaml.safe_load(raw)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 2) if mark else 1
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        return {}, [FrontMatterProblem(line, f"front matter is not valid YAML: {what}")]
    except yaml.YAMLError as exc:
        return {}, [FrontMatterProblem(1, f"front matter is not valid YAML: {exc}")]
    except RecursionError:
        return {}, [FrontMatterProblem(1, "front matter is nested too deeply")]
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [FrontMatterProblem(1, "front matter is not a mapping (expected key: value)")]
    problems = []
    out: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        kinds = _KNOWN_KEYS.get(key)
        if kinds and not isinstance(value, kinds):
            what = "a list of alert names" if key == "alerts" else "text"
            line = _key_line(raw, key)
            problems.append(FrontMatterProblem(line, f"front matter {key}: expected {what}"))
            continue
        if key == "alerts" and not all(isinstance(a, str) for a in value):
            problems.append(
                FrontMatterProblem(_key_line(raw, key), "front matter alerts: expected names")
            )
            continue
        out[key] = value
    return out, problems


def _key_line(raw: str, key: str) -> int:
    for i, line in enumerate(raw.split("\n")):
        if line.startswith(f"{key}:"):
            return i + 2
    return 1


_BARE_MD = re.compile(r"(?<![\w/.-])([A-Za-z0-9][\w.-]*\.md)\b")


def _inline_text(token: Token) -> str:
    return token.content if token.type == "inline" else ""


def _walk_links(tokens: list[Token], offset: int, out: list[tuple[int, str]]) -> None:
    line = 0
    for tok in tokens:
        if tok.map is not None:
            line = tok.map[0] + 1
        if tok.type != "inline" or not tok.children:
            continue
        for child in tok.children:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                out.append((line, href))
            elif child.type == "text":
                for m in _BARE_MD.finditer(child.content):
                    out.append((line, m.group(1)))


def parse_runbook(path: Path, text: str) -> Runbook:
    """Parse a runbook; never raises on content (problems are kept for lint)."""
    raw_fm, fm_lines, rest = split_front_matter(text)
    front: dict[str, Any] = {}
    problems: list[FrontMatterProblem] = []
    if raw_fm is not None:
        front, problems = _read_front_matter(raw_fm)
    # blank lines stand in for the front matter, so token lines are the file's own
    source = "\n" * fm_lines + rest
    tokens = markdown().parse(source)
    src_lines = source.split("\n")
    title, title_line = "", None
    heads: list[tuple[int, int, str, int]] = []  # (token index, level, text, line)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and tok.map:
            level = int(tok.tag[1:])
            content = _inline_text(tokens[i + 1]).strip()
            if level == 1 and not title:
                title, title_line = content, tok.map[0] + 1
            heads.append((i, level, content, tok.map[0] + 1))
    sections: list[Section] = []
    for n, (i, level, name, line) in enumerate(heads):
        if level != SECTION_LEVEL:
            continue
        end_index = len(tokens)
        for j, lvl, _, _ in heads[n + 1 :]:
            if lvl <= SECTION_LEVEL:
                end_index = j
                break
        blocks = _blocks(tokens[i + 3 : end_index])
        head_map = tokens[i].map
        start = head_map[1] if head_map else line
        end = len(src_lines)
        end_map = tokens[end_index].map if end_index < len(tokens) else None
        if end_map:
            end = end_map[0]
        body = "\n".join(src_lines[start:end]).strip()
        sections.append(Section(name, line, end, tuple(blocks), body))
    by_name: dict[str, str] = {}
    for s in sections:
        by_name.setdefault(s.name.lower(), s.text)
    links: list[tuple[int, str]] = []
    _walk_links(tokens, fm_lines, links)
    fm_title = front.get("title")
    return Runbook(
        path=path,
        title=(fm_title if isinstance(fm_title, str) and fm_title.strip() else title)
        or path.stem.replace("-", " "),
        body=rest,
        sections=by_name,
        front_matter=front,
        parsed=tuple(sections),
        title_line=title_line if title else (1 if fm_title else None),
        text=text,
        problems=tuple(problems),
        links=tuple(links),
        lines_total=len(src_lines),
    )


def _blocks(tokens: list[Token]) -> list[Block]:
    """The top-level blocks of a section, each fence with the label it sits under."""
    out: list[Block] = []
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None or tok.type.endswith("_close"):
            continue
        kind = tok.type.removesuffix("_open")
        text = ""
        level = 0
        if kind in ("paragraph", "heading") and i + 1 < len(tokens):
            text = _inline_text(tokens[i + 1])
            level = int(tok.tag[1:]) if kind == "heading" else 0
        elif kind in ("fence", "code_block", "html_block"):
            text = tok.content
        out.append(Block(kind, tok.map[0] + 1, tok.map[1], text, level, info=tok.info.strip()))
    return out


def label_of(text: str, labels: tuple[str, ...]) -> str | None:
    """The label a line of text starts with ("Local stack (ports from ...):" → Local
    stack), bold or italic marks aside; None when it starts with none of them."""
    plain = text.strip().lstrip("*_").strip()
    for label in sorted(labels, key=len, reverse=True):
        if plain[: len(label)].lower() == label.lower():
            after = plain[len(label) : len(label) + 1]
            if not after or not (after.isalnum() or after == "-"):
                return label
    return None


def labelled_fences(section: Section, labels: tuple[str, ...]) -> list[tuple[str | None, Block]]:
    """Each top-level fenced block of `section` with its label: the sub-heading it sits
    under, or the paragraph just before it (or before the fences run it starts), when
    that heading or paragraph begins with one of `labels`."""
    out: list[tuple[str | None, Block]] = []
    under_heading: str | None = None
    under_paragraph: str | None = None
    for block in section.blocks:
        if block.kind == "heading":
            under_heading, under_paragraph = label_of(block.text, labels), None
        elif block.kind == "paragraph":
            under_paragraph = label_of(block.text, labels)
        elif block.kind in ("fence", "code_block"):
            out.append((under_paragraph or under_heading, block))
        else:
            under_paragraph = None
    return out
