"""`recover` from the journal alone, without a running stack."""

from __future__ import annotations

from helpers import write_workspace
from pagerdrill.drill.recover import pending_undo, recover
from pagerdrill.journal import JournalWriter, read_journal
from pagerdrill.journal.events import decode_event
from pagerdrill.targets.local import LocalTarget
from pagerdrill.workspace import load_workspace


def crashed_journal(root, drill="d1"):
    journal = JournalWriter(root / "drills" / f"{drill}.jsonl", drill)
    journal.append("drill.started", scenario={"name": "x"})
    journal.append("fault.undo", fault="f1", kind="stop-service", role="api", params={},
                   undo={"service": "api", "was": "running"})  # fmt: skip
    journal.append("fault.injected", fault="f1")
    journal.close()
    # a crash mid-write: half a line at the end
    with (root / "drills" / f"{drill}.jsonl").open("a") as fh:
        fh.write('{"v":1,"seq":3,"type":"probe.sam')
    return root / "drills" / f"{drill}.jsonl"


def test_recover_closes_a_crashed_drill_when_the_stack_is_down(tmp_path):
    root = write_workspace(tmp_path / "ws")
    path = crashed_journal(root)
    ws = load_workspace(root)
    results = recover(ws, LocalTarget(ws))
    assert [r.drill for r in results] == ["d1"]
    assert results[0].reverted == [] and results[0].failed == []
    read = read_journal(path)
    assert read.finished
    last = read.events[-1]
    assert last["type"] == "drill.aborted" and "stack was down" in last["reason"]
    assert [n for n, _ in read.problems] == [4]  # the cut line is kept and reported
    assert read.events[-1]["seq"] > read.events[-3]["seq"]
    assert recover(ws, LocalTarget(ws)) == []  # nothing left the second time


def test_pending_undo_is_newest_first_and_skips_what_was_reverted():
    events = [
        {"seq": 1, "type": "fault.undo", "fault": "a"},
        {"seq": 2, "type": "fault.undo", "fault": "b"},
        {"seq": 3, "type": "mitigation.undo", "mitigation": "m"},
        {"seq": 4, "type": "fault.undo", "fault": "c"},
        {"seq": 5, "type": "fault.reverted", "fault": "b"},
    ]
    pending = pending_undo([decode_event(e) for e in events])
    assert [getattr(e, "fault", None) or getattr(e, "mitigation", None) for e in pending] == [
        "c",
        "m",
        "a",
    ]


def stopped_services_journal(root, drill: str, stops: dict[str, str], reverted=()) -> None:
    """A drill that stopped services (fault id: service) and crashed, after putting
    back the faults `reverted` itself."""
    journal = JournalWriter(root / "drills" / f"{drill}.jsonl", drill)
    journal.append("drill.started", scenario={"name": "x"})
    for fault, service in stops.items():
        journal.append("fault.undo", fault=fault, kind="stop-service", role=service, params={},
                       undo={"service": service, "was": "running"})  # fmt: skip
    for fault in reverted:
        journal.append("fault.reverted", fault=fault)
    journal.close()


def test_recover_waits_for_the_services_it_put_back_and_names_one_that_never_came_up(
    tmp_path,
):
    from standin import StandIn

    root = write_workspace(tmp_path / "ws")
    stopped_services_journal(root, "d2", {"f1": "game"})
    target = StandIn()
    target.state["game"] = "stopped"
    target.started_as = "starting"  # started again, but it never comes up
    (result,) = recover(load_workspace(root), target, health_wait_s=0.3)  # type: ignore[arg-type]
    assert result.reverted == ["f1"] and result.services == ["game"]
    assert result.not_healthy == {"game": "starting, unknown"}
    target.state["game"] = "stopped"
    assert recover(load_workspace(root), target) == []  # the drill is finished


def test_recover_also_waits_for_a_service_the_drill_put_back_itself_before_it_stopped(
    tmp_path,
):
    from standin import StandIn

    root = write_workspace(tmp_path / "ws")
    # game started again by the drill itself, then the crash
    stopped_services_journal(root, "d3", {"f1": "game", "f2": "rt"}, reverted=["f1"])
    target = StandIn()
    target.state["game"] = "starting"
    target.state["rt"] = "stopped"
    (result,) = recover(load_workspace(root), target, health_wait_s=0.3)  # type: ignore[arg-type]
    assert result.reverted == ["f2"] and target.state["rt"] == "running"
    assert result.not_healthy == {"game": "starting, unknown"}
