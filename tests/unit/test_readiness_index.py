"""The readiness index of drill journals by engineer, and the roster's cached model:
each is rebuilt from the files when they change (size and mtime), and one engineer's
status reads only that engineer's journals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pagerdrill.readiness import drills as drills_mod
from pagerdrill.readiness.drills import INDEX_DIR, DrillIndex
from pagerdrill.readiness.status import Context, status
from readying import ROSTER, make_workspace, write_journal, write_yaml


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The journals the index reads (parses), by file name."""
    seen: list[str] = []
    real = drills_mod.facts_of

    def counting(path: Path):
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(drills_mod, "facts_of", counting)
    return seen


def drill_done(root: Path, engineer: str) -> bool:
    return status(Context(root), engineer).item("drill").done


def test_one_engineers_status_reads_only_the_journals_that_changed(ws, reads):
    for n in range(3):
        write_journal(ws, "Ana Lima", drill=f"ana-{n}")
        write_journal(ws, "Bruno Costa", drill=f"bruno-{n}")
    assert drill_done(ws, "Ana Lima")
    assert sorted(reads) == sorted(f"{w}-{n}.jsonl" for w in ("ana", "bruno") for n in range(3))
    reads.clear()
    assert drill_done(ws, "Ana Lima")
    assert reads == []
    write_journal(ws, "Bruno Costa", drill="bruno-9")
    assert drill_done(ws, "Ana Lima")
    assert reads == ["bruno-9.jsonl"]


def test_a_review_appended_to_a_journal_is_read_again(ws):
    path = write_journal(ws, "Ana Lima", reviews=())
    assert not drill_done(ws, "Ana Lima")
    line = {"v": 1, "seq": 99, "ts": "2026-11-20T11:00:00.000Z", "t": 99.0}
    line |= {"drill": path.stem, "type": "review", "by": "Dana Diaz", "verdict": "pass"}
    with path.open("a") as fh:
        fh.write(json.dumps(line) + "\n")
    assert drill_done(ws, "Ana Lima")


def test_a_removed_journal_leaves_the_index(ws):
    path = write_journal(ws, "Ana Lima")
    assert drill_done(ws, "Ana Lima")
    path.unlink()
    assert not drill_done(ws, "Ana Lima")
    assert DrillIndex(ws).all() == []


def test_a_shard_that_lags_its_journal_is_not_trusted(ws, reads):
    path = write_journal(ws, "Ana Lima", reviews=())
    DrillIndex(ws)
    shard = ws / INDEX_DIR / "by-engineer" / "ana-lima.json"
    data = json.loads(shard.read_text())
    data["journals"][path.name]["facts"]["reviews"] = [
        {"by": "Dana Diaz", "verdict": "pass", "at": "x"}
    ]
    data["journals"][path.name]["key"] = "0:0"
    shard.write_text(json.dumps(data))
    reads.clear()
    assert not drill_done(ws, "Ana Lima")
    assert reads == [path.name]


def test_an_edited_roster_is_read_again_not_its_cached_copy(ws):
    from pagerdrill.readiness.roster import load_people

    assert load_people(ws).person("Sam Okafor") is None
    people = {**ROSTER, "people": [*ROSTER["people"], {"name": "Sam Okafor", "roles": ["lead"]}]}
    write_yaml(ws / "readiness" / "roster.yaml", people)
    assert load_people(ws).person("Sam Okafor") is not None
    assert load_people(ws).person("Sam Okafor").roles == ["lead"]
