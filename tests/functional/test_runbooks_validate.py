# ruff: noqa: E501
"""`runbooks validate` on a real local reference stack: the shipped runbooks' local-stack
commands all pass and are logged; a failing command is named with its line; nothing
runs without --yes or a "y"."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from helpers import REPO, pagerdrill_cli

pytestmark = pytest.mark.stack


def pagerdrill(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, input=input, timeout=600)


@pytest.fixture(scope="module")
def ws(stack):
    """The stack's workspace with the shipped runbooks, kept in git as a team would."""
    root = stack.workspace.root
    shutil.copytree(
        REPO / "runbooks", root / "runbooks", ignore=shutil.ignore_patterns("validation")
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "workspace"], cwd=root, check=True)
    return root


SHIPPED = sorted(p.stem for p in (REPO / "runbooks").glob("*.md") if p.name != "README.md")


# every command of seven runbooks, each sampling the stack for a few seconds: on a busy
# machine this takes longer than the suite's default bound
@pytest.mark.timeout(360)
def test_every_local_stack_command_of_the_shipped_runbooks_passes_and_is_logged(ws):
    done = pagerdrill("runbooks", "validate", *SHIPPED, "--yes", "--json", "-w", str(ws))
    assert done.returncode == 0, done.stderr + done.stdout
    records = json.loads(done.stdout)
    assert [r["runbook"] for r in records] == [f"{n}.md" for n in SHIPPED]
    for r in records:
        assert r["passed"] and r["commands"], r
        bad = [c for c in r["commands"] if c["status"] != "passed"]
        assert not bad, bad
        log = ws / "runbooks" / "validation" / f"{r['runbook'][:-3]}.jsonl"
        assert json.loads(log.read_text().splitlines()[-1]) == r
    text = (ws / "runbooks" / "redis-cache-flush.md").read_text().splitlines()
    flush = next(r for r in records if r["runbook"] == "redis-cache-flush.md")
    for c in flush["commands"]:  # each line names the command's own line in the runbook
        assert text[c["line"] - 1] == c["command"].splitlines()[0]
    assert not any(
        "kubectl" in c["command"] or "docker" in c["command"]
        for r in records
        for c in r["commands"]
    )
    listed = pagerdrill("runbooks", "list", "-w", str(ws), "--json")
    assert all(row["passed"] is True and row["validated_at"] for row in json.loads(listed.stdout))


def test_a_failing_hanging_or_missing_tool_command_is_named_with_its_line(ws):
    rb = ws / "runbooks" / "broken-check.md"
    rb.write_text(
        "# Broken\n\n## Diagnosis\nLocal stack:\n```sh\ncurl -sf $API/healthz\n"
        "curl -sf $API/no-such-route\nsleep 30\nno-such-tool-xyz --version\n```\n"
    )
    done = pagerdrill(
        "runbooks", "validate", "broken-check", "--yes", "--timeout", "2", "--json", "-w", str(ws)
    )
    assert done.returncode == 1
    (record,) = json.loads(done.stdout)
    got = [(c["line"], c["status"]) for c in record["commands"]]
    assert got == [(6, "passed"), (7, "failed"), (8, "timeout"), (9, "missing-tool")]
    assert f"{rb}:7: failed" in done.stderr and "needs no-such-tool-xyz" in done.stderr
    assert not record["passed"]


def test_nothing_runs_without_yes_or_a_y(ws):
    rb = ws / "runbooks" / "marker-check.md"
    marker = ws / "ran-marker"
    rb.write_text(
        f"# Marker\n\n## Diagnosis\nLocal stack:\n```sh\ntouch {marker}\n```\nDeployed:\n```sh\ntouch {marker}-deployed\n```\n"
    )
    declined = pagerdrill("runbooks", "validate", "marker-check", "-w", str(ws), input="n\n")
    assert declined.returncode == 1 and "nothing run" in declined.stderr
    assert f"marker-check.md:6: touch {marker}" in declined.stderr  # shown before asking
    assert (
        not marker.exists() and not (ws / "runbooks" / "validation" / "marker-check.jsonl").exists()
    )
    agreed = pagerdrill("runbooks", "validate", "marker-check", "-w", str(ws), input="y\n")
    assert agreed.returncode == 0, agreed.stderr
    assert marker.exists() and not (ws / "ran-marker-deployed").exists()  # Deployed never runs
