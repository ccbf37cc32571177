"""`runbooks lint`: every problem of every runbook against the team's template, each
as `file:line: what is wrong (what was expected)`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pagerdrill.runbooks.index import find_table
from pagerdrill.runbooks.model import Runbook, Section, labelled_fences
from pagerdrill.workspace.config import RunbooksConfig, RunbookSection

Code = Literal[
    "front-matter",
    "no-title",
    "missing-section",
    "duplicate-section",
    "empty-section",
    "section-order",
    "unknown-section",
    "not-one-paragraph",
    "not-bullets",
    "not-steps",
    "no-commands",
    "placeholder",
    "broken-link",
    "not-in-index",
    "index-row-missing-file",
    "no-index",
    "alert-runbook-missing",
]

#: `{{TBD}}` and the scaffold's `{{TBD: what goes here}}`, and bare TODO / TBD words
PLACEHOLDER = re.compile(r"\{\{\s*TBD\b[^}]*\}\}|\bTODO\b|\bTBD\b")

_EXPECTED = {
    "text": "content under the heading",
    "paragraph": "one paragraph",
    "bullets": 'a bulleted list ("- " items)',
    "steps": 'numbered steps ("1." items)',
}


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    code: Code
    message: str
    """What is wrong, then what was expected in parentheses."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def to_json(self) -> dict:
        return {
            "file": str(self.path),
            "line": self.line,
            "code": self.code,
            "message": self.message,
        }


def lint_runbook(rb: Runbook, template: RunbooksConfig) -> list[Problem]:
    """The problems of one runbook on its own (links are checked against its folder)."""
    out = [Problem(rb.path, fm.line, "front-matter", f"{fm.message}") for fm in rb.problems]
    if rb.title_line is None:
        out.append(
            Problem(
                rb.path,
                1,
                "no-title",
                'no title (expected a "# Title" heading or title: in the front matter)',
            )
        )
    first, problems = _sections(rb, template)
    out += problems
    out += _order_problems(rb, template, first)
    order = [s.name.lower() for s in template.sections]
    for n, rule in enumerate(template.sections):
        section = first.get(rule.name.lower())
        if section is None:
            if rule.required:
                at = _missing_at(rb, order[n + 1 :], first)
                out.append(Problem(rb.path, at, "missing-section", _missing(rule, n)))
            continue
        out.extend(_section_problems(rb, section, rule, template))
    return out + _text_problems(rb)


def _sections(rb: Runbook, template: RunbooksConfig) -> tuple[dict[str, Section], list[Problem]]:
    """Each section's first occurrence (by its lowercased name), and the problems of
    sections that appear twice or that the template does not know."""
    rules = {s.name.lower() for s in template.sections}
    first: dict[str, Section] = {}
    out = []
    for s in rb.parsed:
        key = s.name.lower()
        if key in first:
            out.append(
                Problem(
                    rb.path,
                    s.line,
                    "duplicate-section",
                    f'section "{s.name}" appears twice, first at line {first[key].line} '
                    "(expected each section once)",
                )
            )
            continue
        first[key] = s
        if key not in rules and not template.other_sections:
            out.append(
                Problem(
                    rb.path,
                    s.line,
                    "unknown-section",
                    f'unknown section "{s.name}" (expected only '
                    + ", ".join(x.name for x in template.sections)
                    + ")",
                )
            )
    return first, out


def _order_problems(
    rb: Runbook, template: RunbooksConfig, first: dict[str, Section]
) -> list[Problem]:
    """The template's sections that come before one that the template puts ahead."""
    order = [s.name.lower() for s in template.sections]
    out = []
    highest: tuple[int, str] | None = None
    for s in rb.parsed:
        key = s.name.lower()
        if key not in order or first.get(key) is not s:
            continue
        at = order.index(key)
        if highest is not None and at < highest[0]:
            out.append(
                Problem(
                    rb.path,
                    s.line,
                    "section-order",
                    f'section "{s.name}" is out of order (expected before "{highest[1]}")',
                )
            )
        elif highest is None or at > highest[0]:
            highest = (at, s.name)
    return out


def _text_problems(rb: Runbook) -> list[Problem]:
    """Placeholders left in the text, and links to runbooks that are not there."""
    out = []
    for number, text in enumerate(rb.text.split("\n"), start=1):
        m = PLACEHOLDER.search(text)
        if m:
            out.append(
                Problem(
                    rb.path,
                    number,
                    "placeholder",
                    f'placeholder "{m.group(0)}" left in (expected real content)',
                )
            )
    for line, target in rb.links:
        if "://" in target or target.startswith(("mailto:", "#")) or not target:
            continue
        file = target.split("#", 1)[0]
        if not file.endswith(".md"):
            continue
        if not (rb.path.parent / file).is_file():
            out.append(
                Problem(
                    rb.path,
                    line,
                    "broken-link",
                    f'link to "{file}", which does not exist (expected a runbook in '
                    f"{rb.path.parent.name}/)",
                )
            )
    return out


def _missing(rule: RunbookSection, n: int) -> str:
    where = "the first section" if n == 0 else f"section {n + 1}"
    return f'missing section "{rule.name}" (expected "## {rule.name}" as {where})'


def _missing_at(rb: Runbook, later: list[str], first: dict[str, Section]) -> int:
    """A missing section is reported where it should have been: at the next section
    of the template the runbook has, else at its last line."""
    for key in later:
        if key in first:
            return first[key].line
    return max(1, rb.lines_total - (1 if rb.text.endswith("\n") else 0))


def _section_problems(
    rb: Runbook, s: Section, rule: RunbookSection, template: RunbooksConfig
) -> list[Problem]:
    out: list[Problem] = []

    def add(line: int, code: Code, message: str) -> None:
        out.append(Problem(rb.path, line, code, message))

    name = f'section "{s.name}"'
    if not s.blocks:
        add(s.line, "empty-section", f"{name} is empty (expected {_EXPECTED[rule.form]})")
        return out
    if rule.form == "paragraph":
        if len(s.blocks) > 1:
            add(
                s.blocks[1].line,
                "not-one-paragraph",
                f"{name} is longer than one paragraph (expected one paragraph)",
            )
        elif s.blocks[0].kind != "paragraph":
            add(
                s.blocks[0].line,
                "not-one-paragraph",
                f"{name} is not a paragraph (expected one paragraph)",
            )
    elif rule.form == "bullets":
        bad = next((b for b in s.blocks if b.kind != "bullet_list"), None)
        if bad is not None:
            add(bad.line, "not-bullets", f'{name} is not a bulleted list (expected "- " items)')
    elif rule.form == "steps":
        bad = next((b for b in s.blocks if b.kind != "ordered_list"), None)
        if bad is not None:
            add(bad.line, "not-steps", f'{name} is not numbered steps (expected "1." items)')
    if rule.commands:
        fences = labelled_fences(s, template.all_labels)
        for label in rule.commands:
            if not any(lbl == label and b.text.strip() for lbl, b in fences):
                add(
                    s.line,
                    "no-commands",
                    f'{name} has no fenced commands under "{label}" (expected a fenced '
                    f'block right after a "{label}" label line or sub-heading)',
                )
    return out


def runbook_files(folder: Path, index: str) -> list[Path]:
    """Every runbook of a folder: its `*.md` files but the index, by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.md") if p.is_file() and p.name != index)


def index_problems(
    folder: Path, index: str, names: set[str], checked: set[str], whole: bool
) -> list[Problem]:
    """Runbooks missing from the index and (when the whole folder is linted) rows
    naming a file that does not exist."""
    path = folder / index
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [
            Problem(
                path,
                1,
                "no-index",
                "no index file (expected one with the index markers; "
                "`pagerdrill runbooks index` writes it)",
            )
        ]
    table = find_table(text)
    if table is None:
        return [
            Problem(
                path,
                1,
                "no-index",
                "no index table (expected one between the runbooks-index markers; "
                "`pagerdrill runbooks index` writes it)",
            )
        ]
    out = []
    listed = {r.target for r in table.rows}
    for name in sorted(checked - listed):
        out.append(
            Problem(
                path,
                table.end_line,
                "not-in-index",
                f'runbook "{name}" is not in the index (expected a row for it; '
                "`pagerdrill runbooks index` adds it)",
            )
        )
    if whole:
        for row in table.rows:
            if row.target not in names and not (folder / row.target).is_file():
                out.append(
                    Problem(
                        path,
                        row.line,
                        "index-row-missing-file",
                        f'index row for "{row.target}", which does not exist '
                        "(expected a runbook file of that name)",
                    )
                )
    return out


def alert_runbook_problems(scenarios: list[Path], names: set[str]) -> list[Problem]:
    """Scenario alerts whose `runbook:` names no runbook. The scenarios are read as
    YAML only, so a scenario broken elsewhere is still checked here."""
    from pagerdrill.errors import ConfigError
    from pagerdrill.workspace.yamlfile import parse_yaml, read_text

    out = []
    for path in scenarios:
        try:
            data, lines = parse_yaml(read_text(path), path)
        except ConfigError:
            continue  # `scenarios validate` reports it
        alerts = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(alerts, list):
            continue
        for i, alert in enumerate(alerts):
            name = alert.get("runbook") if isinstance(alert, dict) else None
            if isinstance(name, str) and name.removesuffix(".md") not in names:
                out.append(
                    Problem(
                        path,
                        lines.line_of(("alerts", i, "runbook")) or 1,
                        "alert-runbook-missing",
                        f'alert "{alert.get("name")}" names runbook "{name}", which does not '
                        "exist (expected the name of a runbook in the runbooks folder)",
                    )
                )
    return out


def read_runbook(path: Path) -> Runbook:
    """Parse a runbook file; an unreadable file is a BadInputError naming it."""
    from pagerdrill.errors import BadInputError
    from pagerdrill.runbooks.model import parse_runbook

    try:
        return parse_runbook(path, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such runbook file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read: {exc}") from None


def lint_folder(
    folder: Path,
    template: RunbooksConfig,
    files: list[Path] | None = None,
    scenarios: list[Path] | None = None,
) -> list[Problem]:
    """Every problem of the runbooks in `folder` (or only of `files`, with the index
    checked for them), and of scenario alerts naming runbooks that do not exist."""
    all_files = runbook_files(folder, template.index)
    names = {p.name for p in all_files}
    chosen = all_files if files is None else files
    out: list[Problem] = []
    for path in chosen:
        out.extend(lint_runbook(read_runbook(path), template))
    inside = {p.name for p in chosen if p.resolve().parent == folder.resolve()}
    out.extend(index_problems(folder, template.index, names, inside, files is None))
    if scenarios:
        out.extend(alert_runbook_problems(scenarios, {Path(n).stem for n in names}))
    return out
