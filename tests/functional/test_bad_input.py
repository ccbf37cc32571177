"""Bad input as a new user meets it, through the real command: each malformed file or
flag is refused with its file, its line and what was expected, exit code 2, no
traceback, and nothing half-written. One fixture file per error message
(tests/fixtures/bad_input, tests/fixtures/bad_scenarios)."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, pagerdrill_cli, start_pagerdrill, write_workspace
from pagerdrill.errors import ConfigError
from pagerdrill.workspace.yamlfile import load_yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BAD_INPUT = FIXTURES / "bad_input"
BAD_SCENARIOS = FIXTURES / "bad_scenarios"
BOMB = BAD_SCENARIOS / "alias-bomb.yaml"
MARK = re.compile(r"#\s*<- here\s*$")
# an alias bomb that expands grows by tens of MB a second: under this cap a regression
# fails with a MemoryError at once instead of taking the machine's memory
MEMORY_CAP = 1024 * 1024 * 1024


def marked_line(path: Path) -> int:
    text = path.read_bytes().decode("utf-8", errors="replace")
    [line] = [n for n, x in enumerate(text.splitlines(), 1) if MARK.search(x)]
    return line


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def cli(*args: str, cwd: Path, capped: bool = False) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, cwd=cwd, preexec_fn=_cap_memory if capped else None)


def assert_refused(done: subprocess.CompletedProcess, path: Path, line: int, reason: str):
    """Exit code 2, `file:line: ...reason` on stderr, no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    found = re.search(rf"{re.escape(str(path))}:{line}: [^\n]*{re.escape(reason)}", done.stderr)
    assert found, done.stderr


def workspace_with_scenarios(root: Path, *extra: Path) -> Path:
    write_workspace(root)
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    for path in extra:
        shutil.copy(path, root / "scenarios" / path.name)
    return root


SHIPPED = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
BOMB_REASON = "aliases expand this document to more than 100,000 values"


# ------------------------------------------------------------------ the alias bomb


def test_an_alias_bomb_in_one_scenario_is_refused_and_list_shows_the_other_scenarios(tmp_path):
    root = workspace_with_scenarios(tmp_path / "ws", BOMB)
    done = cli("scenarios", "list", "--json", cwd=root, capped=True)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    import json

    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {*SHIPPED, "alias-bomb"}
    assert all("error" not in rows[name] for name in SHIPPED)
    bomb = root / "scenarios" / BOMB.name
    assert rows["alias-bomb"]["error"].startswith(f"{bomb}:{marked_line(BOMB)}: {BOMB_REASON}")


def test_an_alias_bomb_in_one_scenario_fails_validate_alone(tmp_path):
    root = workspace_with_scenarios(tmp_path / "ws", BOMB)
    done = cli("scenarios", "validate", cwd=root, capped=True)
    assert_refused(done, root / "scenarios" / BOMB.name, marked_line(BOMB), BOMB_REASON)
    for name in SHIPPED:
        assert f"scenarios/{name}.yaml  ({name}," in done.stdout


def test_an_alias_bomb_in_one_scenario_fails_check_alone(tmp_path):
    root = workspace_with_scenarios(tmp_path / "ws", BOMB)
    done = cli("scenarios", "check", cwd=root, capped=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{root / 'scenarios' / BOMB.name}:{marked_line(BOMB)}: {BOMB_REASON}" in done.stderr
    for name in SHIPPED:
        assert f"✓ {name}: can run" in done.stdout
    assert "✗ alias-bomb: invalid scenario" in done.stdout


def _bomb_lines() -> str:
    return "".join(x for x in BOMB.read_text().splitlines(keepends=True) if not x.startswith("#"))


def test_an_alias_bomb_in_a_script_is_refused_at_its_line(tmp_path):
    root = workspace_with_scenarios(tmp_path / "ws")
    script = root / "script.yaml"
    script.write_text("version: 1\nactions:\n  - {do: ack}\n" + _bomb_lines())
    done = cli(
        "run", "bullmq-backpressure", "--headless", "--engineer", "x", "--script", str(script),
        "--dry-run", cwd=root, capped=True,
    )  # fmt: skip
    assert_refused(done, script, 3 + marked_line(BOMB) - 1, BOMB_REASON)


def test_an_alias_bomb_in_the_checklist_is_refused_at_its_line(tmp_path):
    root = workspace_with_scenarios(tmp_path / "ws")
    checklist = root / "checklist.yaml"
    checklist.write_text((REPO / "checklist.yaml").read_text() + _bomb_lines())
    first = len((REPO / "checklist.yaml").read_text().splitlines())
    done = cli(
        "run", "bullmq-backpressure", "--headless", "--engineer", "x", "--autopilot", "--dry-run",
        cwd=root, capped=True,
    )  # fmt: skip
    assert_refused(done, checklist, first + marked_line(BOMB) - 1, BOMB_REASON)


def test_an_alias_bomb_in_the_workspace_file_is_refused_at_its_line(tmp_path):
    root = write_workspace(tmp_path / "ws")
    config = root / "pagerdrill.yaml"
    first = len(config.read_text().splitlines())
    config.write_text(config.read_text() + _bomb_lines())
    done = cli("stack", "status", cwd=root, capped=True)
    assert_refused(done, config, first + marked_line(BOMB) - 1, BOMB_REASON)


@pytest.mark.parametrize(
    "name", ["docker-compose.yml", "script.yaml", "checklist.yaml", "pagerdrill.yaml"]
)
def test_the_shared_loader_refuses_an_alias_bomb_before_expanding_it(tmp_path, name):
    # every YAML file pagerdrill reads goes through load_yaml / parse_yaml
    path = tmp_path / name
    shutil.copy(BOMB, path)
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert caught.value.problems[0][0] == marked_line(BOMB)


def test_aliases_that_stay_small_still_load(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &b {a: 1, b: [1, 2, 3]}\none: *b\ntwo: {<<: *b, c: 2}\n")
    data, _ = load_yaml(path)
    assert data["two"] == {"a": 1, "b": [1, 2, 3], "c": 2}


# ------------------------------------------------------------------ syntax and encoding


def test_an_unclosed_quote_is_reported_where_the_string_starts(tmp_path):
    path = BAD_SCENARIOS / "unclosed-quote.yaml"
    assert marked_line(path) == 4
    done = cli("scenarios", "validate", str(path), cwd=tmp_path)
    assert_refused(done, path, 4, "a quoted string starts here (column 10) and is never closed")


def test_a_file_that_is_not_utf8_is_refused_with_its_line_and_column(tmp_path):
    path = BAD_SCENARIOS / "not-utf8.yaml"
    done = cli("scenarios", "validate", str(path), cwd=tmp_path)
    assert_refused(done, path, marked_line(path), "column 22: not UTF-8 text (byte 0xe9)")
    assert "position" not in done.stderr


def test_a_workspace_file_that_is_not_utf8_is_refused_with_its_line_and_column(tmp_path):
    root = write_workspace(tmp_path / "ws")
    config = root / "pagerdrill.yaml"
    config.write_bytes(config.read_bytes() + b"# caf\xe9\n")
    line = len(config.read_bytes().splitlines())
    done = cli("stack", "status", cwd=root)
    assert_refused(done, config, line, "column 6: not UTF-8 text (byte 0xe9)")


# ------------------------------------------------------------------ pagerdrill.yaml

CONFIG_CASES = [
    ("env-value-with-nul.yaml", "local.services.api.env.NOTE: Value error, an environment "
     "value cannot hold a NUL byte"),
    ("env-name-with-equals.yaml", "'SLOW=PATH_MS' is not an environment variable name"),
    ("env-reserved-name.yaml", "local.services.api.env.PORT: pagerdrill sets PORT itself"),
    ("env-setting-not-a-number.yaml", "local.services.game.env.GAME_RATE: 'lots': expected a "
     "number >= 0"),
    ("redis-server-not-redis.yaml", "local.redis_server: /bin/false is not a redis-server"),
    ("unknown-role.yaml", "roles.producr: unknown role; the scenarios' roles are api, cache, "
     "queue, consumer, rt, producer, traffic (did you mean 'producer'?)"),
    ("log-pattern-bad-regex.yaml", "logs.game.pattern: Value error, bad regular expression: "
     "missing ), unterminated subpattern"),
]  # fmt: skip


def test_every_bad_input_fixture_is_covered():
    files = {p.name for p in BAD_INPUT.iterdir()}
    covered = {name for name, _ in CONFIG_CASES} | {
        "script-at-infinity.yaml",
        "journal-alerts-text.jsonl",
        "journal-params-text.jsonl",
    }
    assert files == covered


@pytest.mark.parametrize(
    ("name", "reason"), CONFIG_CASES, ids=[c[0].removesuffix(".yaml") for c in CONFIG_CASES]
)
def test_a_bad_workspace_file_is_refused_before_anything_starts(tmp_path, name, reason):
    root = tmp_path / "ws"
    root.mkdir()
    config = root / "pagerdrill.yaml"
    shutil.copy(BAD_INPUT / name, config)
    try:
        for command in (("stack", "up"), ("run", "bullmq-backpressure", "--headless",
                        "--engineer", "x", "--autopilot", "--dry-run")):  # fmt: skip
            done = cli(*command, cwd=root)
            assert_refused(done, config, marked_line(config), reason)
        assert not (root / ".pagerdrill" / "stack.json").exists()
    finally:
        cli("stack", "down", cwd=root)  # were the file accepted, a stack would be up


def test_a_script_action_at_infinity_is_refused_at_its_line(tmp_path):
    root = workspace_with_scenarios(tmp_path / "ws")
    script = BAD_INPUT / "script-at-infinity.yaml"
    done = cli(
        "run", "bullmq-backpressure", "--headless", "--engineer", "x", "--script", str(script),
        "--dry-run", cwd=root,
    )  # fmt: skip
    assert_refused(done, script, marked_line(script), "actions[0].at: Input should be")


# ------------------------------------------------------------------ journals


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("journal-alerts-text.jsonl", "drill.started.alerts is text, expected a list"),
        ("journal-params-text.jsonl", "drill.started.scenario.params is text, expected a mapping"),
    ],
)
def test_a_journal_with_a_field_of_the_wrong_kind_shows_and_exports_marked_incomplete(
    tmp_path, name, problem
):
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    shutil.copy(BAD_INPUT / name, root / "drills" / name)
    drill = name.removesuffix(".jsonl")
    shown = cli("drills", "show", drill, cwd=root)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "incomplete journal" in shown.stdout and f"line 1: {problem}" in shown.stdout
    assert "PAGE (P3)" in shown.stdout  # the valid rest is still there
    for fmt in ("slack", "markdown", "json", "html"):
        done = cli("drills", "export", drill, "--format", fmt, cwd=root)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (fmt, done.stderr)
        assert problem in done.stdout, fmt
        assert "PAGE (P3)" in done.stdout or fmt == "json", fmt


# ------------------------------------------------------------------ export targets


def _temporaries(*folders: Path) -> set[Path]:
    return {p for folder in folders for p in folder.glob(".*.tmp")}


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("{tmp}", "is a folder; expected a file name"),
        ("/proc/nope/x.html", "the folder /proc/nope does not exist"),
        ("/nonexistent/dir/x.html", "the folder /nonexistent/dir does not exist"),
        ("{tmp}/file.txt/x.html", "is not a folder"),
    ],
    ids=["a-folder", "proc", "missing-folder", "a-file-as-folder"],
)
def test_an_export_to_a_place_it_cannot_be_written_is_one_line_exit_2_and_leaves_nothing(
    tmp_path, output, reason
):
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    shutil.copy(FIXTURES / "journals" / "api-500-injection.jsonl", root / "drills")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "file.txt").write_text("a file")
    output = output.format(tmp=out_dir)
    watched = (Path("/"), Path("/tmp"), out_dir, root, tmp_path)
    before = _temporaries(*watched)
    done = cli("drills", "export", "api-500", "--format", "html", "-o", output, cwd=root)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith(f"error: -o {output}: ") and reason in done.stderr
    assert _temporaries(*watched) == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["file.txt"]


def test_an_export_to_a_file_writes_it_whole_and_leaves_no_temporary(tmp_path):
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    shutil.copy(FIXTURES / "journals" / "api-500-injection.jsonl", root / "drills")
    done = cli("drills", "export", "api-500", "--format", "html", "-o", "r.html", cwd=root)
    assert done.returncode == 0, done.stderr + done.stdout
    assert (root / "r.html").read_text().rstrip().endswith("</html>")
    assert _temporaries(root) == set()


# ------------------------------------------------------------------ init


def source_checkout(root: Path) -> Path:
    """A copy of this repository as an editable install sees it: the package under
    src/, and the workspace template at the top level."""
    from pagerdrill.workspace import TEMPLATE_FILES

    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("workspace.gitignore", ".gitignore", *TEMPLATE_FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, root / name, ignore=shutil.ignore_patterns("wheels", "*.jsonl")
            )
        else:
            shutil.copy2(REPO / name, root / name)
    return root


@pytest.mark.parametrize("inside", ["scenarios/x", "compose/deep/x", "runbooks"])
def test_init_inside_the_source_workspace_copies_the_template_once_without_recursing(
    tmp_path, inside
):
    checkout = source_checkout(tmp_path / "checkout")
    env = {"PYTHONPATH": str(checkout / "src")}
    dest = checkout / inside / "new-ws" if inside == "runbooks" else checkout / inside

    def init(folder: Path) -> list[Path]:
        done = pagerdrill_cli("init", str(folder), cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "Traceback" not in done.stderr
        return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())

    elsewhere = init(tmp_path / "outside")
    made = init(dest)
    assert made == elsewhere  # the same files as anywhere else: no copy of itself
    assert Path("scenarios/bullmq-backpressure.yaml") in made
    assert not list(dest.parent.glob(".*pagerdrill-init-*"))


# ------------------------------------------------------------------ service logs


def _file_with_inode(folder: Path, inode: int) -> Path | None:
    return next((p for p in folder.glob("api.log*") if p.stat().st_ino == inode), None)


@pytest.mark.stack
def test_a_service_log_past_its_limit_is_rotated_and_stack_logs_still_shows_the_newest_lines(
    tmp_path,
):
    import threading
    import time

    from helpers import TEST_ENV

    config = {
        "version": 1,
        "target": "local",
        "local": {
            "log_max_bytes": 4096,  # the api logs every request of the traffic
            "log_backups": 2,
            "services": {name: {"env": env} for name, env in TEST_ENV.items()},
        },
    }
    root = write_workspace(tmp_path / "ws", config)
    logs = root / ".pagerdrill" / "logs"
    up = cli("stack", "up", cwd=root)
    follower = None
    try:
        assert up.returncode == 0, up.stderr
        follower = start_pagerdrill(
            "stack", "logs", "api", "-f", "-n", "0", cwd=root, stderr=None
        )  # fmt: skip
        followed: list[str] = []
        threading.Thread(
            target=lambda: followed.extend(x.rstrip("\n") for x in follower.stdout), daemon=True
        ).start()

        def wait_for(condition, what: str, timeout_s: float = 60) -> None:
            # each wait has its own bound: a busy machine slows every step, not one
            deadline = time.monotonic() + timeout_s
            while not condition():
                assert time.monotonic() < deadline, f"{what} within {timeout_s:g} s"
                time.sleep(0.05)

        wait_for(lambda: followed, "the follower read the current file")
        inode = (logs / "api.log").stat().st_ino
        wait_for(lambda: (logs / "api.log").stat().st_ino != inode, "api.log rotated")
        rotated = _file_with_inode(logs, inode)
        assert rotated is not None and rotated.name.startswith("api.log.")
        last_of_old = rotated.read_text().splitlines()[-1]
        wait_for(lambda: len((logs / "api.log").read_text().splitlines()) >= 2, "new lines")
        first_of_new = (logs / "api.log").read_text().splitlines()[0]
        wait_for(
            lambda: {last_of_old, first_of_new} <= set(followed),
            "the follower showed the old file's last line and the new file's first",
        )
        follower.terminate()
        follower.wait(timeout=10)

        # rotated files are kept to their number, each near its limit
        wait_for(lambda: (logs / "api.log.2").exists(), "a second rotation")
        time.sleep(6)  # another rotation: api.log.3 must not appear
        assert not (logs / "api.log.3").exists()
        assert all(p.stat().st_size < 4096 + 2048 for p in logs.glob("api.log*"))

        # the api goes on logging while the command runs: what was newest before it
        # must be among the last lines it shows, and some must come from rotated files
        # (a rotation may just have left the current file empty: then the newest line is
        # the last of the file it rotated to)
        before = (logs / "api.log").read_text().splitlines() or (
            (logs / "api.log.1").read_text().splitlines()
        )
        shown = cli("stack", "logs", "api", "-n", "30", cwd=root)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert len(lines) == 30
        assert before[-1] in lines
        assert any(line not in before for line in lines[:5])  # from the rotated files
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
        cli("stack", "down", cwd=root)


def test_init_from_a_git_checkout_copies_the_template_as_committed_not_local_edits(tmp_path):
    """An editable install's template is the checkout: what someone is writing there (a
    runbook, the roster with their keys) must not land in a new team's workspace."""
    checkout = source_checkout(tmp_path / "checkout")
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "template"], check=True)
    committed_roster = (checkout / "readiness" / "roster.yaml").read_text()
    (checkout / "runbooks" / "queue-backlog.md").write_text("# Queue backlog, half written\n")
    roster = checkout / "readiness" / "roster.yaml"
    roster.write_text(roster.read_text() + "# ssh-ed25519 AAAA... someone's key\n")
    dest = tmp_path / "team"
    done = pagerdrill_cli(
        "init", str(dest), cwd=tmp_path, env={"PYTHONPATH": str(checkout / "src")}
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert not (dest / "runbooks" / "queue-backlog.md").exists()
    assert (dest / "readiness" / "roster.yaml").read_text() == committed_roster
    assert (dest / "scenarios" / "bullmq-backpressure.yaml").is_file()
