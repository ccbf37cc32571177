"""Recertification: a go that expires (`expires_after_days`) and a fresh drill every N
days (`fresh_drill_days`), each with the date it falls due, in status and the team view."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pagerdrill.readiness import actions
from pagerdrill.readiness.status import Context, status
from readying import gate_data, make_workspace, pagerdrill, satisfy_all, write_journal

DRILL_DAY = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)


def signed_go(root: Path, engineer: str, now: dt.datetime | None = None) -> None:
    actions.signoff(Context(root, now), engineer, engineer, "engineer", True, "ready")
    actions.signoff(Context(root, now), engineer, "Dana Diaz", "oncall", True, "ready")


def test_a_go_expires_after_the_gates_days_and_a_new_go_recertifies(tmp_path):
    root = make_workspace(tmp_path / "ws", gate=gate_data(expires_after_days=180))
    satisfy_all(root, "Ana Lima")
    signed_go(root, "Ana Lima")
    today = dt.datetime.now(dt.UTC)
    st = status(Context(root, today), "Ana Lima")
    assert st.ready and not st.expired
    assert st.expires == (today + dt.timedelta(days=180)).date().isoformat()
    later = today + dt.timedelta(days=181)
    st = status(Context(root, later), "Ana Lima")
    assert not st.ready and st.expired
    assert st.item("signoff").blockers == [
        f"the go of {st.go_at[:10]} expired on {st.expires}; recertify"
    ]
    assert [i.id for i in st.open_items] == ["signoff"]
    signed_go(root, "Ana Lima", later)
    st = status(Context(root, later), "Ana Lima")
    assert st.ready
    assert st.expires == (later + dt.timedelta(days=180)).date().isoformat()


def test_without_expires_after_a_go_holds_however_old(tmp_path):
    root = make_workspace(tmp_path / "ws")
    satisfy_all(root, "Ana Lima")
    signed_go(root, "Ana Lima")
    st = status(Context(root, dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)), "Ana Lima")
    assert st.ready and st.expires is None


def test_a_ready_engineer_needs_a_fresh_drill_every_n_days(tmp_path):
    root = make_workspace(tmp_path / "ws", gate=gate_data(fresh_drill_days=90))
    satisfy_all(root, "Ana Lima")  # its drill started 2026-11-20
    signed_go(root, "Ana Lima")
    assert status(Context(root), "Ana Lima").fresh_drill_due == "2027-02-18"
    overdue = DRILL_DAY + dt.timedelta(days=91)
    st = status(Context(root, overdue), "Ana Lima")
    assert not st.ready
    assert st.item("drill").blockers == [
        "the last qualifying drill was 2026-11-20; the gate asks for one every 90 days"
    ]
    assert "items open since the go: drill" in st.item("signoff").blockers
    write_journal(root, "Ana Lima", started="2027-02-15T09:00:00.000Z", drill="ana-quarterly")
    st = status(Context(root, overdue), "Ana Lima")
    assert st.ready
    assert st.fresh_drill_due == "2027-05-16"


def test_a_drill_that_does_not_qualify_does_not_renew_the_fresh_drill(tmp_path):
    root = make_workspace(tmp_path / "ws", gate=gate_data(fresh_drill_days=90))
    satisfy_all(root, "Ana Lima")
    signed_go(root, "Ana Lima")
    write_journal(root, "Ana Lima", mode="headless", started="2027-02-15T09:00:00.000Z")
    st = status(Context(root, DRILL_DAY + dt.timedelta(days=91)), "Ana Lima")
    assert not st.item("drill").done
    assert st.fresh_drill_due == "2027-02-18"


def test_the_team_view_shows_when_a_go_expires_and_a_fresh_drill_is_due(tmp_path):
    root = make_workspace(
        tmp_path / "ws", gate=gate_data(expires_after_days=180, fresh_drill_days=90)
    )
    satisfy_all(root, "Ana Lima")
    signed_go(root, "Ana Lima")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=180)).date().isoformat()
    rows = {
        r["engineer"]: r for r in json.loads(pagerdrill(root, "team", "--json").stdout)["engineers"]
    }
    assert rows["Ana Lima"]["ready"]
    assert rows["Ana Lima"]["expires"] == expires
    assert rows["Ana Lima"]["fresh_drill_due"] == "2027-02-18"
    line = next(x for x in pagerdrill(root, "team").stdout.splitlines() if x.startswith("Ana Lima"))
    assert f"go expires {expires}" in line and "fresh drill due 2027-02-18" in line
