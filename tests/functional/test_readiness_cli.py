"""`pagerdrill readiness ...` as a user runs it: real processes, real exit codes; each
refusal a clear message, exit 2, and nothing written."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from readying import gate_data, make_workspace, pagerdrill, satisfy_all, write_yaml


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def records(root: Path) -> list[Path]:
    return sorted((root / "readiness" / "records").rglob("*.json"))


def refused(root: Path, *args: str, stdin: str | None = None) -> str:
    before = records(root)
    done = pagerdrill(root, *args, stdin=stdin)
    assert done.returncode == 2, done.stdout + done.stderr
    assert records(root) == before
    return done.stderr


def test_an_unknown_engineer_is_refused(ws):
    assert "engineer 'Ana Lma' is not on the roster" in refused(ws, "status", "Ana Lma")


def test_an_unknown_item_is_refused(ws):
    err = refused(ws, "attest", "Ana Lima", "shaddow", "--by", "Dana Diaz", "--date", "2026-11-18")
    assert "no item 'shaddow' in the gate (did you mean 'shadow'?)" in err


def test_an_unknown_document_is_refused(ws):
    assert "no document 'changelog'" in refused(ws, "read", "Ana Lima", "changelog", "--yes")


def test_an_attester_not_on_the_roster_is_refused(ws):
    err = refused(ws, "attest", "Ana Lima", "shadow", "--by", "Zed", "--date", "2026-11-18")
    assert "attester 'Zed' is not on the roster" in err


def test_self_attestation_is_refused(ws):
    err = refused(ws, "attest", "Eli Park", "shadow", "--by", "Eli Park", "--date", "2026-11-18")
    assert "cannot attest their own item" in err


def test_a_signer_not_on_the_roster_is_refused(ws):
    err = refused(
        ws, "signoff", "Ana Lima", "--by", "Zed", "--role", "oncall", "--go", "--note", "x"
    )
    assert "signer 'Zed' is not on the roster" in err


def test_self_sign_as_the_oncall_is_refused(ws):
    err = refused(ws, "signoff", "Eli Park", "--by", "Eli Park", "--role", "oncall", "--go",
                  "--note", "x")  # fmt: skip
    assert "cannot sign off their own readiness as the on-call" in err


def test_a_sign_off_with_items_open_is_refused(ws):
    err = refused(ws, "signoff", "Ana Lima", "--by", "Ana Lima", "--role", "engineer", "--go",
                  "--note", "ready")  # fmt: skip
    assert "Ana Lima has open items" in err and "drill:" in err


def test_a_malformed_gate_is_refused_with_its_line(ws):
    data = gate_data()
    data["require_signature"] = True
    write_yaml(ws / "readiness" / "gate.yaml", data)
    err = refused(ws, "team")
    lines = (ws / "readiness" / "gate.yaml").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("require_signature:"))
    expected = "require_signature: unknown key (did you mean 'require_signatures'?)"
    assert f"gate.yaml:{line}: {expected}" in err


def test_a_malformed_roster_is_refused_with_its_line(ws):
    (ws / "readiness" / "roster.yaml").write_text(
        "version: 1\npeople:\n  - name: Ana\n    role: [x]\n"
    )
    err = refused(ws, "status", "Ana")
    assert "roster.yaml:4: people[0].role: unknown key (did you mean 'roles'?)" in err


def test_an_assignment_by_someone_not_a_lead_is_refused(ws):
    err = refused(ws, "assign", "Ana Lima", "redis-cache-flush", "--by", "Eli Park")
    assert "Eli Park is not a lead" in err


def test_an_unknown_scenario_is_refused(ws):
    err = refused(ws, "assign", "Ana Lima", "redis-flush", "--by", "Dana Diaz")
    assert "no scenario 'redis-flush'" in err


def test_the_quiz_is_asked_timed_and_graded(ws):
    answer = "acknowledge, open the grafana dashboards, search jaeger traces, then the runbooks\n"
    done = pagerdrill(ws, "quiz", "Ana Lima", stdin=answer)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "What's the first thing you do when the pager fires?" in done.stderr
    assert "✓ right" in done.stdout
    wrong = pagerdrill(ws, "quiz", "Ana Lima", stdin="open the dashboards then ack\n")
    assert wrong.returncode == 1 and "the order is" in wrong.stdout


def test_access_probes_the_gate_urls_and_records_the_status(ws):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302 if self.path == "/away" else 200)
            self.send_header("Location", "http://192.0.2.1/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        data = gate_data()
        access = next(i for i in data["items"] if i["kind"] == "access")
        port = server.server_address[1]
        access["tools"] = [{"name": "Grafana", "url": f"http://127.0.0.1:{port}/"},
                           {"name": "Jaeger", "url": f"http://127.0.0.1:{port}/away"}]  # fmt: skip
        write_yaml(ws / "readiness" / "gate.yaml", data)
        done = pagerdrill(ws, "access", "Ana Lima", stdin="y\nn\n")
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr + done.stdout
    entry = json.loads(records(ws)[0].read_text())
    assert [(t["name"], t["status"], t.get("confirmed", False)) for t in entry["tools"]] == [
        ("Grafana", 200, True),
        ("Jaeger", 302, False),  # the redirect is not followed
    ]
    shown = json.loads(pagerdrill(ws, "status", "Ana Lima", "--json").stdout)
    access_item = next(i for i in shown["items"] if i["id"] == "access")
    assert access_item["blockers"] == ["Jaeger: access not confirmed"]


def test_the_journey_through_the_cli_ends_ready_and_a_no_go_shows_rotation_2(ws):
    satisfy_all(ws, "Ana Lima")
    satisfy_all(ws, "Bruno Costa")
    for engineer, decision in (("Ana Lima", "--go"), ("Bruno Costa", "--no-go")):
        mine = pagerdrill(ws, "signoff", engineer, "--by", engineer, "--role", "engineer",
                          "--go", "--note", "ready")  # fmt: skip
        assert mine.returncode == 0, mine.stderr
        theirs = pagerdrill(ws, "signoff", engineer, "--by", "Dana Diaz", "--role", "oncall",
                            decision, "--note", "froze on the P1 page")  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
    team = json.loads(pagerdrill(ws, "team", "--json").stdout)
    rows = {r["engineer"]: r for r in team["engineers"]}
    assert rows["Ana Lima"]["ready"] and rows["Ana Lima"]["rotation"] == 1
    assert rows["Bruno Costa"]["rotation"] == 2
    assert rows["Bruno Costa"]["blocked_on"] == ["shadow", "reverse-shadow", "signoff"]
    shown = pagerdrill(ws, "status", "Bruno Costa")
    assert shown.returncode == 1
    assert "Bruno Costa — rotation 2" in shown.stdout
    assert "✗ shadow (again this rotation)" in shown.stdout
    log = pagerdrill(ws, "log", "Bruno Costa").stdout
    assert "rotation 2: reopened shadow, reverse-shadow, signoff" in log
    assert pagerdrill(ws, "verify").returncode == 0


def test_init_brings_the_gate_the_register_and_the_changelog(tmp_path):
    from helpers import REPO, pagerdrill_cli

    dest = tmp_path / "team"
    pagerdrill_cli("init", str(dest), check=True)
    for name in ("readiness/gate.yaml", "readiness/security-register.md", "docs/api-changelog.md"):
        assert (dest / name).read_text() == (REPO / name).read_text()
    done = pagerdrill(dest, "status", "Ana Lima", "--json")
    assert done.returncode == 1, done.stderr
    items = {i["id"]: i for i in json.loads(done.stdout)["items"]}
    for doc in ("security-register", "api-changelog"):
        assert not any("no such document" in b for b in items[doc]["blockers"])
        assert any("not read" in b for b in items[doc]["blockers"])


def test_readiness_with_no_command_outside_a_terminal_prints_its_help(ws):
    done = pagerdrill(ws)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Usage:" in done.stdout and "signoff" in done.stdout


def test_a_signed_sign_off_says_signed_after_whose_readiness_it_is(tmp_path):
    import subprocess

    key = tmp_path / "ana"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    from readying import ROSTER

    roster = json.loads(json.dumps(ROSTER))
    for person in roster["people"]:
        if person["name"] == "Ana Lima":
            person["ssh_key"] = key.with_name("ana.pub").read_text().strip()
    ws = make_workspace(tmp_path / "ws", roster=roster)
    satisfy_all(ws, "Ana Lima")
    done = pagerdrill(ws, "signoff", "Ana Lima", "--by", "Ana Lima", "--role", "engineer",
                      "--go", "--note", "ready", "--sign-with", str(key))  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.startswith("✓ go by Ana Lima as engineer for Ana Lima, signed (readiness/")
