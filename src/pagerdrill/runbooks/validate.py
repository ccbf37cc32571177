"""`runbooks validate`: run a runbook's local-stack Diagnosis commands against the
running stack, one at a time, each with a timeout, and append what happened to the
workspace's validation log (`runbooks/validation/NAME.jsonl`, the seed's "support
runbook validation log").

Only blocks under the template's local label (`Local stack`) are run; Deployed and
Compose blocks never are. Each command runs alone in `bash`, in the workspace, with the
stack's endpoints in the environment (`stack_environment`), so a command never has to
compute them itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pagerdrill.journal.redact import redact_url
from pagerdrill.runbooks.model import Runbook, labelled_fences
from pagerdrill.workspace.config import RunbooksConfig

Status = Literal["passed", "failed", "timeout", "missing-tool"]
OUTPUT_LINES = 10
VALIDATION_DIR = "validation"
#: seconds between the two samples of a `for i in 1 2; ... sleep ${SAMPLE_S:-10}` loop
SAMPLE_S = "2"


@dataclass(frozen=True)
class Command:
    line: int
    """The command's first line in the runbook."""
    text: str


@dataclass(frozen=True)
class Outcome:
    command: Command
    status: Status
    exit_code: int | None
    duration_s: float
    output: list[str] = field(default_factory=list)
    """The first lines of its output (stdout, then stderr)."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict:
        return {
            "line": self.command.line,
            "command": self.command.text,
            "status": self.status,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "output": self.output,
            "detail": self.detail,
        }


def local_commands(rb: Runbook, template: RunbooksConfig) -> list[Command]:
    """The commands of the blocks under the local label, each shell line on its own
    (backslash continuations joined, comment-only lines left out)."""
    out: list[Command] = []
    for section in rb.parsed:
        for label, block in labelled_fences(section, template.all_labels):
            if label != template.local_label:
                continue
            first = block.line + 1  # the fence's opening line is block.line
            pending: list[str] = []
            start = first
            for offset, raw in enumerate(block.text.split("\n")):
                if not pending:
                    start = first + offset
                    if not raw.strip() or raw.lstrip().startswith("#"):
                        continue
                pending.append(raw)
                if raw.rstrip().endswith("\\"):
                    continue
                out.append(Command(start, "\n".join(pending)))
                pending = []
            if pending:
                out.append(Command(start, "\n".join(pending)))
    return out


def env_name(service: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", service.upper())


def stack_environment(statuses: Iterable, root: Path) -> dict[str, str]:
    """The documented variable set: each service's HTTP base URL under its name in
    capitals (API, RT, GAME, TRAFFIC; `-` becomes `_`), REDIS_URL (with its password),
    PAGERDRILL_WORKSPACE (so `pagerdrill stack ...` acts on this stack) and SAMPLE_S."""
    env: dict[str, str] = {"PAGERDRILL_WORKSPACE": str(root)}
    for s in statuses:
        endpoints = s.endpoints
        if "http" in endpoints:
            env[env_name(s.name)] = endpoints["http"]
        if "redis" in endpoints:
            env.setdefault("REDIS_URL", endpoints["redis"])
    return env


def _last_stage(command: str) -> str:
    """The program of a pipeline's last stage (quotes taken into account)."""
    depth_quote = None
    last = 0
    for i, ch in enumerate(command):
        if depth_quote:
            if ch == depth_quote:
                depth_quote = None
        elif ch in "'\"":
            depth_quote = ch
        elif ch == "|" and command[i - 1 : i] != "|" and command[i + 1 : i + 2] != "|":
            last = i + 1
    words = command[last:].split()
    return words[0] if words else ""


def run_command(command: Command, env: dict[str, str], cwd: Path, timeout_s: float) -> Outcome:
    """Run one command in bash, in its own process group (a hung pipeline is killed
    whole). A `grep` at the end of a pipeline that finds nothing (exit 1, nothing on
    stderr) passes: on a healthy stack "no errors" is the answer it looks for."""
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", command.text],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return Outcome(
            command,
            "timeout",
            None,
            time.monotonic() - started,
            _first_lines(stdout, stderr),
            f"did not finish in {timeout_s:g} s",
        )
    duration = time.monotonic() - started
    code = proc.returncode
    lines = _first_lines(stdout, stderr)
    missing = re.search(r"(\S+): command not found", stderr)
    if code == 127 and missing:
        tool = missing.group(1)
        return Outcome(
            command, "missing-tool", code, duration, lines, f"needs {tool}, not installed"
        )
    if code == 0 or (code == 1 and not stderr.strip() and _last_stage(command.text) == "grep"):
        return Outcome(command, "passed", code, duration, lines)
    return Outcome(command, "failed", code, duration, lines, f"exit code {code}")


def _first_lines(stdout: str, stderr: str) -> list[str]:
    text = (stdout or "") + (stderr or "")
    return [redact_url(line) for line in text.splitlines()[:OUTPUT_LINES]]


def validation_log(folder: Path, name: str) -> Path:
    return folder / VALIDATION_DIR / f"{name}.jsonl"


def validate_runbook(
    rb: Runbook,
    template: RunbooksConfig,
    stack_env: dict[str, str],
    cwd: Path,
    on_outcome: Callable[[Outcome], None] | None = None,
    timeout_s: float | None = None,
) -> tuple[list[Outcome], dict]:
    """Run the runbook's local commands; return the outcomes and the log record (also
    appended to its validation log)."""
    base = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # where this pagerdrill's `pagerdrill` is
    base["PATH"] = f"{bin_dir}{os.pathsep}{base.get('PATH', '')}"
    env = base | {"SAMPLE_S": SAMPLE_S} | stack_env
    outcomes = []
    started = dt.datetime.now(dt.UTC)
    for command in local_commands(rb, template):
        outcome = run_command(command, env, cwd, timeout_s or template.command_timeout_s)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    record = {
        "at": started.isoformat(timespec="seconds"),
        "runbook": rb.path.name,
        "sha256": rb.sha256,
        "passed": bool(outcomes) and all(o.ok for o in outcomes),
        "commands": [o.to_json() for o in outcomes],
    }
    log = validation_log(rb.path.parent, rb.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return outcomes, record


def last_validation(folder: Path, name: str) -> dict | None:
    """The newest record of a runbook's validation log (a torn last line is skipped)."""
    try:
        lines = validation_log(folder, name).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return None
