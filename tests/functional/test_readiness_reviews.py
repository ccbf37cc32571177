"""Signed lead reviews of drills: `drills review --sign-with KEY` puts an in-toto
Statement (the journal as the lead saw it, the verdict) and its SSH signature into the
review event; `readiness verify` checks each against the roster's keys and names an
edited journal, an edited verdict and a stranger's key with the file and line."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from helpers import pagerdrill_cli
from pagerdrill.readiness.status import Context, status
from pagerdrill.readiness.verify import verify
from readying import ROSTER, make_workspace, write_journal


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def drills(root: Path, *args: str) -> subprocess.CompletedProcess:
    return pagerdrill_cli("drills", *args, "--workspace", str(root))


@pytest.fixture
def ws(tmp_path: Path) -> tuple[Path, dict[str, Path], Path]:
    keys = {name: tmp_path / name.split()[0].lower() for name in ("Dana Diaz", "Eli Park")}
    roster = json.loads(json.dumps(ROSTER))
    for person in roster["people"]:
        if person["name"] in keys:
            person["ssh_key"] = keygen(keys[person["name"]], person["name"])
    root = make_workspace(tmp_path / "ws", roster=roster)
    journal = write_journal(root, "Ana Lima", reviews=(), drill="ana-p2")
    return root, keys, journal


def review_line(journal: Path) -> tuple[int, dict]:
    lines = journal.read_text().splitlines()
    number = max(
        i
        for i, line in enumerate(lines, 1)
        if '"type": "review"' in line or '"type":"review"' in line
    )
    return number, json.loads(lines[number - 1])


def findings(root: Path) -> list[str]:
    return [f.render() for f in verify(Context(root), ["Ana Lima"])[0]]


def test_a_signed_review_pins_the_journal_as_the_lead_saw_it_and_verifies(ws):
    root, keys, journal = ws
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    done = drills(
        root, "review", "ana-p2", "--by", "Dana Diaz", "--verdict", "pass",
        "--comment", "clean", "--sign-with", str(keys["Dana Diaz"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert "PASS, signed" in done.stdout
    _line, event = review_line(journal)
    statement = json.loads(event["statement"])
    assert statement["predicateType"] == "https://pagerdrill.dev/readiness/review/v1"
    assert statement["subject"] == [{"name": "drills/ana-p2.jsonl", "digest": {"sha256": before}}]
    assert statement["predicate"]["verdict"] == "pass"
    assert event["signature"].startswith("-----BEGIN SSH SIGNATURE-----")
    assert findings(root) == []
    assert status(Context(root), "Ana Lima").item("drill").done


def test_signing_a_review_with_another_persons_key_is_refused_and_writes_nothing(ws):
    root, keys, journal = ws
    text = journal.read_text()
    done = drills(
        root, "review", "ana-p2", "--by", "Dana Diaz", "--verdict", "pass",
        "--sign-with", str(keys["Eli Park"]),
    )  # fmt: skip
    assert done.returncode == 2
    assert "is not Dana Diaz's key in the roster" in done.stderr
    assert journal.read_text() == text


def signed(root: Path, keys: dict[str, Path], verdict: str = "pass") -> None:
    done = drills(
        root, "review", "ana-p2", "--by", "Dana Diaz", "--verdict", verdict,
        "--sign-with", str(keys["Dana Diaz"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout


def test_verify_names_a_journal_edited_before_a_signed_review(ws):
    root, keys, journal = ws
    signed(root, keys)
    journal.write_text(journal.read_text().replace("cache flushed", "cache flushed!!"))
    line, _event = review_line(journal)
    assert findings(root) == [
        f"drills/ana-p2.jsonl: changed before line {line} since Dana Diaz signed the review there"
    ]


def test_verify_names_a_verdict_edited_after_it_was_signed(ws):
    root, keys, journal = ws
    signed(root, keys, "fail")
    journal.write_text(journal.read_text().replace('"verdict":"fail"', '"verdict":"pass"'))
    line, event = review_line(journal)
    assert event["verdict"] == "pass"
    assert findings(root) == [
        f"drills/ana-p2.jsonl:{line}: the review's verdict is not what was signed ('fail')"
    ]


def test_verify_names_a_review_signed_by_a_key_not_in_the_roster(ws, tmp_path):
    root, keys, journal = ws
    signed(root, keys)
    keygen(tmp_path / "stranger", "stranger")
    line, event = review_line(journal)
    data = tmp_path / "statement.json"
    data.write_text(event["statement"])
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "pagerdrill-readiness", "-f",
         str(tmp_path / "stranger"), str(data)],
        check=True, capture_output=True,
    )  # fmt: skip
    event["signature"] = data.with_name("statement.json.sig").read_text()
    lines = journal.read_text().splitlines()
    lines[line - 1] = json.dumps(event, separators=(",", ":"))
    journal.write_text("\n".join(lines) + "\n")
    (problem,) = findings(root)
    assert problem.startswith(f"drills/ana-p2.jsonl:{line}: signed by a key not in the roster")
