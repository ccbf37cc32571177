"""The readiness gate on the escalation package: the escalation item's blockers are the
matrix's problems, the gate's people are the escalation roster, and the team view warns
of engineers the schedules put on call without a go that holds."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from helpers import REPO
from pagerdrill.escalation.roster import LoadedRoster
from pagerdrill.escalation.validate import check_workspace
from pagerdrill.readiness import actions
from pagerdrill.readiness.matrix import on_call_ahead
from pagerdrill.readiness.roster import load_people
from pagerdrill.readiness.status import Context, schedule_warnings, status
from readying import ROSTER, gate_data, make_workspace, pagerdrill, satisfy_all, write_yaml

PEOPLE = {
    **ROSTER,
    "people": [
        *ROSTER["people"],
        {"name": "Chen Wei", "roles": ["engineer", "on-call"], "contacts": {"chat": "@chen"}},
        {"name": "Sam Okafor", "roles": ["engineer"], "contacts": {"chat": "@sam"}},
    ],
}


def escalation_ws(root: Path, **gate) -> Path:
    """A readiness workspace with the reference matrix and its schedules (Ana Lima,
    Bruno Costa and Chen Wei take turns on primary and secondary; Sam Okafor never)."""
    make_workspace(root, gate=gate_data(escalation=True, **gate), roster=PEOPLE)
    shutil.copytree(REPO / "escalation", root / "escalation")
    shutil.copy(REPO / "escalation-matrix.yaml", root / "escalation-matrix.yaml")
    return root


def go(root: Path, engineer: str) -> None:
    satisfy_all(root, engineer)
    ctx = Context(root)
    actions.signoff(ctx, engineer, engineer, "engineer", True, "ready")
    actions.signoff(Context(root), engineer, "Dana Diaz", "oncall", True, "ready")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return escalation_ws(tmp_path / "ws")


def test_the_escalation_items_blockers_are_the_matrix_problems_at_that_moment(ws):
    matrix = ws / "escalation-matrix.yaml"
    matrix.write_text(matrix.read_text().replace('"#inc-ebit-p0"', '"{{TBD}}"'))
    now = dt.datetime.now(dt.UTC)
    _m, problems = check_workspace(ws, now)
    expected = [p.render() for p in problems if p.blocker]
    assert expected and any("placeholder" in line for line in expected)
    st = status(Context(ws, now), "Ana Lima").item("escalation")
    assert not st.done
    assert st.blockers == expected


def test_a_clean_matrix_satisfies_the_escalation_item_and_pins_the_file(ws):
    st = status(Context(ws), "Ana Lima").item("escalation")
    assert st.done, st.blockers
    assert st.files == ["escalation-matrix.yaml"]


def test_the_gate_and_the_matrix_read_one_roster_model(ws):
    assert isinstance(load_people(ws), LoadedRoster)
    roster = ws / "readiness" / "roster.yaml"
    write_yaml(
        roster,
        {"version": 1, "people": [{"name": "Ana Lima", "roles": ["engineer"]}] * 2},
    )
    done = pagerdrill(ws, "status", "Ana Lima")
    assert done.returncode == 2
    assert "people[1].name: 'Ana Lima' is listed twice (also people[0])" in done.stderr


def test_an_engineer_on_the_schedule_without_a_go_is_a_warning_and_a_ready_one_is_not(ws):
    go(ws, "Ana Lima")
    ctx = Context(ws)
    ahead = {t.person for t in on_call_ahead(ctx.matrix, ctx.now, 14)}
    assert {"Ana Lima", "Bruno Costa", "Chen Wei"} <= ahead
    warned = {w.person: w for w in schedule_warnings(ctx)}
    assert set(warned) == {"Bruno Costa", "Chen Wei"}
    assert warned["Bruno Costa"].reason == "with no go sign-off"
    assert "Sam Okafor" not in warned  # never on a schedule


def test_an_engineer_whose_go_expired_is_warned_like_an_uncertified_one(tmp_path):
    root = escalation_ws(tmp_path / "ws", expires_after_days=30)
    go(root, "Ana Lima")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    st = status(Context(root, later), "Ana Lima")
    assert st.expired and not st.ready
    warned = {w.person: w for w in schedule_warnings(Context(root, later))}
    assert warned["Ana Lima"].reason.startswith("and their go expired on ")


def test_readiness_team_prints_each_schedule_warning_once_per_person(ws):
    done = pagerdrill(ws, "team")
    assert done.returncode == 0, done.stderr + done.stdout
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
    people = [line.split(" is on call")[0].removeprefix("warning: ") for line in warnings]
    assert sorted(people) == ["Ana Lima", "Bruno Costa", "Chen Wei"]
    assert all("with no go sign-off" in line for line in warnings)
    data = json.loads(pagerdrill(ws, "team", "--json").stdout)
    assert sorted(w["person"] for w in data["warnings"]) == sorted(people)


def test_a_turn_under_way_is_warned_as_on_call_now_until_its_end(ws):
    monday = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)  # Ana Lima's primary week
    warned = {w.person: w for w in schedule_warnings(Context(ws, monday))}
    ana = warned["Ana Lima"]
    assert ana.now and ana.schedule == "primary"
    assert ana.render() == (
        "Ana Lima is on call (primary) now, until 2026-11-23 08:00 UTC, with no go sign-off"
    )
    assert warned["Chen Wei"].render() == (
        "Chen Wei is on call (secondary) from 2026-11-23 08:00 UTC with no go sign-off"
    )
