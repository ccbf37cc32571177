"""The redactor masks secrets and nothing else: every example command, note, hypothesis
and review comment of the README reads the same after it, except the secrets they hold.
Pure logic, no servers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pagerdrill.journal.redact import Redactor
from pagerdrill.reports.drills import review
from pagerdrill.reports.html import render_html
from pagerdrill.reports.text import markdown, slack_messages, to_json
from pagerdrill.reports.timeline import load

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
JOURNALS = REPO / "tests" / "fixtures" / "journals"

# the README's secrets: the stack's Redis password and the bad-password drill's value
REDACTOR = Redactor({"cache", "wrong"})


def _readme_commands() -> list[str]:
    """Every command line of the README's shell blocks, without its trailing comment."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = re.split(r"\s{2,}#", line)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _readme_texts() -> list[str]:
    """What a person writes in the README's examples: review comments and script texts."""
    comments = re.findall(r'--comment "([^"]+)"', README)
    texts = re.findall(r"\btext: ([^}]+)\}", README)
    return [*comments, *(t.strip() for t in texts)]


def _masked(command: str) -> str:
    """The command with exactly its secrets masked."""
    return command.replace("-a cache", "-a ***").replace("PASSWORD=wrong", "PASSWORD=***")


def test_the_readme_has_examples_to_check():
    assert "blocked the source quickly" in _readme_texts()
    assert any("redis-cli -a cache" in c for c in _readme_commands())
    assert any("ADMIN_DEFAULT_PASSWORD=wrong" in c for c in _readme_commands())


@pytest.mark.parametrize("command", _readme_commands())
def test_a_readme_command_keeps_everything_but_its_secrets(command):
    assert REDACTOR.text(command) == _masked(command)


@pytest.mark.parametrize("text", _readme_texts())
def test_a_readme_comment_or_note_is_not_masked(text):
    assert REDACTOR.text(text) == text
    assert REDACTOR.text(f"review by Lou: PASS: {text}") == f"review by Lou: PASS: {text}"
    assert REDACTOR.text(f"FAIL by Lou: {text}") == f"FAIL by Lou: {text}"


@pytest.mark.parametrize(
    "text",
    [
        "PASS: blocked the source quickly",
        "pass: the drill went well",
        "tests passed: 3",
        "bypass: on",
        "tokens: 5",
        "hints used: 0",
        "the password is wrong in the api's environment",
        "compass: north",
    ],
)
def test_words_that_contain_a_secret_name_are_not_masked(text):
    assert REDACTOR.text(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password: hunter2", "password: ***"),
        ("pass=hunter2", "pass=***"),
        ("REDIS_PASS: hunter2", "REDIS_PASS: ***"),
        ("db_pass=hunter2", "db_pass=***"),
        ("adminPassword=hunter2", "adminPassword=***"),
        ("GITHUB_TOKEN=ghp_0123", "GITHUB_TOKEN=***"),
        ("api_key: abc123", "api_key: ***"),
        ("secret=abc123", "secret=***"),
        ("Authorization: Bearer abcdefghijkl", "Authorization: Bearer ***"),
        ("redis-cli -h 127.0.0.1 -a cache PING", "redis-cli -h 127.0.0.1 -a *** PING"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("cache", "***"),
        ("set to not-the-admin-password now", "set to *** now"),
    ],
)
def test_secrets_stay_masked(text, masked):
    redactor = Redactor({"cache", "not-the-admin-password"})
    assert redactor.text(text) == masked


def test_a_review_comment_leaves_whole_in_every_export(tmp_path):
    journal = tmp_path / "drills" / "d.jsonl"
    journal.parent.mkdir()
    shutil.copy(JOURNALS / "ws-handshake-storm.jsonl", journal)
    review(journal, tmp_path / ".pagerdrill", by="Lou", verdict="pass",
           comment="blocked the source quickly")  # fmt: skip
    tl = load(journal)
    exports = {
        "slack": "\n".join(slack_messages(tl)),
        "markdown": markdown(tl),
        "json": str(to_json(tl)),
        "html": render_html(tl),
    }
    for fmt, text in exports.items():
        assert "blocked the source quickly" in text, fmt
        assert "*** the source" not in text, fmt


def test_a_typed_summary_comes_back_masked_and_of_its_own_class():
    from helpers import summary_from
    from pagerdrill.journal.summary import Summary

    summary = summary_from(
        {"outcome": "aborted", "abort_reason": "error: redis://:hunter2-long-pw@127.0.0.1:6379",
         "engineer": "ana", "paused_s": 1.5}
    )  # fmt: skip
    masked = Redactor({"hunter2-long-pw"}).model(summary)
    assert isinstance(masked, Summary)
    assert masked.abort_reason == "error: redis://:***@127.0.0.1:6379"
    assert (masked.engineer, masked.paused_s, masked.outcome) == ("ana", 1.5, "aborted")
    assert masked.to_json() == summary.to_json() | {"abort_reason": masked.abort_reason}
