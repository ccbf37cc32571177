"""`runbooks new NAME`: a runbook in the team's template, every section holding a
visible `{{TBD: ...}}` that lint rejects until it is filled, added to the index."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

from pagerdrill.errors import BadInputError
from pagerdrill.workspace.config import RunbooksConfig

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def git_user(cwd: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "config", "user.name"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def _tbd(what: str) -> str:
    return "{{TBD: " + what + "}}"


def render(name: str, template: RunbooksConfig, title: str, author: str, today: dt.date) -> str:
    lines = [
        "---",
        f"title: {_yaml_text(title)}",
        f"author: {_yaml_text(author)}",
        f"date: {today.isoformat()}",
        "severity: " + _yaml_text(_tbd("P1, P2 or P3")),
        "---",
        f"# {title}",
        "",
    ]
    for s in template.sections:
        what = s.placeholder or f"the {s.name.lower()}"
        lines.append(f"## {s.name}")
        if s.form == "bullets":
            lines.append(f"- {_tbd(what)}")
        elif s.form == "steps":
            lines.append(f"1. {_tbd(what)}")
        else:
            lines.append(_tbd(what))
        for label in s.commands:
            lines += ["", f"{label}:", "```sh", _tbd(f"{label.lower()} command"), "```"]
        lines.append("")
    return "\n".join(lines)


def _yaml_text(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML string


def new_runbook(
    folder: Path,
    name: str,
    template: RunbooksConfig,
    title: str | None = None,
    author: str | None = None,
    today: dt.date | None = None,
) -> Path:
    """Write `folder/NAME.md`; refuses a name that is not a slug and an existing file.
    The file appears whole or not at all."""
    stem = name.removesuffix(".md")
    if not SLUG.fullmatch(stem):
        raise BadInputError(
            f"{name!r} is not a file-safe runbook name (expected lower-case words joined "
            "by '-', e.g. redis-cache-flush)"
        )
    path = folder / f"{stem}.md"
    if path.exists():
        raise BadInputError(f"{path} already exists; not overwriting a runbook")
    text = render(
        stem,
        template,
        title or stem.replace("-", " ").capitalize(),
        author if author is not None else (git_user(folder) or _tbd("author")),
        today or dt.date.today(),
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{stem}.md.tmp-{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)  # fails if someone wrote it meanwhile: never overwrite
    except FileExistsError:
        raise BadInputError(f"{path} already exists; not overwriting a runbook") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
