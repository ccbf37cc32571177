"""The readiness gate's core: status from entries and evidence, sign-offs and their
rotations, records that survive concurrent writers and git merges, signatures by real
SSH keys, and verify naming each tampering."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.readiness import actions
from pagerdrill.readiness.gate import QuizRule, load_gate
from pagerdrill.readiness.quiz import grade
from pagerdrill.readiness.status import Context, status
from pagerdrill.readiness.verify import verify
from readying import ROSTER, gate_data, make_workspace, satisfy_all, write_journal, write_yaml


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def item(root: Path, engineer: str, item_id: str):
    return status(Context(root), engineer).item(item_id)


def test_the_default_gate_is_the_seeds_ten_items_in_its_wording(tmp_path):
    gate = load_gate(tmp_path)
    assert len(gate.items) == 10
    assert gate.items[0].text.startswith("One simulated P2 incident driven end-to-end")
    assert gate.item("signoff").text == (
        "You and the experienced on-call have agreed go/no-go in writing"
    )


def test_an_unknown_gate_key_is_refused_with_its_line_and_a_did_you_mean(ws):
    data = gate_data()
    data["items"][0]["drill"]["min_severty"] = "P1"
    write_yaml(ws / "readiness" / "gate.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_gate(ws)
    text = str(err.value)
    assert (
        "gate.yaml:" in text and "min_severty: unknown key (did you mean 'min_severity'?)" in text
    )


def test_a_tui_drill_reviewed_pass_by_a_lead_satisfies_the_drill_item(ws):
    write_journal(ws, "Ana Lima")
    assert item(ws, "Ana Lima", "drill").done


def test_an_autopilot_drill_leaves_the_drill_item_open(ws):
    write_journal(ws, "Ana Lima", mode="headless")
    st = item(ws, "Ana Lima", "drill")
    assert not st.done and "only a drill driven in the TUI counts" in st.blockers[0]


def test_a_drill_of_someone_else_does_not_count(ws):
    write_journal(ws, "Bruno Costa")
    assert not item(ws, "Ana Lima", "drill").done


def test_a_p3_drill_does_not_satisfy_a_p2_gate(ws):
    write_journal(ws, "Ana Lima", severity="P3")
    assert "the gate asks P2 or higher" in item(ws, "Ana Lima", "drill").blockers[0]


def test_a_drill_reviewed_by_the_engineer_alone_is_not_reviewed(ws):
    write_journal(ws, "Eli Park", reviews=(("Eli Park", "pass"),))
    assert "no review by a lead or on-call" in item(ws, "Eli Park", "drill").blockers[0]


def test_the_drill_evidence_names_the_review_that_counts_not_a_later_one_by_someone_off_the_roster(
    ws,
):
    write_journal(ws, "Ana Lima", reviews=(("Dana Diaz", "pass"), ("Nobody", "pass")))
    st = item(ws, "Ana Lima", "drill")
    assert st.done and "reviewed pass by Dana Diaz" in st.evidence[0]


def test_a_drill_without_recovery_verified_does_not_count(ws):
    write_journal(ws, "Ana Lima", recovered=False)
    assert "without recovery verified" in item(ws, "Ana Lima", "drill").blockers[0]


def test_an_edited_document_asks_for_a_new_read(ws):
    ctx = Context(ws)
    actions.record_read(ctx, "Ana Lima", actions.preview_read(ctx, "Ana Lima", "api-changelog"))
    assert item(ws, "Ana Lima", "api-changelog").done
    path = ws / "docs" / "api-changelog.md"
    path.write_text(path.read_text().replace("## [Unreleased]", "## [Unreleased]\n### Added\n- x"))
    st = item(ws, "Ana Lima", "api-changelog")
    assert not st.done and "changed since Ana Lima read it" in st.blockers[0]


def test_a_register_read_shows_the_pending_findings_of_the_oncall_categories(ws):
    preview = actions.preview_read(Context(ws), "Ana Lima", "security-register")
    ids = [f.id for f in preview.findings]
    assert "SF-001" in ids and "SF-004" in ids
    assert "SF-003" not in ids  # accepted, not pending
    assert "SF-010" not in ids  # observability is not an on-call category


def test_a_changelog_read_shows_only_the_versions_since_the_last_read(ws):
    ctx = Context(ws)
    first = actions.preview_read(ctx, "Ana Lima", "api-changelog")
    assert [r.version for r in first.releases][:2] == ["Unreleased", "1.4.0"]
    actions.record_read(ctx, "Ana Lima", first)
    path = ws / "docs" / "api-changelog.md"
    path.write_text(
        path.read_text().replace(
            "## [1.4.0]", "## [1.5.0] - 2026-12-01\n### Added\n- y\n\n## [1.4.0]"
        )
    )
    again = actions.preview_read(Context(ws), "Ana Lima", "api-changelog")
    assert [r.version for r in again.releases] == ["Unreleased", "1.5.0"]


def test_an_unreviewed_runbook_names_the_command_that_records_its_review(ws):
    from readying import write_runbook

    write_runbook(ws, "Ana Lima")
    blockers = item(ws, "Ana Lima", "runbook").blockers
    assert any(
        "`pagerdrill readiness attest 'Ana Lima' runbook --by REVIEWER "
        "--runbook postgres-pool-exhaustion.md`" in b
        for b in blockers
    ), blockers


def test_a_runbook_reviewed_at_an_older_version_asks_for_a_new_review(ws):
    satisfy_all(ws, "Ana Lima")
    path = ws / "runbooks" / "pool-ana-lima.md"
    path.write_text(path.read_text() + "\nOne more line.\n")
    assert "at an older version" in " ".join(item(ws, "Ana Lima", "runbook").blockers)


def test_the_quiz_needs_the_steps_in_order_and_in_time():
    rule = QuizRule()
    right = "ack, then open the dashboards, look at jaeger traces, check runbooks for a recurrence"
    assert grade(right, 10, rule).passed
    assert not grade(right, 31, rule).passed
    swapped = "open the dashboards, then ack, jaeger traces, then runbooks"
    assert not grade(swapped, 10, rule).in_order
    assert "acknowledge" in grade("I would not ack; dashboards, traces, runbooks", 5, rule).missing


@pytest.mark.parametrize(
    "answer",
    [
        "I would NOT acknowledge first, I open the dashboards, search jaeger traces, "
        "check runbooks for recurrence",
        "I won't acknowledge: dashboards, jaeger traces, then the runbooks",
        "Open the dashboards rather than acknowledge, jaeger traces, runbooks",
        "skip the ack, open the dashboards, jaeger traces, runbooks",
    ],
)
def test_a_step_named_under_a_negation_does_not_pass_the_quiz(answer):
    g = grade(answer, 5, QuizRule())
    assert not g.passed
    assert "acknowledge" in g.missing


def test_a_negation_in_another_clause_does_not_take_the_next_step_from_the_quiz():
    answer = (
        "Acknowledge the page. No panic: open the dashboards, search Jaeger for error "
        "traces, then check the runbooks for a recurrence"
    )
    assert grade(answer, 5, QuizRule()).passed


def test_the_quiz_reads_answers_with_the_drills_hypothesis_matcher():
    from pagerdrill.scenarios.model import scan_keywords

    answer = "I won't ack; the dashboards, then jaeger"
    scan = scan_keywords(answer, ["ack", "dashboards", "jaeger"])
    assert [m.negated for m in scan.matches] == [True, False, False]
    assert grade(answer, 5, QuizRule()).found == ("open dashboards", "search errors in traces")


def test_both_go_sign_offs_make_the_engineer_ready(ws):
    satisfy_all(ws, "Ana Lima")
    ctx = Context(ws)
    actions.signoff(ctx, "Ana Lima", "Ana Lima", "engineer", True, "ready")
    actions.signoff(ctx, "Ana Lima", "Dana Diaz", "oncall", True, "solid reverse-shadow")
    assert status(Context(ws), "Ana Lima").ready


def test_a_no_go_starts_rotation_2_and_reopens_the_shifts(ws):
    satisfy_all(ws, "Ana Lima")
    ctx = Context(ws)
    actions.signoff(ctx, "Ana Lima", "Ana Lima", "engineer", True, "ready")
    _, _, reopen = actions.signoff(ctx, "Ana Lima", "Dana Diaz", "oncall", False, "froze on a P1")
    assert reopen is not None and reopen.rotation == 2
    st = status(Context(ws), "Ana Lima")
    assert st.rotation == 2 and not st.ready
    assert {i.id for i in st.open_items} == {"shadow", "reverse-shadow", "signoff"}
    assert "froze on a P1" in (st.reopen_reason or "")
    assert st.item("drill").done  # evidence of the first rotation still holds


@pytest.mark.parametrize(
    ("engineer", "by", "role", "expected"),
    [
        ("Ana Lima", "Ana Lima", "oncall", "cannot sign off their own readiness"),
        ("Ana Lima", "Nobody Here", "oncall", "is not on the roster"),
        ("Ana Lima", "Morgan Reyes", "oncall", "is not an on-call"),
        ("Ana Lima", "Dana Diaz", "engineer", "the engineer signs for themselves"),
        ("Anna Lima", "Dana Diaz", "oncall", "did you mean 'Ana Lima'"),
    ],
)
def test_a_sign_off_by_the_wrong_person_is_refused_and_writes_nothing(
    ws, engineer, by, role, expected
):
    satisfy_all(ws, "Ana Lima")
    before = sorted((ws / "readiness" / "records").rglob("*.json"))
    with pytest.raises(BadInputError, match=expected):
        actions.signoff(Context(ws), engineer, by, role, True, "note")
    assert sorted((ws / "readiness" / "records").rglob("*.json")) == before


def test_a_sign_off_with_items_open_is_refused(ws):
    with pytest.raises(BadInputError, match="has open items"):
        actions.signoff(Context(ws), "Ana Lima", "Ana Lima", "engineer", True, "ready")
    assert not (ws / "readiness" / "records").exists()


def _record_one(args: tuple[str, int]) -> None:
    root, n = args
    ctx = Context(Path(root))
    actions.attest(ctx, "Ana Lima", "shadow", "Dana Diaz", date="2026-11-18", hours=n + 1)


def test_twenty_processes_recording_at_once_lose_no_entry(ws):
    with multiprocessing.get_context("spawn").Pool(20) as pool:
        pool.map(_record_one, [(str(ws), n) for n in range(20)])
    entries = Context(ws).records.entries("Ana Lima")
    assert sorted(e.hours for e in entries) == [float(n + 1) for n in range(20)]
    assert not list((ws / "readiness" / "records").rglob("*.tmp"))


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ana Lima",
        "GIT_AUTHOR_EMAIL": "ana@example.com",
        "GIT_COMMITTER_NAME": "Ana Lima",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def test_two_branches_adding_entries_for_one_engineer_merge_without_a_conflict(ws):
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "workspace")
    git(ws, "checkout", "-qb", "shadow")
    actions.attest(Context(ws), "Ana Lima", "shadow", "Dana Diaz", date="2026-11-18", hours=12)
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "shadow shift")
    git(ws, "checkout", "-q", "main")
    actions.attest(
        Context(ws), "Ana Lima", "reverse-shadow", "Eli Park", date="2026-11-19", hours=12
    )
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "reverse-shadow shift")
    git(ws, "merge", "-q", "--no-edit", "shadow")  # check=True: a conflict fails here
    st = status(Context(ws), "Ana Lima")
    assert st.item("shadow").done and st.item("reverse-shadow").done


def test_a_runbook_added_to_git_by_someone_else_is_not_the_engineers(ws):
    satisfy_all(ws, "Bruno Costa")  # the runbook says author: Bruno Costa
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "all")  # committed by Ana Lima
    assert "added to git by Ana Lima" in " ".join(item(ws, "Bruno Costa", "runbook").blockers)


# ------------------------------------------------------------------ signatures


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )
    return path.with_name(path.name + ".pub").read_text().strip()


@pytest.fixture
def signed_ws(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    keys = {
        name: tmp_path / name.split()[0].lower() for name in ("Ana Lima", "Dana Diaz", "Eli Park")
    }
    roster = json.loads(json.dumps(ROSTER))
    for person in roster["people"]:
        if person["name"] in keys:
            person["ssh_key"] = keygen(keys[person["name"]], person["name"])
    root = make_workspace(tmp_path / "ws", gate=gate_data(require_signatures=True), roster=roster)
    satisfy_all(root, "Ana Lima")
    return root, keys


def test_signed_sign_offs_verify_against_the_roster_keys(signed_ws):
    root, keys = signed_ws
    ctx = Context(root)
    entry, _, _ = actions.signoff(
        ctx, "Ana Lima", "Ana Lima", "engineer", True, "ready", keys["Ana Lima"]
    )
    actions.signoff(ctx, "Ana Lima", "Dana Diaz", "oncall", True, "go", keys["Dana Diaz"])
    statement = json.loads(entry.statement or "")
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert any(s["name"].startswith("drills/") for s in statement["subject"])
    assert statement["predicate"]["decision"] == "go"
    assert status(Context(root), "Ana Lima").ready
    assert verify(Context(root), ["Ana Lima"])[0] == []


def test_an_unsigned_sign_off_is_refused_when_the_gate_requires_signatures(signed_ws):
    root, _ = signed_ws
    with pytest.raises(BadInputError, match="requires signed sign-offs"):
        actions.signoff(Context(root), "Ana Lima", "Ana Lima", "engineer", True, "ready")


def test_signing_with_another_persons_key_is_refused(signed_ws):
    root, keys = signed_ws
    with pytest.raises(BadInputError, match="is not Ana Lima's key"):
        actions.signoff(
            Context(root), "Ana Lima", "Ana Lima", "engineer", True, "x", keys["Eli Park"]
        )


def test_an_ssh_agent_key_signs(signed_ws, tmp_path):
    root, keys = signed_ws
    agent = subprocess.run(
        ["ssh-agent", "-s", "-a", str(tmp_path / "agent.sock")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pid = int(agent.split("SSH_AGENT_PID=")[1].split(";")[0])
    env_before = os.environ.get("SSH_AUTH_SOCK")
    try:
        os.environ["SSH_AUTH_SOCK"] = str(tmp_path / "agent.sock")
        subprocess.run(["ssh-add", "-q", str(keys["Dana Diaz"])], check=True, capture_output=True)
        private = keys["Dana Diaz"]
        public = private.with_name(private.name + ".pub")
        private.rename(tmp_path / "elsewhere")  # only the agent holds it now
        ctx = Context(root)
        actions.signoff(ctx, "Ana Lima", "Ana Lima", "engineer", True, "ready", keys["Ana Lima"])
        entry, _, _ = actions.signoff(ctx, "Ana Lima", "Dana Diaz", "oncall", True, "go", public)
        assert entry.signature and "BEGIN SSH SIGNATURE" in entry.signature
        assert verify(Context(root), ["Ana Lima"])[0] == []
    finally:
        os.kill(pid, signal.SIGTERM)
        if env_before is None:
            os.environ.pop("SSH_AUTH_SOCK", None)
        else:
            os.environ["SSH_AUTH_SOCK"] = env_before


def _signed_go(root: Path, keys: dict[str, Path]) -> Path:
    ctx = Context(root)
    actions.signoff(ctx, "Ana Lima", "Ana Lima", "engineer", True, "ready", keys["Ana Lima"])
    _, path, _ = actions.signoff(
        ctx, "Ana Lima", "Dana Diaz", "oncall", True, "go", keys["Dana Diaz"]
    )
    return path


def problems_of(root: Path) -> list[str]:
    return [p.render() for p in verify(Context(root), ["Ana Lima"])[0]]


def test_verify_names_an_edited_journal(signed_ws):
    root, keys = signed_ws
    _signed_go(root, keys)
    journal = next((root / "drills").glob("*.jsonl"))
    journal.write_text(journal.read_text().replace('"correct": true', '"correct": false'))
    assert any(
        p.startswith(f"drills/{journal.name}: changed since the sign-off")
        for p in problems_of(root)
    )


def test_a_review_appended_to_a_journal_after_the_sign_off_is_no_edit_of_it(signed_ws):
    from pagerdrill.reports.drills import review

    root, keys = signed_ws
    _signed_go(root, keys)
    journal = next((root / "drills").glob("*.jsonl"))
    review(journal, root / ".pagerdrill", by="Morgan Reyes", verdict="pass", comment="agree")
    assert problems_of(root) == []


def test_verify_names_a_journal_edited_above_a_review_appended_after_the_sign_off(signed_ws):
    from pagerdrill.reports.drills import review

    root, keys = signed_ws
    _signed_go(root, keys)
    journal = next((root / "drills").glob("*.jsonl"))
    review(journal, root / ".pagerdrill", by="Morgan Reyes", verdict="pass")
    journal.write_text(journal.read_text().replace('"correct": true', '"correct": false'))
    assert any(
        p.startswith(f"drills/{journal.name}: changed since the sign-off")
        for p in problems_of(root)
    )


def test_verify_names_an_edited_runbook(signed_ws):
    root, keys = signed_ws
    _signed_go(root, keys)
    (root / "runbooks" / "pool-ana-lima.md").write_text("edited")
    assert any(p.startswith("runbooks/pool-ana-lima.md: changed since") for p in problems_of(root))


def test_verify_names_an_edited_record(signed_ws):
    root, keys = signed_ws
    _signed_go(root, keys)
    shift = next(
        p
        for p in (root / "readiness" / "records" / "ana-lima").glob("*attestation*.json")
        if '"shadow"' in p.read_text()
    )
    shift.write_text(shift.read_text().replace('"hours": 12.0', '"hours": 24.0'))
    rel = str(shift.relative_to(root))
    found = problems_of(root)
    assert f"{rel}: edited after it was recorded (its digest does not match its content)" in found
    assert any(p.startswith(f"{rel}: changed since the sign-off") for p in found)


def test_verify_names_a_signature_by_a_key_not_in_the_roster(signed_ws, tmp_path):
    root, keys = signed_ws
    path = _signed_go(root, keys)
    stranger = tmp_path / "stranger"
    keygen(stranger, "stranger")
    data = json.loads(path.read_text())
    data["signature"] = _sign(data["statement"], stranger, "pagerdrill-readiness")
    path.write_text(json.dumps(data))
    assert any(
        p.startswith(f"{path.relative_to(root)}: signed by a key not in the roster")
        for p in problems_of(root)
    )


def test_verify_names_a_signature_for_another_namespace(signed_ws):
    root, keys = signed_ws
    path = _signed_go(root, keys)
    data = json.loads(path.read_text())
    data["signature"] = _sign(data["statement"], keys["Dana Diaz"], "git")
    path.write_text(json.dumps(data))
    assert (
        f"{path.relative_to(root)}: signed for the namespace 'git', not 'pagerdrill-readiness'"
        in problems_of(root)
    )


def test_verify_names_an_edited_signed_statement(signed_ws):
    root, keys = signed_ws
    path = _signed_go(root, keys)
    data = json.loads(path.read_text())
    data["statement"] = data["statement"].replace('"decision":"go"', '"decision":"no-go"')
    path.write_text(json.dumps(data))
    assert any("the signature does not verify" in p for p in problems_of(root))


def _sign(text: str, key: Path, namespace: str) -> str:
    data = key.with_name("data.txt")
    data.write_text(text)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", str(key), str(data)],
        check=True,
        capture_output=True,
    )
    return data.with_name("data.txt.sig").read_text()
