"""What the CLI prints, as a new user reads it: piped output without padding, exports
that end their last line, a list that says why it is empty, and a headless run whose
stdout holds only its summary."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from drilling import FAST, scenario
from helpers import REPO, UNBUFFERED, pagerdrill_cli, write_workspace
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace

JOURNALS = REPO / "tests" / "fixtures" / "journals"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, timeout=150, env=UNBUFFERED | (env or {}))


def workspace_with_drills(tmp_path: Path, drop: tuple[str, ...] = ()) -> Path:
    """A workspace holding the recorded journals, without the events of types `drop`."""
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    for path in JOURNALS.glob("*.jsonl"):
        lines = [x for x in path.read_text().splitlines() if json.loads(x)["type"] not in drop]
        drill = json.loads(lines[0])["drill"]
        (root / "drills" / f"{drill}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_a_list_that_filters_out_every_drill_says_none_match_and_names_the_filters(tmp_path):
    root = workspace_with_drills(tmp_path)
    done = cli("drills", "list", "--engineer", "nobody", "--scenario", "x", "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "no drill matches --engineer nobody --scenario x" in done.stdout
    assert "no drills yet" not in done.stdout
    empty = write_workspace(tmp_path / "empty")
    (empty / "drills").mkdir()
    done = cli("drills", "list", "-w", str(empty))
    assert "no drills yet" in done.stdout


def test_the_right_column_is_a_dash_for_a_drill_with_no_hypothesis(tmp_path):
    root = workspace_with_drills(tmp_path, drop=("hypothesis",))
    done = cli("drills", "list", "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout
    header, *rows = done.stdout.splitlines()[:6]
    right = header.index("RIGHT")
    assert rows and all(row[right : right + 5].strip() == "-" for row in rows), rows


@pytest.mark.parametrize(
    "args",
    [("drills", "show", "8def"), ("drills", "list"), ("scenarios", "list"),
     ("scenarios", "show", "ws-handshake-storm")],
)  # fmt: skip
def test_piped_output_has_no_trailing_spaces(tmp_path, args):
    root = workspace_with_drills(tmp_path)
    done = cli(*args, "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) > 3
    padded = [line for line in lines if line != line.rstrip()]
    assert not padded, padded[:3]


@pytest.mark.parametrize("fmt", ["slack", "markdown", "json", "html"])
def test_every_export_ends_its_last_line(tmp_path, fmt):
    root = workspace_with_drills(tmp_path)
    done = cli("drills", "export", "8def", "--format", fmt, "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.endswith("\n") and not done.stdout.endswith("\n\n")
    out = tmp_path / f"export.{fmt}"
    done = cli("drills", "export", "8def", "--format", fmt, "-o", str(out), "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout
    text = out.read_text()
    assert text.endswith("\n") and not text.endswith("\n\n")


@pytest.mark.stack
def test_run_needs_neither_headless_nor_engineer_and_its_stdout_is_the_summary(workspace_dir):
    """The stack's start-up progress and the drill's events go to stderr; the engineer
    defaults as in `drill` (git config user.name, else the login name)."""
    done = cli(
        "run", scenario("api-500-injection"), "--autopilot", *FAST, "-w", str(workspace_dir),
        env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null", "USER": "ana",
             "LOGNAME": "ana"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert "starting the stack" in done.stderr and "healthy" in done.stderr
    assert "healthy" not in done.stdout and "starting" not in done.stdout
    first, *_ = done.stdout.strip().splitlines()
    assert first.startswith("500s on a non-critical route (P3), ana: closed"), done.stdout
    assert "journal:" in done.stdout
    assert not LocalTarget(load_workspace(workspace_dir)).is_up()  # it took its stack down


COMMANDS = [
    ("init",), ("run",), ("drill",), ("recover",),
    *[("stack", c) for c in ("up", "down", "status", "logs", "stop", "start", "restart", "exec")],
    *[("scenarios", c) for c in ("list", "show", "validate", "check")],
    *[("drills", c) for c in ("list", "show", "export", "review")],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_names_every_argument_in_one_style(command):
    done = cli(*command, "--help")
    assert done.returncode == 0, done.stderr + done.stdout
    usage = done.stdout.splitlines()[0]
    names = re.findall(r"[{\[]([^\]}]+)[}\]]", usage.split("[OPTIONS]", 1)[1])
    assert all(name.isupper() for name in names), usage


def test_stack_exec_usage_shows_the_command_it_runs():
    usage = cli("stack", "exec", "--help").stdout.splitlines()[0]
    assert usage.endswith("{SERVICE} {COMMAND}..."), usage


@pytest.mark.parametrize("group", [(), ("stack",), ("scenarios",), ("drills",)], ids=str)
def test_group_help_gives_each_command_a_whole_short_help(group):
    done = cli(*group, "--help")
    listed = done.stdout.split("Commands:", 1)[1].strip().splitlines()
    assert listed and not [line for line in listed if line.rstrip().endswith("...")], listed
