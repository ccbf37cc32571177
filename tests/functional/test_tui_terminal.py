"""`pagerdrill drill` in a real terminal, as a user runs it: tmux gives it a pty of
80x24, keys are sent with send-keys and the screen is read with capture-pane.

A whole drill from the page to the summary, and a `kill -9` of the app mid-fault
that `pagerdrill recover` then finishes. Every tmux command goes to a tmux server of
this test's own (`-L`), which is killed at the end; the user's sessions are never
touched."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drilling import FAST, api_faults, assert_stack_clean, cli, journals, scenario
from helpers import PAGERDRILL, pid_alive
from pagerdrill.drill.recover import needs_recovery
from pagerdrill.journal import read_journal

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, name: str) -> None:
        self.server = f"pagerdrill-test-{os.getpid()}-{name}"
        self.session = name

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=20
        )
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def start(self, argv: list[str], cwd: Path, status: Path | None = None) -> int:
        """Run `argv` as the pane's own process (no shell) and return its pid; with
        `status`, under a shell that writes the exit code there (the shell's pid)."""
        if status is not None:
            argv = ["sh", "-c", f"{shlex.join(argv)}; echo $? > {shlex.quote(str(status))}"]
        env = ["-e", "PYTHONUNBUFFERED=1", "-e", "TERM=xterm-256color"]
        self.run("new-session", "-d", "-s", self.session, "-x", "80", "-y", "24",
                 "-c", str(cwd), *env, *argv)  # fmt: skip
        self.run("set-option", "-t", self.session, "remain-on-exit", "on")
        return int(self.run("list-panes", "-t", self.session, "-F", "#{pane_pid}").split()[0])

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str, pause: float = 0.6) -> None:
        """One key per send-keys, with a pause: an escape followed at once by a letter
        would reach the app as alt+letter."""
        for key in keys:
            self.run("send-keys", "-t", self.session, key)
            time.sleep(pause)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.session, "-l", text)
        time.sleep(0.4)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {timeout:g} s:\n{screen}")
            time.sleep(0.3)

    def exit_status(self, status: Path, timeout: float = 30) -> int:
        """The exit code the app's shell wrote to `status` (see `start`). tmux cannot
        be asked: it marks a pane dead when the pty closes, and may reap the process
        (and learn its status) only later."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = status.read_text().strip() if status.exists() else ""
            if text:
                return int(text)
            time.sleep(0.3)
        raise AssertionError(f"the app did not exit within {timeout:g} s:\n{self.screen()}")

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(request) -> Iterator[Tmux]:
    t = Tmux(request.node.name[:40].replace("[", "-").replace("]", ""))
    try:
        yield t
    finally:
        t.kill_server()


def drill_argv(root: Path, name: str) -> list[str]:
    return [*PAGERDRILL, "drill", "--scenario", scenario(name),
            "--engineer", "Tmux Tester", "--workspace", str(root), *FAST]  # fmt: skip


def test_a_drill_in_a_real_terminal_from_the_page_to_the_summary(stack, tmux):
    root = stack.workspace.root
    before = set(journals(root))
    status = root / "drill.status"
    tmux.start(drill_argv(root, "api-500-injection"), root, status=status)
    screen = tmux.wait_for("PAGE", timeout=90)
    assert "http-5xx" in screen and "Error rate on the api is up" in screen
    assert "drill 0:" in screen  # the drill clock runs from the page
    tmux.keys("a", "2")
    screen = tmux.wait_for("[✓] Open the dashboards")
    tmux.keys("l", "e")
    tmux.wait_for("/api/promotions failed: status 500")  # the clients see the 500s
    tmux.keys("Escape", "n")
    tmux.type("only /api/promotions fails")
    tmux.keys("Enter", "h")
    screen = tmux.wait_for("Hypothesis: pick one")
    # the choices come in the drill's own shuffled order: go down to the right one
    starts = {
        "right": "One route (/api/promotions)",
        "a": "The whole api is down",
        "b": "Redis is unreachable",
        "c": "A client release",
    }
    order = sorted(starts, key=lambda k: screen.index(starts[k]))
    tmux.keys(*["Down"] * order.index("right"), "Enter")
    tmux.keys("m")
    screen = tmux.wait_for("Mitigation: pick one")
    # shuffled per drill too: go down to the one that turns the 500s off
    menu = screen[screen.index("Mitigation: pick one") :]
    fixes = sorted(["Turn off the 500s", "Restart api"], key=menu.index)
    tmux.keys(*["Down"] * fixes.index("Turn off the 500s"), "Enter")
    tmux.wait_for("press r to resolve", timeout=60)
    tmux.keys("r")
    screen = tmux.wait_for("Drill closed, recovery verified")
    assert "Hypothesis: right" in screen
    tmux.keys("s")
    tmux.wait_for("timeline copied")
    tmux.keys("q")
    assert tmux.exit_status(status) == 0

    (journal,) = [p for p in journals(root) if p not in before]
    read = read_journal(journal)
    assert read.complete, read.problems
    types = [e["type"] for e in read.events]
    for expected in ("page", "ack", "step.done", "evidence", "note", "hypothesis",
                     "mitigation", "recovery.verified", "drill.closed"):  # fmt: skip
        assert expected in types, (expected, types)
    assert read.events[0]["engineer"] == "Tmux Tester"
    slack = journal.with_suffix(".slack.txt").read_text()
    assert "PAGE (P3)" in slack and "note: only /api/promotions fails" in slack
    assert api_faults(stack) == {}
    assert_stack_clean(stack)


def paged_bad_password_drill(stack, tmux: Tmux) -> tuple[int, Callable[[], Path]]:
    """`pagerdrill drill` of the bad-password scenario in the terminal, paged, the wrong
    password in: the app's pid, and how to find its journal."""
    root = stack.workspace.root
    before = set(journals(root))
    pid = tmux.start(drill_argv(root, "signin-failure-spike"), root)
    tmux.wait_for("PAGE", timeout=90)
    assert stack.overrides("api")  # the wrong password is in

    def journal() -> Path:
        (found,) = [p for p in journals(root) if p not in before]
        return found

    return pid, journal


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), f"pid {pid} still alive after {timeout:g} s"


def test_kill_9_of_the_app_mid_fault_leaves_a_journal_recover_closes(stack, tmux):
    root = stack.workspace.root
    pid, find_journal = paged_bad_password_drill(stack, tmux)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 10)

    journal = find_journal()
    read = read_journal(journal)
    assert not read.finished
    assert not read.problems  # every event up to the kill is whole
    assert needs_recovery(read.typed)
    assert stack.overrides("api")  # nothing reverted it

    result = cli("recover", "--workspace", str(root))
    assert result.returncode == 0, result.stderr
    assert journal.name.removesuffix(".jsonl") in result.stdout
    assert not needs_recovery(read_journal(journal).typed)
    assert not stack.overrides("api")
    assert_stack_clean(stack)


def test_closing_the_terminal_mid_fault_reverts_and_the_app_exits(stack, tmux):
    pid, find_journal = paged_bad_password_drill(stack, tmux)
    tmux.kill_server()  # the terminal goes away: the app gets SIGHUP
    wait_gone(pid, 30)  # it does not outlive its terminal
    read = read_journal(find_journal())
    aborted = next(e for e in read.events if e["type"] == "drill.aborted")
    assert aborted["reason"] == "the TUI got SIGHUP" and aborted["revert_failed"] == []
    assert not needs_recovery(read.typed)
    assert not stack.overrides("api")
    assert_stack_clean(stack)
