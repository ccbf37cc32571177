"""The escalation matrix: who is on call (workspace rotations and PagerDuty exports,
across daylight-saving changes and overrides), and every problem `validate` names,
each at its line. Pure checks with a fixed "now"; `--online` against a real local
HTTP server."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import REPO, pagerdrill_cli
from pagerdrill.escalation.load import load_matrix
from pagerdrill.escalation.roster import load_roster
from pagerdrill.escalation.schedules import ResolvedSchedule
from pagerdrill.escalation.validate import (
    Problem,
    check_workspace,
    resolve_schedules,
    validate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BAD = FIXTURES / "bad_escalation"
DST = FIXTURES / "escalation"
ROSTER = REPO / "readiness" / "roster.yaml"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday, 13:00 in Berlin
MARK = re.compile(r"#\s*<- here\s*$")


def marked_line(path: Path) -> int:
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if MARK.search(line)]
    assert len(lines) == 1, f"{path.name} must mark one line"
    return lines[0]


def workspace(tmp_path: Path, matrix: Path | None = None, roster: Path | None = None) -> Path:
    """A copy of the reference workspace's escalation files, with a broken file swapped in."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "pagerdrill.yaml", tmp_path / "pagerdrill.yaml")
    shutil.copytree(REPO / "escalation", tmp_path / "escalation")
    (tmp_path / "readiness").mkdir()
    shutil.copy(roster or ROSTER, tmp_path / "readiness" / "roster.yaml")
    shutil.copy(matrix or REPO / "escalation-matrix.yaml", tmp_path / "escalation-matrix.yaml")
    return tmp_path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, cwd=cwd, timeout=60)


# ----------------------------------------------------------------------- who, when


@pytest.fixture(scope="module")
def dst_schedules() -> dict[str, ResolvedSchedule]:
    matrix = load_matrix(DST / "dst-matrix.yaml", DST)
    assert matrix.errors == ()
    return resolve_schedules(matrix, load_roster(ROSTER))


def at(schedule: ResolvedSchedule, when: str) -> str | None:
    shift = schedule.at(datetime.fromisoformat(when))
    return shift.person if shift else None


# (instant, who is on call, why): the same answers for the rotation and its export
BERLIN = [
    ("2026-03-28T08:30:00+00:00", "Bruno Costa", "09:30 CET, the day before the change"),
    ("2026-03-29T06:59:00+00:00", "Bruno Costa", "08:59 CEST: the handoff is still to come"),
    ("2026-03-29T07:30:00+00:00", "Chen Wei", "09:30 CEST: handed off at 09:00 local, 07:00 UTC"),
    ("2026-03-29T11:00:00+00:00", "Dana Diaz", "13:00 CEST, inside the override"),
    ("2026-03-29T16:30:00+00:00", "Chen Wei", "18:30 CEST, the override is over"),
    ("2026-03-30T07:00:00+00:00", "Ana Lima", "09:00 CEST the next day"),
]
NEW_YORK = [
    ("2026-10-31T13:30:00+00:00", "Bruno Costa", "09:30 EDT"),
    ("2026-11-01T13:30:00+00:00", "Bruno Costa", "08:30 EST: a day of 25 hours is not over yet"),
    ("2026-11-01T14:00:00+00:00", "Chen Wei", "09:00 EST, the handoff"),
]


@pytest.mark.parametrize("name", ["berlin", "berlin-pd"])
@pytest.mark.parametrize(("when", "person", "why"), BERLIN, ids=[b[2] for b in BERLIN])
def test_a_daily_handoff_keeps_its_local_time_across_the_change_to_summer_time(
    dst_schedules, name, when, person, why
):
    assert at(dst_schedules[name], when) == person, why


@pytest.mark.parametrize("name", ["new-york", "new-york-pd"])
@pytest.mark.parametrize(("when", "person", "why"), NEW_YORK, ids=[n[2] for n in NEW_YORK])
def test_a_daily_handoff_keeps_its_local_time_when_daylight_saving_ends(
    dst_schedules, name, when, person, why
):
    assert at(dst_schedules[name], when) == person, why


def test_a_later_pagerduty_layer_wins_where_it_has_someone_and_the_lower_shows_through(
    dst_schedules,
):
    pd, rotation = dst_schedules["new-york-pd"], dst_schedules["new-york"]
    # 18:30 EST on 2026-11-02: layer 2's night restriction puts Dana Diaz on
    assert at(pd, "2026-11-02T23:30:00+00:00") == "Dana Diaz"
    assert at(rotation, "2026-11-02T23:30:00+00:00") == "Ana Lima"
    # 10:00 EST: outside the night window, layer 1's turn
    assert at(pd, "2026-11-02T15:00:00+00:00") == "Ana Lima"


def test_a_shift_reports_its_whole_span_from_handoff_to_handoff(dst_schedules):
    shift = dst_schedules["berlin"].at(datetime(2026, 3, 29, 7, 30, tzinfo=UTC))
    assert shift is not None
    assert (shift.start, shift.end) == (
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 10, 0, tzinfo=UTC),  # cut by the override at 12:00 CEST
    )


def test_who_prints_each_tiers_on_call_person_at_a_given_time(tmp_path):
    ws = workspace(tmp_path)
    result = cli("escalation", "who", "--at", "2026-11-23T12:00Z", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "On call at 2026-11-23 12:00 UTC (Ebit platform)" in result.stdout
    # primary: week 47 of the rotation started 2026-01-05 is Bruno Costa's
    assert "1  Bruno Costa    primary until 2026-11-30 09:00 CET" in result.stdout
    doc = json.loads(cli("escalation", "who", "--at", "2026-11-23T12:00Z", "--json", cwd=ws).stdout)
    p0 = doc["tiers"][0]
    assert p0["severity"] == "P0" and p0["incident_channel"] == "#inc-ebit-p0"
    assert [r["name"] for r in p0["levels"][0]["responders"]] == ["Bruno Costa", "Morgan Reyes"]
    assert p0["levels"][1]["responders"][0]["name"] == "Chen Wei"  # the PagerDuty export


def test_who_refuses_a_time_it_cannot_read_with_exit_code_2(tmp_path):
    result = cli("escalation", "who", "--at", "next tuesday", cwd=workspace(tmp_path))
    assert result.returncode == 2
    assert "--at 'next tuesday': expected a date and time" in result.stderr


# ------------------------------------------------------------------------ validate


def test_the_shipped_matrix_and_roster_validate_clean():
    matrix, problems = check_workspace(REPO, NOW)
    assert matrix.model is not None
    assert problems == []


def test_validate_of_the_shipped_matrix_exits_0(tmp_path):
    result = cli("escalation", "validate", cwd=workspace(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "clean (schedules covered for the next 14 days)" in result.stdout


# (fixture, kind, the message at the marked line)
BROKEN = [
    ("unknown-key", "invalid", "tiers.P0.levels[0].escalate_afer: unknown key (did you mean 'escalate_after'?)"),  # noqa: E501
    ("duplicate-key", "invalid", "tiers.P0.name: duplicate key (first at line 24)"),
    ("missing-response", "missing", "tiers.P2.response: required (the severity table: engineering team (within 4 h))"),  # noqa: E501
    ("placeholder", "placeholder", "incident_channel: '{{TBD}}' is a placeholder (fill in the real value)"),  # noqa: E501
    ("placeholder-empty", "placeholder", "vendor.portal: empty is a placeholder (fill in the real value)"),  # noqa: E501
    ("unknown-person", "unknown-person", "tiers.P1.levels[1].people[0]: 'Dana Dias' is not in the roster (roster.yaml) (did you mean 'Dana Diaz'?)"),  # noqa: E501
    ("unknown-schedule", "unknown-schedule", "tiers.P2.levels[0].schedule: 'primery' is not a schedule of this matrix (schedules: primary, secondary) (did you mean 'primary'?)"),  # noqa: E501
    ("malformed-phone", "malformed-phone", "vendor.contacts[0].phone: '07700 900199' is not E.164 (expected + and the country code, digits only: +4915112345678)"),  # noqa: E501
    ("malformed-email", "malformed-email", "vendor.contacts[0].email: 'oncall(at)evospin.example' is not an email address (expected name@domain.tld)"),  # noqa: E501
    ("malformed-url", "malformed-url", "video_bridge: 'meet.ebit.example/incident' is not a URL (expected http:// or https:// and a host)"),  # noqa: E501
    ("malformed-chat", "malformed-chat", "tiers.P0.incident_channel: 'inc ebit p0' is not a channel (expected #name: lower-case letters, digits, '-', '_', '.')"),  # noqa: E501
    ("malformed-time-zone", "malformed-time-zone", "schedules.primary.rotation.time_zone: 'Europe/Berlinn' is not an IANA time zone (e.g. Europe/Berlin)"),  # noqa: E501
    ("schedule-gap", "schedule-gap", "schedules.primary: nobody on call from 2026-11-23 18:00 CET to 2026-11-24 09:00 CET (15 h; every minute of the next 14 days needs someone)"),  # noqa: E501
    ("nobody-on-call", "nobody-on-call", "schedules.primary: resolves to nobody at 2026-11-23 13:00 CET (a page now reaches no human)"),  # noqa: E501
    ("no-contact", "no-contact", "vendor.contacts[0]: no contact path (phone, email or chat)"),
    ("empty-level", "empty-level", "tiers.P0.levels[0]: level 1 is empty: a page reaches nobody and waits there before anyone at level 2 hears of it (name people or a schedule)"),  # noqa: E501
    ("escalation-loop", "escalation-loop", "tiers.P1.escalates_to: P2 loops back: P1 → P2 → P1 (escalation must end at P0)"),  # noqa: E501
    ("escalation-skip", "escalation-skip", "tiers.P3.escalates_to: P1 skips past P2 (expected P2, the next tier up)"),  # noqa: E501
    ("response-target", "response-target", "tiers.P1.response: 2 h contradicts the severity table (P1: respond within 1 h)"),  # noqa: E501
]  # fmt: skip
#: kinds a fixture may show besides its own (a rotation not started is also a gap)
ALSO = {"nobody-on-call": {"schedule-gap"}, "schedule-gap": set()}


@pytest.mark.parametrize(("fixture", "kind", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_matrix_names_its_problem_at_its_line(tmp_path, fixture, kind, message):
    path = BAD / f"{fixture}.yaml"
    ws = workspace(tmp_path, matrix=path)
    _, problems = check_workspace(ws, NOW)
    assert (
        Problem(
            kind=kind,
            file=str(ws / "escalation-matrix.yaml"),
            line=marked_line(path),
            message=message,
            blocker=True,
        )
        in problems
    ), "\n".join(p.render() for p in problems)
    assert {p.kind for p in problems} <= {kind} | ALSO.get(fixture, set())


def test_a_schedule_with_gaps_names_the_first_few_and_counts_the_rest(tmp_path):
    _, problems = check_workspace(workspace(tmp_path, matrix=BAD / "schedule-gap.yaml"), NOW)
    gaps = [p.message for p in problems if p.kind == "schedule-gap"]
    # nights and the weekend: 9 gaps in 14 days of a weekday 09:00-18:00 rotation
    assert len(gaps) == 6
    assert "2026-11-27 18:00 CET to 2026-11-30 09:00 CET (63 h" in gaps[4]
    assert gaps[5] == "schedules.primary: 5 more gaps in the next 14 days"


ROSTER_BROKEN = [
    ("roster-placeholder", "placeholder", "people[3].contacts.phone: '{{TBD}}' is a placeholder (fill in the real value)"),  # noqa: E501
    ("roster-ssh-key", "malformed-ssh-key", "people[3].ssh_key: not an SSH public key (expected 'ssh-ed25519 AAAA... comment', one line of a .pub file)"),  # noqa: E501
    ("roster-unknown-key", "invalid", "people[3].pager_duty: unknown key (did you mean 'pagerduty'?)"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "kind", "message"), ROSTER_BROKEN, ids=[b[0] for b in ROSTER_BROKEN]
)
def test_each_broken_roster_names_its_problem_at_its_line(tmp_path, fixture, kind, message):
    path = BAD / f"{fixture}.yaml"
    ws = workspace(tmp_path, roster=path)
    _, problems = check_workspace(ws, NOW)
    roster_file = str(ws / "readiness" / "roster.yaml")
    assert Problem(kind=kind, file=roster_file, line=marked_line(path), message=message) in problems
    assert {p.kind for p in problems} == {kind}, "\n".join(p.render() for p in problems)


def test_a_person_paged_with_no_contact_path_is_named_at_every_level_that_pages_them(tmp_path):
    ws = workspace(tmp_path, roster=BAD / "roster-no-contact.yaml")
    _, problems = check_workspace(ws, NOW)
    assert {p.kind for p in problems} == {"no-contact"}
    matrix_lines = (REPO / "escalation-matrix.yaml").read_text().splitlines()
    roster_line = marked_line(BAD / "roster-no-contact.yaml") - 4  # her name's line
    for p in problems:
        assert "Dana Diaz" in matrix_lines[(p.line or 0) - 1]
    assert problems[0].message == (
        "tiers.P0.levels[2]: Dana Diaz has no contact path in the roster "
        f"(roster.yaml:{roster_line}: phone, email or chat)"
    )
    # P0 level 3, P1 level 2, P2 level 3, P3 level 2
    assert len(problems) == 4


def test_a_pagerduty_user_missing_from_the_roster_is_named_at_its_line_in_the_export(tmp_path):
    ws = workspace(tmp_path)
    export = ws / "escalation" / "schedules" / "secondary.json"
    old = '"id": "PCHE003", "type": "user_reference", "summary": "Chen Wei"'
    new = '"id": "PXXX999", "type": "user_reference", "summary": "Casey Jones"'
    export.write_text(export.read_text().replace(old, new, 1))
    _, problems = check_workspace(ws, NOW)
    line = next(n for n, text in enumerate(export.read_text().splitlines(), 1) if "PXXX999" in text)
    assert (
        Problem(
            kind="unknown-person",
            file=str(export),
            line=line,
            message="schedule.schedule_layers[0].users[1].user.id: PagerDuty user PXXX999 "
            "(Casey Jones) is not in the roster (give its person pagerduty: PXXX999)",
        )
        in problems
    )


def test_validate_is_pure_the_same_inputs_give_the_same_problems_at_another_now():
    matrix = load_matrix(BAD / "nobody-on-call.yaml", REPO)
    roster = load_roster(ROSTER)
    before = validate(matrix, roster, NOW)
    assert validate(matrix, roster, NOW) == before
    # once the rotation has started, nobody is missing any more
    assert validate(matrix, roster, datetime(2026, 12, 8, tzinfo=UTC)) == []


def test_validate_of_a_broken_matrix_exits_1_printing_file_and_line(tmp_path):
    ws = workspace(tmp_path, matrix=BAD / "unknown-person.yaml")
    result = cli("escalation", "validate", cwd=ws)
    assert result.returncode == 1
    line = marked_line(BAD / "unknown-person.yaml")
    assert (
        f"{ws / 'escalation-matrix.yaml'}:{line}: tiers.P1.levels[1].people[0]: 'Dana Dias'"
        in result.stderr
    )
    doc = json.loads(cli("escalation", "validate", "--json", cwd=ws).stdout)
    assert doc["clean"] is False and doc["problems"][0]["kind"] == "unknown-person"


def test_validate_of_a_matrix_that_is_not_there_exits_2(tmp_path):
    result = cli("escalation", "validate", "nowhere.yaml", cwd=workspace(tmp_path))
    assert result.returncode == 2
    assert "nowhere.yaml: no escalation matrix here" in result.stderr


def test_a_markdown_matrix_gives_the_same_people_and_names_its_problems_by_line(tmp_path):
    ws = workspace(tmp_path)
    md = ws / "escalation-matrix.md"
    shutil.copy(DST.parent / "escalation" / "escalation-matrix.md", md)
    (ws / "escalation-matrix.yaml").unlink()
    yaml_who = cli(
        "escalation", "who", "--at", "2026-11-23T12:00Z", "--json", cwd=workspace(tmp_path / "y")
    )
    md_who = cli("escalation", "who", "--at", "2026-11-23T12:00Z", "--json", cwd=ws)
    names = lambda doc: [  # noqa: E731
        [[r["name"] for r in lv["responders"]] for lv in t["levels"]] for t in doc["tiers"]
    ]
    assert names(json.loads(md_who.stdout)) == names(json.loads(yaml_who.stdout))
    assert cli("escalation", "validate", cwd=ws).returncode == 0
    md.write_text(md.read_text().replace("| 3 | Dana Diaz |", "| 3 | Dana Dias |", 1))
    _, problems = check_workspace(ws, NOW)
    line = next(n for n, t in enumerate(md.read_text().splitlines(), 1) if "Dana Dias " in t)
    assert [(p.kind, p.line) for p in problems] == [("unknown-person", line)]


# ------------------------------------------------------------------------ --online


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.send_response(200 if self.path == "/bridge" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = _answer
    do_GET = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def local_http():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_online_probes_each_bridge_and_webhook_and_records_both_answers(tmp_path, local_http):
    ws = workspace(tmp_path)
    matrix = ws / "escalation-matrix.yaml"
    text = matrix.read_text()
    text = text.replace("https://meet.ebit.example/incident", f"{local_http}/bridge")
    text = text.replace("https://hooks.ebit.example/services/inc-ebit-p0", f"{local_http}/gone")
    text = text.replace("    webhook: https://hooks.evospin.example/page/ebit\n", "")
    text = text.replace("  webhook: https://hooks.evospin.example/page/ebit\n", "")
    matrix.write_text(text)
    result = cli("escalation", "validate", "--online", cwd=ws)
    assert result.returncode == 1, result.stdout + result.stderr
    webhook_line = next(n for n, t in enumerate(text.splitlines(), 1) if "/gone" in t)
    assert (
        f"{matrix}:{webhook_line}: tiers.P0.channel_webhook: {local_http}/gone answered 404"
        in result.stderr
    )
    assert f"✓ {local_http}/bridge  200" in result.stdout
    records = [
        json.loads(line)
        for line in (ws / "escalation" / "validation.jsonl").read_text().splitlines()
    ]
    assert [(r["url"], r["status"], r["ok"]) for r in records] == [
        (f"{local_http}/bridge", 200, True),
        (f"{local_http}/gone", 404, False),
    ]
    assert all(r["host"] == "127.0.0.1" and r["time"].endswith("+00:00") for r in records)
