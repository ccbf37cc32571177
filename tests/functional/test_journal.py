"""The drill journal (append-only JSON lines), its forgiving reader, the one-drill-per-stack
lock (released by the kernel when its holder dies), and the summary computed from a
journal alone. No stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helpers import wait_for
from pagerdrill.journal import (
    SCHEMA_VERSION,
    DrillBusyError,
    DrillLock,
    JournalError,
    JournalRead,
    JournalWriter,
    read_journal,
)
from pagerdrill.journal.summary import exit_code, outcome, summarize, summary_of

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------ writing


def test_each_append_is_one_json_object_per_line_with_the_envelope(tmp_path):
    path = tmp_path / "drills" / "d1.jsonl"
    writer = JournalWriter(path, "d1")
    try:
        returned = [
            writer.append("drill.started", engineer="ana"),
            writer.append("note", text="queue climbing", drill_s=1.5),
            writer.append("ack", by="ana"),
        ]
    finally:
        writer.close()
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 3
    events = lines_of(path)
    assert events == returned
    for event in events:
        assert list(event)[:6] == ["v", "seq", "ts", "t", "type", "drill"]
        assert event["v"] == SCHEMA_VERSION
        assert event["drill"] == "d1"
        assert ISO_UTC.match(event["ts"]), event["ts"]
        assert isinstance(event["t"], float) and event["t"] >= 0
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert [e["type"] for e in events] == ["drill.started", "note", "ack"]
    assert events[1]["text"] == "queue climbing" and events[1]["drill_s"] == 1.5
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)


def test_t_counts_seconds_from_the_given_monotonic_start(tmp_path):
    writer = JournalWriter(tmp_path / "d.jsonl", "d", start_mono=time.monotonic() - 100)
    try:
        event = writer.append("x")
    finally:
        writer.close()
    assert 100 <= event["t"] < 130


def test_a_value_json_cannot_hold_is_written_as_its_string(tmp_path):
    writer = JournalWriter(tmp_path / "d.jsonl", "d")
    try:
        writer.append("x", path=tmp_path)
    finally:
        writer.close()
    assert lines_of(tmp_path / "d.jsonl")[0]["path"] == str(tmp_path)


def test_appending_to_an_existing_journal_keeps_its_lines_and_continues_the_seq(tmp_path):
    path = tmp_path / "d.jsonl"
    first = JournalWriter(path, "d")
    first.append("a")
    first.append("b")
    first.close()
    second = JournalWriter(path, "d", first_seq=2)
    second.append("c")
    second.close()
    assert [(e["seq"], e["type"]) for e in lines_of(path)] == [(0, "a"), (1, "b"), (2, "c")]


def test_reopening_a_journal_cut_mid_line_starts_a_new_line(tmp_path):
    path = tmp_path / "d.jsonl"
    writer = JournalWriter(path, "d")
    writer.append("drill.started")
    writer.append("note", text="one")
    writer.close()
    with path.open("ab") as fh:  # the crash: half an event, no newline
        fh.write(b'{"v":1,"seq":2,"ts":"2024-01-01T00:00:00.000Z","t":3.1,"ty')
    before = read_journal(path)
    assert before.problems == [(3, "cut short (the drill stopped mid-write)")]

    writer = JournalWriter(path, "d", first_seq=2)
    writer.append("recover.started")
    writer.append("drill.aborted", reason="crashed")
    writer.close()

    raw = path.read_bytes().split(b"\n")
    assert raw[2].endswith(b'"ty') and raw[3].startswith(b'{"v":1,"seq":2,')
    read = read_journal(path)
    assert [n for n, _ in read.problems] == [3]
    assert [e["type"] for e in read.events] == [
        "drill.started",
        "note",
        "recover.started",
        "drill.aborted",
    ]
    assert [e["seq"] for e in read.events] == [0, 1, 2, 3]
    assert read.finished and not read.complete


def test_reopening_a_journal_that_ends_with_a_newline_adds_no_blank_line(tmp_path):
    path = tmp_path / "d.jsonl"
    for seq in range(3):
        writer = JournalWriter(path, "d", first_seq=seq)
        writer.append("x")
        writer.close()
    assert b"\n\n" not in path.read_bytes()
    assert len(read_journal(path).events) == 3


def test_a_journal_that_cannot_be_opened_is_a_journal_error(tmp_path):
    (tmp_path / "d.jsonl").mkdir()  # a folder where the file should be
    with pytest.raises(JournalError, match="cannot open the drill journal"):
        JournalWriter(tmp_path / "d.jsonl", "d")


def test_a_journal_whose_folder_cannot_be_made_is_a_journal_error(tmp_path):
    (tmp_path / "drills").write_text("a file, not a folder")
    with pytest.raises(JournalError):
        JournalWriter(tmp_path / "drills" / "d.jsonl", "d")


# ------------------------------------------------------------------ reading


def write_lines(path: Path, *lines: str | bytes, end: bytes = b"\n") -> Path:
    data = b"\n".join(x.encode() if isinstance(x, str) else x for x in lines) + end
    path.write_bytes(data)
    return path


def event(seq: int, type_: str, v: object = 1) -> str:
    return json.dumps({"v": v, "seq": seq, "type": type_, "drill": "d"})


def test_reading_returns_every_valid_event_and_a_problem_per_bad_line(tmp_path):
    path = write_lines(
        tmp_path / "d.jsonl",
        event(0, "drill.started"),
        "",
        "not json at all",
        '["a", "list"]',
        '{"v": 1, "seq": 9}',
        event(3, "from.the.future", v=2),
        '{"seq":4,"type":"no.version"}',
        '{"v":"1","seq":5,"type":"text.version"}',
        event(6, "drill.closed"),
    )
    read = read_journal(path)
    assert [e["type"] for e in read.events] == ["drill.started", "drill.closed"]
    assert read.problems == [
        (3, "not valid JSON"),
        (4, "not a journal event (no `type`)"),
        (5, "not a journal event (no `type`)"),
        (6, f"schema version 2; this pagerdrill reads {SCHEMA_VERSION}"),
        (7, f"schema version None; this pagerdrill reads {SCHEMA_VERSION}"),
        (8, f"schema version '1'; this pagerdrill reads {SCHEMA_VERSION}"),
    ]
    assert read.finished and not read.complete
    assert read.drill_id == "d"


def test_a_newer_schema_line_is_reported_and_skipped_and_the_rest_is_read(tmp_path):
    path = write_lines(
        tmp_path / "d.jsonl",
        event(0, "drill.started"),
        event(1, "note", v=SCHEMA_VERSION + 1),
        event(2, "drill.closed"),
    )
    read = read_journal(path)
    assert [e["seq"] for e in read.events] == [0, 2]
    assert read.problems == [(2, f"schema version {SCHEMA_VERSION + 1}; this pagerdrill reads 1")]


def test_a_journal_cut_mid_line_reports_the_last_line_as_cut_short(tmp_path):
    path = write_lines(
        tmp_path / "d.jsonl", event(0, "drill.started"), '{"v":1,"seq":1,"type":"no', end=b""
    )
    read = read_journal(path)
    assert [e["seq"] for e in read.events] == [0]
    assert read.problems == [(2, "cut short (the drill stopped mid-write)")]
    assert not read.finished


def test_a_bad_last_line_that_does_end_with_a_newline_is_not_called_cut_short(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", event(0, "a"), "{broken")
    assert read_journal(path).problems == [(2, "not valid JSON")]


def test_a_complete_last_event_without_its_newline_is_still_read(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", event(0, "a"), event(1, "b"), end=b"")
    read = read_journal(path)
    assert [e["type"] for e in read.events] == ["a", "b"] and read.problems == []


def test_bytes_that_are_not_utf8_are_one_problem_on_their_line(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", event(0, "a"), b"\xff\xfe\x00garbage", event(2, "b"))
    read = read_journal(path)
    assert [e["type"] for e in read.events] == ["a", "b"]
    assert [n for n, _ in read.problems] == [2]


def test_an_unreadable_journal_is_a_problem_not_an_exception(tmp_path):
    read = read_journal(tmp_path / "missing.jsonl")
    assert read.events == [] and read.problems[0][0] == 0
    assert "cannot read" in read.problems[0][1]
    assert read.drill_id == "missing"


def test_the_drill_id_comes_from_drill_started_else_the_file_name(tmp_path):
    path = write_lines(tmp_path / "file-name.jsonl", event(0, "note"))
    assert read_journal(path).drill_id == "file-name"
    path = write_lines(
        tmp_path / "file-name.jsonl", '{"v":1,"seq":0,"type":"drill.started","drill":"real-id"}'
    )
    assert read_journal(path).drill_id == "real-id"


# ------------------------------------------------------------------ the lock

INFO = {"drill": "drill-one", "pid": os.getpid(), "engineer": "ana", "scenario": "s", "since": "t"}


def test_a_second_lock_on_the_same_stack_is_refused_naming_the_holder(tmp_path):
    first, second = DrillLock(tmp_path / "state"), DrillLock(tmp_path / "state")
    first.acquire(INFO)
    try:
        with pytest.raises(DrillBusyError) as caught:
            second.acquire({**INFO, "drill": "drill-two"})
        message = str(caught.value)
        assert "drill drill-one" in message
        assert f"(pid {os.getpid()})" in message
        assert "engineer ana" in message and "one drill per stack" in message
        assert second.holder() == INFO
    finally:
        first.release()
    second.acquire({**INFO, "drill": "drill-two"})  # free once released
    try:
        assert DrillLock(tmp_path / "state").holder()["drill"] == "drill-two"
    finally:
        second.release()


def test_held_releases_the_lock_even_when_the_body_raises(tmp_path):
    lock = DrillLock(tmp_path)
    with pytest.raises(RuntimeError), lock.held(INFO):
        raise RuntimeError("boom")
    other = DrillLock(tmp_path)
    other.acquire(INFO)
    other.release()
    assert other.holder() is None  # released locks leave an empty file


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pagerdrill.journal import DrillLock

    DrillLock(Path(sys.argv[1])).acquire(
        {"drill": "child-drill", "pid": os.getpid(), "engineer": "bo", "scenario": "s",
         "since": "now"}
    )
    time.sleep(120)
    """
)


def test_a_lock_held_by_a_process_killed_with_sigkill_is_free_again(tmp_path):
    state = tmp_path / "state"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(state)])
    try:
        lock_file = state / "drill.lock"
        wait_for(
            lambda: lock_file.exists() and lock_file.read_text() != "",
            timeout=20,
            what="the child to take the drill lock",
        )
        lock = DrillLock(state)
        with pytest.raises(DrillBusyError) as caught:
            lock.acquire(INFO)
        assert "drill child-drill" in str(caught.value)
        assert f"(pid {child.pid})" in str(caught.value)
    finally:
        child.kill()  # SIGKILL: no chance to release
        child.wait(10)
    assert child.returncode == -9
    lock.acquire(INFO)
    try:
        assert lock.holder() == INFO
    finally:
        lock.release()


# ------------------------------------------------------------------ the summary

CHECKLIST = {
    "hypothesis_target_s": 300,
    "steps": [
        {"id": "acknowledge", "title": "Acknowledge", "target_s": 60},
        {"id": "dashboards", "title": "Open the dashboards", "target_s": 120},
        {"id": "logs", "title": "Check the logs", "target_s": 240},
        {"id": "page-lead", "title": "Page the lead?", "target_s": 300},
    ],
}


def drill(*tail: dict) -> JournalRead:
    """A drill that paged at T+0, then `tail`."""
    events = [
        {
            "type": "drill.started",
            "drill": "d-42",
            "ts": "2024-05-01T10:00:00.000Z",
            "engineer": "ana",
            "scenario": {"name": "bullmq", "title": "BullMQ back-pressure", "severity": "P2"},
            "checklist": CHECKLIST,
        },
        {"type": "fault.undo", "fault": "stop-api", "kind": "stop-service", "ts": "u"},
        {"type": "fault.injected", "fault": "stop-api", "ts": "i"},
        {"type": "alert.firing", "alert": "queue-depth"},
        {"type": "page", "alert": "queue-depth", "ts": "2024-05-01T10:01:00.000Z"},
        *tail,
    ]
    for seq, event in enumerate(events):
        event.setdefault("v", 1)
        event["seq"] = seq
    return JournalRead(Path("/drills/d-42.jsonl"), events=events)


FULL = (
    {"type": "ack", "drill_s": 12.5},
    {"type": "step.done", "step": "acknowledge", "drill_s": 12.5},
    {"type": "step.done", "step": "dashboards", "drill_s": 120.0},  # exactly on target
    {"type": "step.done", "step": "logs", "drill_s": 250.0},  # over
    {"type": "hint", "drill_s": 200},
    {"type": "note", "text": "n", "drill_s": 201},
    {"type": "hypothesis", "text": "redis", "correct": False, "drill_s": 210.0},
    {"type": "clock.paused", "drill_s": 215},
    {"type": "clock.resumed", "paused_s": 30.5, "drill_s": 215},
    {"type": "hypothesis", "text": "consumer down", "correct": True, "drill_s": 280.0},
    {"type": "hypothesis", "text": "again", "correct": True, "drill_s": 290.0},
    {"type": "decision", "choice": "purge", "correct": False, "drill_s": 295},
    {"type": "decision", "choice": "backlog", "correct": True, "drill_s": 296},
    {"type": "mitigation", "title": "Start api", "drill_s": 300.0},
    {"type": "mitigation", "title": "Restart api", "drill_s": 330.0},
    {"type": "fault.reverted", "fault": "stop-api", "by": "mitigation", "ts": "r"},
    {"type": "recovery.verified", "drill_s": 340.0},
    {"type": "drill.closed", "ts": "2024-05-01T10:07:00.000Z"},
)


def test_summary_of_a_closed_drill_times_every_step_against_its_target():
    s = summarize(read := drill(*FULL))
    assert s["outcome"] == "closed" and s["complete"] and s["problems"] == []
    assert s["drill"] == "d-42" and s["engineer"] == "ana"
    assert (s["scenario"], s["title"], s["severity"]) == ("bullmq", "BullMQ back-pressure", "P2")
    assert s["paged"] and s["alert_fired"] and s["page_alert"] == "queue-depth"
    assert s["time_to_ack_s"] == 12.5
    assert [(x["id"], x["done_s"], x["met"]) for x in s["steps"]] == [
        ("acknowledge", 12.5, True),
        ("dashboards", 120.0, True),
        ("logs", 250.0, False),
        ("page-lead", None, False),
    ]
    assert [x["target_s"] for x in s["steps"]] == [60, 120, 240, 300]
    assert s["time_to_mitigate_s"] == 300.0  # the first mitigation
    assert s["recovery_verified"] and s["time_to_recovery_s"] == 340.0
    assert s["hints_used"] == 1 and s["notes"] == 1
    assert s["paused_s"] == 30.5
    assert s["decision"] == {"choice": "backlog", "correct": True}  # the last one counts
    assert s["ended"] == "2024-05-01T10:07:00.000Z"
    assert s["faults"] == [
        {
            "id": "stop-api",
            "undo": "u",
            "kind": "stop-service",
            "injected": "i",
            "reverted": "r",
            "reverted_by": "mitigation",
        }
    ]
    assert exit_code(summary_of(read)) == 0


def test_summary_times_the_first_right_hypothesis_and_counts_every_attempt():
    h = summarize(drill(*FULL))["hypothesis"]
    assert {k: v for k, v in h.items() if k != "stated"} == {
        "first_s": 210.0,
        "first_text": "redis",
        "correct": True,
        "first_correct": False,
        "correct_s": 280.0,
        "target_s": 300,
        "attempts": 3,
        # a journal from before three-way grades: `correct` true is right, false wrong
        "first_grade": "wrong",
        "first_graded_by": None,
        "grade": "right",
        "to_grade": 0,
    }
    assert [(x["text"], x["grade"]) for x in h["stated"]] == [
        ("redis", "wrong"),
        ("consumer down", "right"),
        ("again", "right"),
    ]


def test_summary_with_only_wrong_hypotheses_is_not_correct():
    h = summarize(drill({"type": "hypothesis", "text": "x", "correct": False, "drill_s": 9}))[
        "hypothesis"
    ]
    assert not h["correct"] and h["correct_s"] is None and h["attempts"] == 1


def test_summary_of_an_aborted_drill_says_why_and_fails():
    read = drill({"type": "ack", "drill_s": 3}, {"type": "drill.aborted", "reason": "guard"})
    s = summarize(read)
    assert s["outcome"] == "aborted" and s["abort_reason"] == "guard"
    assert not s["recovery_verified"] and s["time_to_recovery_s"] is None
    assert exit_code(summary_of(read)) == 1


def test_summary_of_a_journal_with_no_end_is_crashed():
    read = drill({"type": "ack", "drill_s": 3})
    read.problems.append((7, "cut short (the drill stopped mid-write)"))
    s = summarize(read)
    assert s["outcome"] == "crashed" == outcome(read)
    assert not s["complete"] and s["ended"] is None
    assert s["problems"] == ["line 7: cut short (the drill stopped mid-write)"]
    assert exit_code(summary_of(read)) == 1


def test_a_closed_drill_without_verified_recovery_exits_1():
    s = summary_of(drill({"type": "drill.closed", "ts": "x"}))
    assert s.outcome == "closed" and not s.recovery_verified
    assert exit_code(s) == 1


def test_summary_of_a_drill_that_never_paged_has_no_times():
    read = drill()
    read.events = read.events[:3]
    s = summarize(read)
    assert not s["paged"] and not s["alert_fired"] and s["time_to_ack_s"] is None
    assert all(x["done_s"] is None and not x["met"] for x in s["steps"])


def test_a_summary_round_trips_through_a_real_journal(tmp_path):
    path = tmp_path / "d-42.jsonl"
    writer = JournalWriter(path, "d-42")
    try:
        for event in drill(*FULL).events:
            skip = ("v", "seq", "type", "drill", "ts")
            data = {k: v for k, v in event.items() if k not in skip}
            writer.append(event["type"], **data)
    finally:
        writer.close()
    from_file = summarize(read_journal(path))
    in_memory = summarize(drill(*FULL))
    # the writer stamps its own `ts`; everything timed on the drill clock must agree
    stamped = {"journal", "started", "ended", "paged_at", "faults"}
    assert from_file["outcome"] == "closed" and from_file["complete"]
    assert {k: v for k, v in from_file.items() if k not in stamped} == {
        k: v for k, v in in_memory.items() if k not in stamped
    }
