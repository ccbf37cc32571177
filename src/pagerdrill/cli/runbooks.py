"""`pagerdrill runbooks ...`: new, lint, index, search, validate, list, env.

Thin: the work is in `pagerdrill.runbooks`; this parses, delegates and renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pagerdrill.cli.options import WorkspaceOption

if TYPE_CHECKING:
    from pagerdrill.workspace.config import RunbooksConfig

app = typer.Typer(
    help="The workspace's runbooks as checked artefacts: scaffold, lint against the team's "
    "template, index, search, and validate their local-stack commands on the running stack.",
    short_help="New, lint, index, search and validate runbooks.",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", metavar="DIR", help="Runbooks folder (default: the workspace's)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document.")]


def _out(text: str = "") -> None:
    typer.echo(text)


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _context(
    workspace: Path | None, folder: Path | None
) -> tuple[Path | None, Path, RunbooksConfig]:
    """(workspace root or None, runbooks folder, template)."""
    from pagerdrill.errors import BadInputError, WorkspaceNotFound
    from pagerdrill.runbooks import settings
    from pagerdrill.workspace import find_workspace

    root: Path | None
    try:
        root = find_workspace(workspace)
    except WorkspaceNotFound:
        if workspace is not None or folder is None:
            raise
        root = None
    template = settings(root)
    if folder is None:
        assert root is not None
        folder = root / template.dir
    if not folder.is_dir():
        raise BadInputError(f"{folder}: no such runbooks folder")
    return root, folder, template


@app.command("lint")
def lint(
    files: Annotated[
        list[Path] | None,
        typer.Argument(metavar="FILE", help="Runbook files (default: every runbook)."),
    ] = None,
    folder: DirOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every problem of every runbook at once, as `file:line: what is wrong (what was
    expected)`. Exit 0 clean, 1 problems found, 2 bad usage."""
    from pagerdrill.errors import BadInputError
    from pagerdrill.runbooks import lint_folder
    from pagerdrill.scenarios.model import scenario_files

    root, folder, template = _context(workspace, folder)
    for f in files or []:
        if not f.is_file():
            raise BadInputError(f"{f}: no such runbook file")
    scenarios = scenario_files(root) if root is not None else []
    problems = lint_folder(folder, template, list(files) if files else None, scenarios)
    if as_json:
        _out(json.dumps({"problems": [p.to_json() for p in problems]}, indent=2))
    else:
        for p in problems:
            _out(str(p))
        checked = len(files) if files else len(list(_runbooks(folder, template)))
        _err(f"{len(problems)} problem(s) in {checked} runbook(s)")
    if problems:
        raise typer.Exit(1)


def _runbooks(folder: Path, template: RunbooksConfig):
    from pagerdrill.runbooks import runbook_files

    return runbook_files(folder, template.index)


@app.command("index")
def index(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 1 when the index is stale.")
    ] = False,
    folder: DirOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Rewrite the index table of the runbooks' README (between its markers) from each
    runbook's title, symptom and severity."""
    from pagerdrill.runbooks.index import refresh_index

    _, folder, template = _context(workspace, folder)
    path, stale = refresh_index(folder, template.index, write=not check)
    if check:
        if stale:
            _err(f"{path}: the index is stale (`pagerdrill runbooks index` rewrites it)")
            raise typer.Exit(1)
        _err(f"{path}: the index is up to date")
    else:
        _err(f"{path}: {'index rewritten' if stale else 'already up to date'}")


@app.command("new")
def new(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="File name without .md, e.g. redis-cache-flush.")
    ],
    title: Annotated[str | None, typer.Option("--title", help="The runbook's title.")] = None,
    author: Annotated[
        str | None, typer.Option("--author", help="Default: `git config user.name`.")
    ] = None,
    folder: DirOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Write a runbook in the team's template, each section a placeholder lint rejects
    until it is filled, and add it to the index."""
    from pagerdrill.runbooks.index import refresh_index
    from pagerdrill.runbooks.scaffold import new_runbook

    _, folder, template = _context(workspace, folder)
    path = new_runbook(folder, name, template, title=title, author=author)
    refresh_index(folder, template.index)
    _out(str(path))
    _err(f"wrote {path} and added it to {folder / template.index}; fill in every {{{{TBD}}}}")


@app.command("search")
def search(
    query: Annotated[
        list[str], typer.Argument(metavar="QUERY", help="What you see, in your own words.")
    ],
    limit: Annotated[int, typer.Option("-n", help="How many results.", min=1)] = 5,
    folder: DirOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Runbooks ranked by relevance to a symptom (BM25, stemmed, title and symptom
    weighted above the body)."""
    from pagerdrill.runbooks import RunbookIndex
    from pagerdrill.runbooks.lint import read_runbook

    _, folder, template = _context(workspace, folder)
    books = [read_runbook(p) for p in _runbooks(folder, template)]
    hits = RunbookIndex(books).search(" ".join(query), limit)
    if as_json:
        doc = [
            {
                "file": str(h.runbook.path),
                "title": h.runbook.title,
                "score": round(h.score, 4),
                "snippet": h.snippet,
            }
            for h in hits
        ]
        _out(json.dumps(doc, indent=2))
        return
    if not hits:
        _err("no runbook matches")
        raise typer.Exit(1)
    for h in hits:
        _out(f"{h.score:6.2f}  {h.runbook.path.name}  {h.runbook.title}")
        if h.snippet:
            _out(f"        {h.snippet}")


@app.command("env")
def env(workspace: WorkspaceOption = None) -> None:
    """The variables the local-stack commands of the runbooks read ($API, $RT, $GAME,
    $TRAFFIC, $REDIS_URL ...), as `export` lines: `eval "$(pagerdrill runbooks env)"`."""
    import shlex

    from pagerdrill.runbooks.validate import stack_environment
    from pagerdrill.targets import open_target
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    target = open_target(ws)
    if not target.is_up():
        from pagerdrill.errors import PagerdrillError

        raise PagerdrillError("the stack is not up (`pagerdrill stack up` starts it)")
    for key, value in stack_environment(target.status(), ws.root).items():
        _out(f"export {key}={shlex.quote(value)}")


@app.command("validate")
def validate(
    names: Annotated[
        list[str], typer.Argument(metavar="NAME", help="Runbook names (file stems) or files.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Run without asking.")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds per command (default: template's).")
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run each runbook's local-stack Diagnosis commands against the running stack, one
    at a time, each with a timeout, and append the outcome to runbooks/validation/NAME.jsonl.
    Deployed commands are never run. Shows the commands and asks first, unless --yes."""
    from pagerdrill.errors import BadInputError, PagerdrillError
    from pagerdrill.runbooks.lint import read_runbook
    from pagerdrill.runbooks.validate import local_commands, stack_environment, validate_runbook
    from pagerdrill.targets import open_target
    from pagerdrill.workspace import open_workspace

    ws = open_workspace(workspace)
    template = ws.config.runbooks
    folder = ws.root / template.dir
    books = []
    for name in names:
        path = Path(name) if name.endswith(".md") else folder / f"{name}.md"
        if not path.is_file():
            raise BadInputError(f"no runbook '{name}' ({path} does not exist)")
        books.append(read_runbook(path))
    plan = [(rb, local_commands(rb, template)) for rb in books]
    for rb, commands in plan:
        if not commands:
            raise BadInputError(
                f'{rb.path}: no commands under "{template.local_label}" to validate'
            )
    target = open_target(ws)
    if not target.is_up():
        raise PagerdrillError("the stack is not up (`pagerdrill stack up` starts it)")
    stack_env = stack_environment(target.status(), ws.root)
    for rb, commands in plan:
        _err(f"{rb.path} ({template.local_label}): {len(commands)} command(s)")
        for c in commands:
            _err(f"  {rb.path.name}:{c.line}: {c.text}")
    if not yes and not typer.confirm("Run these commands against the stack?", err=True):
        _err("nothing run")
        raise typer.Exit(1)
    records = []
    failed = False
    for rb, _ in plan:

        def show(o, rb=rb) -> None:
            mark = "✓" if o.ok else "✗"
            extra = f" ({o.detail})" if o.detail else ""
            _err(f"{mark} {rb.path}:{o.command.line}: {o.status}, {o.duration_s:.1f} s{extra}")
            if not o.ok:
                for line in o.output[:5]:
                    _err(f"    {line}")

        _, record = validate_runbook(rb, template, stack_env, ws.root, show, timeout)
        records.append(record)
        failed |= not record["passed"]
        verdict = "passed" if record["passed"] else "FAILED"
        _err(f"{rb.path.name}: {verdict} (logged to {template.dir}/validation/{rb.name}.jsonl)")
    if as_json:
        _out(json.dumps(records, indent=2))
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_(
    folder: DirOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every runbook with its severity, and when it last validated and whether it passed."""
    from pagerdrill.runbooks.lint import read_runbook
    from pagerdrill.runbooks.validate import last_validation

    _, folder, template = _context(workspace, folder)
    rows = []
    for path in _runbooks(folder, template):
        rb = read_runbook(path)
        last = last_validation(folder, rb.name)
        rows.append(
            {
                "name": rb.name,
                "title": rb.title,
                "severity": rb.severity,
                "validated_at": last.get("at") if last else None,
                "passed": last.get("passed") if last else None,
                "changed_since": last is not None and last.get("sha256") != rb.sha256,
            }
        )
    if as_json:
        _out(json.dumps(rows, indent=2))
        return
    width = max([len(rb_name) for rb_name in (str(r["name"]) for r in rows)] + [7])
    # severity last: a runbook may give a sentence there ("P3 (P1/P2 if the route is
    # sign-in ...)"), and only the last column can run long without pushing the others
    _out(f"{'RUNBOOK':<{width}}  VALIDATED                  {'RESULT':<22}  SEV")
    for r in rows:
        when = r["validated_at"] or "never"
        result = "-" if r["passed"] is None else ("passed" if r["passed"] else "failed")
        if r["changed_since"]:
            result += " (changed since)"
        _out(f"{r['name']:<{width}}  {when:<25}  {result:<22}  {r['severity'] or '-'}")
    sys.stdout.flush()
