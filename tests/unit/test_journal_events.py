"""The typed journal events (no servers): every type decodes into its class and back to
the same line, old journals decode, and a line that is not an event of a known type
and shape gets an error naming its line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgspec
import pytest

from pagerdrill.journal import JournalWriter, read_journal
from pagerdrill.journal import events as ev
from pagerdrill.journal.events import (
    EVENT_TYPES,
    JournalEventError,
    decode_event,
    event_dict,
)
from pagerdrill.journal.redact import Redactor

JOURNALS = Path(__file__).resolve().parents[1] / "fixtures" / "journals"

# one event of every type, as the drill writes it (field order included)
ENVELOPE = {"v": 1, "seq": 3, "ts": "2026-11-22T09:00:00.000Z", "t": 1.5}
SAMPLES: dict[str, dict] = {
    "drill.started": {
        "tool": {"name": "pagerdrill", "version": "0.1"}, "host": "h", "pid": 7,
        "engineer": "ana", "mode": "headless", "blind": False, "workspace": "/w",
        "target": "local",
        "scenario": {"name": "s", "title": "S", "severity": "P2", "symptom": "slow",
                     "file": "s.yaml", "sha256": "ab", "params": {}, "text": "name: s"},
        "roles": {"api": "api"},
        "checklist": {"hypothesis_target_s": 600,
                      "steps": [{"id": "ack", "title": "Ack", "target_s": 60, "url": None}]},
        "alerts": [{"name": "a", "expr": "q > 1"}], "recovery": {"all": ["q < 1"]},
        "hypotheses": {"shown": ["x", "y"], "feedback": "hidden"},
        "mitigations": {"shown": ["m"]}, "decision": {"shown": ["d"]},
    },
    "state": {"from": "quiet", "to": "fault-injected"},
    "probe.sample": {"values": {"queue": {"value": 3, "waiting": 3}}, "drill_s": None},
    "alert.firing": {"alert": "a", "page": True, "severity": "P2", "summary": "s",
                     "expr": "q > 1", "drill_s": None},
    "alert.resolved": {"alert": "a", "page": True, "severity": "P2", "summary": "s",
                       "expr": "q > 1", "drill_s": 30.0},
    "page": {"alert": "a", "severity": "P2", "summary": "s", "symptom": "slow", "title": None},
    "guard.tripped": {"reason": "too much"},
    "fault.held": {"fault": "f", "firing": ["a"]},
    "fault.undo": {"fault": "f", "kind": "stop-service", "role": "api", "params": {},
                   "undo": {"service": "api"}},
    "fault.failed": {"fault": "f", "error": "boom"},
    "fault.injected": {"fault": "f", "kind": "stop-service", "detail": {"service": "api"},
                       "inject_ms": 12.5},
    "fault.progress": {"fault": "f", "wave": {"accepted": 3}},
    "fault.error": {"fault": "f", "error": "RuntimeError()"},
    "fault.revert_failed": {"fault": "f", "by": "abort", "error": "boom"},
    "fault.reverted": {"fault": "f", "by": "close", "detail": {"service": "api"}},
    "ack": {"by": "ana", "drill_s": 3.0, "text": None},
    "step.done": {"step": "logs", "title": "Logs", "drill_s": 9.0, "target_s": 240,
                  "over": False, "evidence": "logs: errors"},
    "evidence": {"step": "logs", "what": "logs", "about": "errors", "drill_s": 9.0},
    "note": {"text": "queue climbing", "drill_s": 10.0},
    "hypothesis": {"choice": "x", "text": "X", "correct": True, "grade": "right",
                   "grade_note": None, "position": 1, "drill_s": 20.0, "target_s": 600},
    "decision": {"prompt": "P?", "choice": "d", "text": "D", "correct": True, "position": 1,
                 "drill_s": 21.0},
    "hint": {"index": 1, "text": "look at the queue", "drill_s": 22.0},
    "clock.paused": {"by": "coach", "drill_s": 23.0},
    "clock.resumed": {"by": "coach", "paused_s": 4.0, "drill_s": 23.0},
    "script.refused": {"drill_s": 24.0, "index": 2, "action": "mitigate", "reason": "no"},
    "mitigation.started": {"mitigation": "m", "action": "start-service", "drill_s": 25.0},
    "mitigation.failed": {"mitigation": "m", "error": "boom", "drill_s": 25.5},
    "mitigation.undo": {"mitigation": "m", "undo": {"service": "api"}},
    "mitigation": {"mitigation": "m", "title": "Start api", "action": "start-service",
                   "detail": {}, "position": 1, "drill_s": 26.0},
    "mitigation.revert_failed": {"mitigation": "m", "undo_seq": 9, "error": "boom"},
    "mitigation.reverted": {"mitigation": "m", "by": "close", "undo_seq": 9, "detail": {}},
    "recovery.verified": {"drill_s": 40.0, "held_s": 5.0, "criteria": ["q < 1"],
                          "values": {"queue": {"value": 0}}},
    "resolve": {"by": "ana", "text": None, "drill_s": 41.0, "recovery_verified": True},
    "abort.requested": {"reason": "q pressed"},
    "drill.closed": {"recovery_verified": True, "revert_failed": [], "drill_s": 41.0},
    "drill.aborted": {"reason": "q pressed", "revert_failed": [], "drill_s": 12.0},
    "recover.started": {"problems": ["line 4: cut short (the drill stopped mid-write)"]},
    "recover.finished": {"reverted": ["f"]},
    "hypothesis.graded": {"by": "lead", "of": 30, "attempt": 1, "grade": "right",
                          "comment": None},
    "review": {"by": "lead", "verdict": "pass", "comment": "good"},
}  # fmt: skip


def _line(kind: str) -> dict:
    return {**ENVELOPE, "type": kind, "drill": "d1", **SAMPLES[kind]}


def test_every_event_type_has_a_sample_here():
    assert sorted(SAMPLES) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_event_type_decodes_into_its_class_and_back_to_the_same_line(kind):
    line = _line(kind)
    event = decode_event(json.dumps(line))
    assert type(event) is EVENT_TYPES[kind]
    assert kind == event.TYPE
    assert (event.seq, event.drill) == (3, "d1")
    back = event_dict(event)
    assert back == line
    assert list(back) == list(line)  # the same keys in the same order


def test_the_state_event_keeps_its_from_key_on_disk():
    event = decode_event(_line("state"))
    assert isinstance(event, ev.State)
    assert (event.from_, event.to) == ("quiet", "fault-injected")
    assert "from" in event_dict(event) and "from_" not in event_dict(event)


def test_an_unknown_event_type_is_an_error_naming_the_line_and_the_known_types():
    with pytest.raises(JournalEventError, match=r"line 7: unknown event type 'fault.exploded'"):
        decode_event({"type": "fault.exploded", "fault": "f"}, line=7)
    with pytest.raises(JournalEventError, match=r"known: abort\.requested, ack, "):
        decode_event({"type": "fault.exploded"}, line=7)


def test_a_field_of_the_wrong_kind_is_an_error_naming_the_line_the_type_and_the_field():
    line = {**_line("fault.injected"), "fault": 3}
    with pytest.raises(JournalEventError) as err:
        decode_event(json.dumps(line), line=12)
    assert str(err.value) == "line 12: fault.injected event: `fault`: Expected `str`, got `int`"


def test_a_field_left_out_reads_as_its_default_but_a_nested_one_of_the_wrong_kind_says_which():
    # a journal older than a field (or a hand-edited line) has always read without it
    page = decode_event({"type": "page", "severity": "P2"}, line=4)
    assert isinstance(page, ev.Page) and page.alert == "" and page.summary is None
    with pytest.raises(JournalEventError, match=r"line 4: page event: `alert`: Expected `str`"):
        decode_event({"type": "page", "alert": ["a"]}, line=4)
    started = _line("drill.started")
    started["checklist"]["steps"][0]["target_s"] = "soon"
    wanted = r"line 1: drill.started event: `checklist.steps\[0\].target_s`: Expected `float"
    with pytest.raises(JournalEventError, match=wanted):
        decode_event(started, line=1)


def test_a_line_that_is_not_json_or_not_an_object_is_an_error_naming_the_line():
    with pytest.raises(JournalEventError, match="line 2: not valid JSON"):
        decode_event('{"type": "note", ', line=2)
    with pytest.raises(JournalEventError, match="line 3: not a journal event"):
        decode_event("[1, 2]", line=3)
    with pytest.raises(JournalEventError, match=r"line 5: not a journal event \(no `type`\)"):
        decode_event({"text": "x"}, line=5)


def test_events_are_frozen():
    event = decode_event(_line("note"))
    with pytest.raises(AttributeError):
        event.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("journal", sorted(JOURNALS.glob("*.jsonl")), ids=lambda p: p.stem)
def test_the_old_fixture_journals_decode_line_for_line_and_encode_to_the_same_objects(journal):
    read = read_journal(journal)
    assert read.undecoded == []
    assert len(read.typed) == len(read.events)
    for number, raw in enumerate(journal.read_text().splitlines(), 1):
        obj = json.loads(raw)
        back = event_dict(decode_event(raw, line=number))
        assert back == obj and list(back) == list(obj), f"line {number}"


def test_a_typed_event_is_written_as_the_untyped_writer_writes_the_same_fields(tmp_path):
    typed, plain = tmp_path / "typed.jsonl", tmp_path / "plain.jsonl"
    w1, w2 = JournalWriter(typed, "d1"), JournalWriter(plain, "d1")
    written = w1.write(ev.StepDone(step="logs", title="Logs", drill_s=9.0, target_s=240,
                                   over=False, evidence=None))  # fmt: skip
    w2.append("step.done", step="logs", title="Logs", drill_s=9.0, target_s=240, over=False,
              evidence=None)  # fmt: skip
    w1.close()
    w2.close()

    def without_times(path: Path) -> dict:
        obj = json.loads(path.read_text())
        return {k: v for k, v in obj.items() if k not in ("ts", "t")}

    assert list(json.loads(typed.read_text())) == list(json.loads(plain.read_text()))
    assert without_times(typed) == without_times(plain)
    assert written.seq == 0 and written.drill == "d1" and written.ts
    # an UNSET field is left out of the line, as the drill always left it out
    assert "prompt" not in json.loads(typed.read_text())


def test_a_line_of_an_unknown_type_is_read_and_reported_as_undecoded_with_its_line(tmp_path):
    path = tmp_path / "d.jsonl"
    writer = JournalWriter(path, "d1")
    writer.write(ev.Note(text="one", drill_s=1.0))
    writer.append("fault.exploded", fault="f")
    writer.write(ev.Note(text="two", drill_s=2.0))
    writer.close()
    read = read_journal(path)
    assert [type(e) for e in read.typed] == [ev.Note, ev.Note]
    assert [n for n, _ in read.undecoded] == [2]
    assert "unknown event type 'fault.exploded'" in read.undecoded[0][1]


def test_the_redactor_masks_a_typed_event_and_keeps_its_class():
    redactor = Redactor({"hunter2-long-secret"})
    event = ev.Note(text="password is hunter2-long-secret", drill_s=1.0)
    masked = redactor.event(event)
    assert isinstance(masked, ev.Note) and masked.text == "password is ***"
    assert msgspec.structs.replace(masked, text=event.text) == event


# ------------------------------------------------------------ the console printer


@pytest.fixture
def printed(monkeypatch):
    """What the headless drill's event printer writes for some events (no colours)."""
    from rich.console import Console

    from pagerdrill.cli import console

    def run(events: list[ev.Event]) -> str:
        out = io.StringIO()
        plain = Console(file=out, highlight=False, width=200, color_system=None)
        monkeypatch.setattr(console, "_console", lambda stderr=False: plain)
        show = console._event_printer(Redactor())
        for event in events:
            show(event)
        return out.getvalue()

    return run


def test_a_fault_its_undo_record_says_cannot_be_undone_is_never_printed_as_reverted(printed):
    """A fault whose revert detail leaves it out, but whose undo record (written before
    it went in) says its harm cannot be undone: the console says what did happen."""
    undo = {
        "service": "redis-cache",
        "command": "FLUSHDB",
        "irreversible": "the data it removes is gone; the cache refills from traffic",
    }
    text = printed(
        [
            ev.FaultUndo(fault="flushdb", kind="redis-command", role="cache", undo=undo),
            ev.FaultInjected(fault="flushdb", kind="redis-command", inject_ms=2.0),
            ev.FaultReverted(
                fault="flushdb",
                by="abort",
                detail={
                    "service": "redis-cache",
                    "repair": {"action": "replay-lost-jobs", "replayed": 83},
                },
            ),
        ]
    )
    assert "fault flushdb reverted" not in text
    assert "fault flushdb: FLUSHDB cannot be undone; 83 lost jobs replayed (abort)" in text


def test_a_fault_that_can_be_undone_is_printed_as_reverted(printed):
    text = printed(
        [
            ev.FaultUndo(fault="stop-api", kind="stop-service", undo={"service": "api"}),
            ev.FaultReverted(fault="stop-api", by="close", detail={"service": "api"}),
        ]
    )
    assert "fault stop-api reverted (close)" in text


def test_the_console_tells_an_alert_before_the_fault_from_a_page(printed):
    alert = {"alert": "queue-depth", "summary": "queue is deep"}
    text = printed(
        [
            ev.AlertFiring(**alert),
            ev.FaultInjected(fault="f", inject_ms=1.0),
            ev.AlertFiring(**alert),
            ev.State(from_="steady-state", to="quiet", quiet_s=4.8),
        ]
    )
    lines = text.splitlines()
    assert "alert queue-depth firing before the fault (not a page)" in lines[0]
    assert "ALERT queue-depth: queue is deep" in lines[2]
    assert "quiet for 4.8s" in lines[3]


# ------------------------------------------------------- the drill screen's view


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_drill_view_takes_its_state_from_the_events_alone():
    from pagerdrill.drill.engine import Phase
    from pagerdrill.tui.drillview import DrillView

    clock = _Clock()
    view = DrillView(clock)
    view.apply(ev.State(from_="steady-state", to="quiet"))
    assert (view.phase, view.paged, view.drill_s()) == (Phase.QUIET, False, None)
    view.apply(ev.Page(alert="a"))
    clock.now += 12.0
    assert view.drill_s() == 12.0  # the clock runs on from the page
    view.apply(ev.StepDone(step="dashboards", title="Dashboards", drill_s=30.0))
    assert view.steps_done == {"dashboards": 30.0}
    clock.now += 5.0
    assert view.drill_s() == 35.0  # from the newest event's time
    view.apply(ev.ClockPaused(by="coach", drill_s=35.0))
    clock.now += 60.0
    assert view.paused and view.drill_s() == 35.0  # paused: the clock stands still
    view.apply(ev.ClockResumed(by="coach", paused_s=60.0, drill_s=35.0))
    clock.now += 1.0
    assert view.drill_s() == 36.0
    assert not view.recovered
    view.apply(ev.RecoveryVerified(drill_s=40.0))
    view.apply(ev.State(from_="recovered", to="closed"))
    clock.now += 100.0
    assert view.recovered and view.done and view.drill_s() == 40.0


def test_the_drill_view_shows_only_the_paging_alert_before_the_page():
    from pagerdrill.tui.drillview import DrillView, event_line

    view = DrillView(_Clock())
    view.apply(ev.State(from_="steady-state", to="quiet"))
    line = lambda e: event_line(e, view, blind=False, feedback="hidden")  # noqa: E731
    assert line(ev.AlertFiring(alert="warm", page=True)) is None  # before the fault
    view.apply(ev.State(from_="quiet", to="fault-injected"))
    assert line(ev.AlertFiring(alert="side", page=False)) is None
    assert line(ev.AlertFiring(alert="queue", page=True)) == "alert queue firing"
    view.apply(ev.Page(alert="queue"))
    assert line(ev.AlertResolved(alert="side", drill_s=61.0)) == "[1:01] alert side resolved"
