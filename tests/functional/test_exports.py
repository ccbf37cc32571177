"""Exports of real drill journals (recorded from headless runs of each scenario on the
reference stack): Slack and Markdown pinned by golden files, JSON valid against its
schema, secrets never leaving, broken journals exported as far as they go."""

from __future__ import annotations

import html as html_module
import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from helpers import REPO, pagerdrill_cli, write_workspace
from pagerdrill.journal import read_journal
from pagerdrill.journal.redact import Redactor
from pagerdrill.reports.drills import list_drills, review
from pagerdrill.reports.html import render_html
from pagerdrill.reports.text import (
    SLACK_MESSAGE_LIMIT,
    counts_line,
    decision_line,
    markdown,
    outcome_text,
    slack_messages,
    step_lines,
    to_json,
)
from pagerdrill.reports.timeline import build, load
from pagerdrill.timefmt import clock, mmss
from pagerdrill.workspace.config import WorkspaceConfig

JOURNALS = REPO / "tests" / "fixtures" / "journals"
GOLDEN = REPO / "tests" / "fixtures" / "golden"
SCENARIOS = sorted(p.stem for p in JOURNALS.glob("*.jsonl"))
SCHEMA = json.loads(
    (REPO / "src" / "pagerdrill" / "reports" / "drill-export.schema.json").read_text()
)
UPDATE = os.environ.get("PAGERDRILL_UPDATE_GOLDEN") == "1"


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with PAGERDRILL_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file"


def test_there_is_a_recorded_journal_for_each_shipped_scenario():
    assert sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml")) == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_slack_export_matches_its_golden_file(scenario):
    messages = slack_messages(load(JOURNALS / f"{scenario}.jsonl"))
    golden(f"{scenario}.slack.txt", "\n\n".join(messages) + "\n")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_markdown_export_matches_its_golden_file(scenario):
    golden(f"{scenario}.md", markdown(load(JOURNALS / f"{scenario}.jsonl")))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_json_export_validates_against_its_schema(scenario):
    doc = to_json(load(JOURNALS / f"{scenario}.jsonl"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["scenario"] == scenario
    assert doc["summary"]["recovery_verified"] is True
    assert doc["signals"] and all(s["points"] for s in doc["signals"])
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds.index("fault.injected") < kinds.index("page") < kinds.index("recovery.verified")


def test_the_schema_refuses_a_document_that_breaks_it():
    doc = to_json(load(JOURNALS / "api-500-injection.jsonl"))
    doc["summary"]["outcome"] = "exploded"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_slack_lines_carry_wall_time_and_time_from_the_page():
    text = "\n".join(slack_messages(load(JOURNALS / "bullmq-backpressure.jsonl")))
    page = next(line for line in text.splitlines() if "PAGE (P2)" in line)
    assert page.startswith("`") and "T+00:00" in page
    assert "*Hypothesis*:" in text and "*Resolution*:" in text
    assert "T-00:" in text  # the fault went in before the page


def test_a_long_timeline_is_split_into_numbered_slack_messages(tmp_path):
    path = tmp_path / "long.jsonl"
    lines = (JOURNALS / "bullmq-backpressure.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    extra = [
        json.dumps({"v": 1, "seq": last["seq"] + 1 + i, "ts": last["ts"], "t": last["t"],
                    "type": "note", "drill": last["drill"], "text": f"note number {i} " * 40})
        for i in range(300)
    ]  # fmt: skip
    path.write_text("\n".join([*lines, *extra]) + "\n")
    messages = slack_messages(load(path))
    assert len(messages) > 3
    assert all(len(m) <= SLACK_MESSAGE_LIMIT for m in messages)
    # no tiny tail: the parts are of about the same size
    assert min(len(m) for m in messages) > SLACK_MESSAGE_LIMIT // 2
    n = len(messages)
    assert [m.split(" ", 1)[0] for m in messages] == [f"({i}/{n})" for i in range(1, n + 1)]
    joined = "\n".join(messages)
    assert all(f"note number {i} " in joined for i in range(300))  # nothing dropped


def _with_notes(tmp_path, count: int, text: str) -> Path:
    path = tmp_path / "notes.jsonl"
    lines = (JOURNALS / "bullmq-backpressure.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    extra = [
        json.dumps({"v": 1, "seq": last["seq"] + 1 + i, "ts": last["ts"], "t": last["t"],
                    "type": "note", "drill": last["drill"], "text": f"{text} {i}"})
        for i in range(count)
    ]  # fmt: skip
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return path


def test_the_slack_export_is_text_to_paste_with_no_api_escaping(tmp_path):
    path = _with_notes(tmp_path, 1, "p95 < 200 ms & errors > 1%, see <runbook>")
    text = "\n".join(slack_messages(load(path)))
    assert "queue.waiting < 10" in text
    assert "p95 < 200 ms & errors > 1%, see <runbook>" in text
    assert "&lt;" not in text and "&gt;" not in text and "&amp;" not in text


def test_a_slack_export_of_a_few_kilobytes_is_one_message(tmp_path):
    path = _with_notes(tmp_path, 30, "queue depth still climbing, settled rate zero, api down")
    messages = slack_messages(load(path))
    assert 3_500 < len(messages[0]) < 10_000
    assert len(messages) == 1 and not messages[0].startswith("(1/")


def test_a_slack_export_just_over_the_limit_splits_into_parts_of_about_the_same_size(tmp_path):
    path = _with_notes(tmp_path, 40, "queue depth still climbing, settled rate zero, api down")
    whole = slack_messages(load(path), limit=10**6)[0]
    limit = len(whole) - 100  # a little too long for one message
    messages = slack_messages(load(path), limit=limit)
    assert [m.split(" ", 1)[0] for m in messages] == ["(1/2)", "(2/2)"]
    assert all(len(m) <= limit for m in messages)
    assert min(len(m) for m in messages) > len(whole) // 3  # no one-line tail


# ------------------------------------------------------------------ secrets


def signin_with_secrets(tmp_path) -> Path:
    """The sign-in drill's real journal, plus notes a careless engineer might write."""
    src = (JOURNALS / "signin-failure-spike.jsonl").read_text().splitlines()
    last = json.loads(src[-1])
    notes = [
        "redis://:cache-secret-42@127.0.0.1:6379/0 looks fine",
        "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def' worked",
        "ADMIN_DEFAULT_PASSWORD=hunter22 on the box",
        "ran redis-cli -a cache-secret-42 INFO",
        "token: 9f8e7d6c5b4a3f2e",
    ]
    extra = [
        json.dumps({"v": 1, "seq": last["seq"] + 1 + i, "ts": last["ts"], "t": last["t"],
                    "type": "note", "drill": last["drill"], "text": text})
        for i, text in enumerate(notes)
    ]  # fmt: skip
    path = tmp_path / "signin.jsonl"
    path.write_text("\n".join([*src, *extra]) + "\n")
    return path


SECRETS = (
    "not-the-admin-password",  # the bad ADMIN_DEFAULT_PASSWORD the fault set
    "admin-local",  # the configured admin password
    "cache-secret-42",  # the workspace's Redis password
    "eyJhbGciOiJIUzI1NiJ9",
    "hunter22",
    "9f8e7d6c5b4a3f2e",
)


def every_format(timeline) -> dict[str, str]:
    from pagerdrill.reports.html import render_html

    return {
        "slack": "\n".join(slack_messages(timeline)),
        "markdown": markdown(timeline),
        "json": json.dumps(to_json(timeline)),
        "html": render_html(timeline),
    }


def test_no_secret_leaves_in_any_export_format(tmp_path):
    path = signin_with_secrets(tmp_path)
    config = WorkspaceConfig.model_validate(
        {"local": {"redis_password": "cache-secret-42",
                   "services": {"api": {"env": {"ADMIN_DEFAULT_PASSWORD": "admin-local"}}}}}
    )  # fmt: skip
    read = read_journal(path)
    raw = path.read_text()
    assert "not-the-admin-password" in raw and "hunter22" in raw  # they are in the journal
    timeline = build(read, Redactor.from_events(read.events, config))
    for fmt, text in every_format(timeline).items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked in the {fmt} export"
    md = every_format(timeline)["markdown"]
    assert "redis://:***@127.0.0.1:6379/0" in md  # what is not secret stays readable
    assert "ADMIN_DEFAULT_PASSWORD=***" in md


def test_the_bad_password_is_redacted_from_the_journal_alone(tmp_path):
    timeline = load(JOURNALS / "signin-failure-spike.jsonl")
    for text in every_format(timeline).values():
        assert "not-the-admin-password" not in text


# ------------------------------------------------------------ broken journals


def test_a_journal_cut_mid_line_exports_what_is_valid_marked_incomplete(tmp_path):
    data = (JOURNALS / "bullmq-backpressure.jsonl").read_bytes()
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data[: len(data) * 4 // 5 + 17])  # mid-line, like a kill -9 mid-write
    timeline = load(path)
    assert not timeline.complete
    assert any("cut short" in p for p in timeline.problems)
    assert timeline.summary.outcome == "crashed"
    md = markdown(timeline)
    assert "Incomplete journal" in md and "PAGE (P2)" in md
    assert "Incomplete journal" in "\n".join(slack_messages(timeline))
    jsonschema.validate(to_json(timeline), SCHEMA)


def test_junk_lines_and_other_schema_versions_are_reported_and_skipped(tmp_path):
    lines = (JOURNALS / "api-500-injection.jsonl").read_text().splitlines()
    lines.insert(5, "this is not json")
    lines.insert(9, json.dumps({"v": 99, "seq": 1, "type": "note", "text": "from the future"}))
    lines.insert(12, json.dumps(["a", "list"]))
    path = tmp_path / "junk.jsonl"
    path.write_text("\n".join(lines) + "\n")
    timeline = load(path)
    assert not timeline.complete
    assert len(timeline.problems) == 3
    assert "from the future" not in markdown(timeline)
    assert timeline.summary.recovery_verified  # the valid events still tell the story


def test_an_older_schema_is_read_as_far_as_it_goes(tmp_path):
    lines = [json.loads(x) for x in (JOURNALS / "api-500-injection.jsonl").read_text().splitlines()]
    for event in lines:
        event["v"] = 0
    path = tmp_path / "old.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    timeline = load(path)
    assert any("older schema" in p for p in timeline.problems)
    assert timeline.summary.outcome == "closed"


def test_export_of_junk_through_the_cli_never_shows_a_traceback(tmp_path):
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    (root / "drills" / "junk.jsonl").write_bytes(b'\x00\xff not a journal\n{"v": 1}\n')
    for fmt in ("slack", "markdown", "json", "html"):
        done = pagerdrill_cli("drills", "export", "junk", "--format", fmt, "-w", str(root))
        assert done.returncode == 0, done.stderr + done.stdout
        assert "Traceback" not in done.stderr
        assert done.stdout.strip()


# ------------------------------------------------------------- list and review


def workspace_with_drills(tmp_path) -> Path:
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    for path in JOURNALS.glob("*.jsonl"):
        shutil.copy(path, root / "drills" / f"{json.loads(path.open().readline())['drill']}.jsonl")
    return root


def test_a_review_is_appended_and_the_latest_verdict_counts(tmp_path):
    root = workspace_with_drills(tmp_path)
    journal = next((root / "drills").glob("*storm*.jsonl"))
    before = journal.read_bytes()
    review(journal, root / ".pagerdrill", by="Lou", verdict="fail", comment="slow to block")
    review(journal, root / ".pagerdrill", by="Lou", verdict="pass", comment="fine on re-read")
    after = journal.read_bytes()
    assert after.startswith(before)  # history is never rewritten
    timeline = load(journal)
    assert [r.verdict for r in timeline.reviews] == ["fail", "pass"]
    assert timeline.review is not None and timeline.review.verdict == "pass"
    assert "PASS by Lou" in markdown(timeline)
    assert "PASS by Lou" in slack_messages(timeline)[0]
    rows = {r.scenario: r for r in list_drills(root / "drills")}
    assert rows["ws-handshake-storm"].verdict == "pass"
    assert rows["bullmq-backpressure"].verdict is None
    entries = [e for e in timeline.entries if e.who == "review"]
    assert entries and all(e.t > timeline.duration_s for e in entries)


def test_a_drill_that_did_not_end_cannot_be_reviewed(tmp_path):
    root = workspace_with_drills(tmp_path)
    journal = next((root / "drills").glob("*flush*.jsonl"))
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:20]) + "\n")
    from pagerdrill.errors import PagerdrillError

    with pytest.raises(PagerdrillError, match="recover"):
        review(journal, root / ".pagerdrill", by="Lou", verdict="pass", comment=None)
    from pagerdrill.errors import BadInputError

    with pytest.raises(BadInputError, match="pass or fail"):
        review(journal, root / ".pagerdrill", by="Lou", verdict="maybe", comment=None)


def test_drills_list_filters_and_caches_without_going_stale(tmp_path):
    root = workspace_with_drills(tmp_path)
    index = root / ".pagerdrill" / "drills-index.json"
    rows = list_drills(root / "drills", index)
    assert len(rows) == 5 and index.exists()
    assert [r.started for r in rows] == sorted((r.started for r in rows), reverse=True)
    assert {r.outcome for r in rows} == {"closed"}
    assert len(list_drills(root / "drills", index, scenario="redis-cache-flush")) == 1
    assert len(list_drills(root / "drills", index, engineer="ana lima")) == 5
    assert list_drills(root / "drills", index, engineer="nobody") == []
    assert list_drills(root / "drills", index, since="2999-01-01") == []
    journal = next((root / "drills").glob("*api-500*.jsonl"))
    review(journal, root / ".pagerdrill", by="Lou", verdict="fail", comment=None)
    again = {r.scenario: r for r in list_drills(root / "drills", index)}
    assert again["api-500-injection"].verdict == "fail"  # the cache saw the change
    index.write_text("{not json")
    assert len(list_drills(root / "drills", index)) == 5  # a broken cache is rebuilt


def test_the_cli_lists_reviews_and_exports(tmp_path):
    root = workspace_with_drills(tmp_path)

    def run(*args):
        return pagerdrill_cli(*args, "-w", str(root), timeout=60)

    listed = run("drills", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    drill = next(
        r["drill"] for r in json.loads(listed.stdout) if r["scenario"] == "ws-handshake-storm"
    )
    reviewed = run("drills", "review", drill[-4:], "--by", "Lou", "--verdict", "pass",
                   "--comment", "good call on blocking")  # fmt: skip
    assert reviewed.returncode == 0, reviewed.stderr
    shown = run("drills", "show", drill[-4:])
    assert shown.returncode == 0 and "PASS by Lou" in shown.stdout
    assert "crossed at" in shown.stdout  # the signals summarised
    out = tmp_path / "report.md"
    exported = run("drills", "export", drill, "--format", "markdown", "-o", str(out))
    assert exported.returncode == 0 and "good call on blocking" in out.read_text()
    bad = run("drills", "export", drill, "--format", "pdf")
    assert bad.returncode == 2 and "expected one of" in bad.stderr
    missing = run("drills", "show", "no-such-drill")
    assert missing.returncode == 2 and "no drill" in missing.stderr
    since = run("drills", "list", "--since", "yesterday")
    assert since.returncode == 2 and "expected a date" in since.stderr


# ------------------------------------------------------------ hand-edited events

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EVENT_TYPES = [
    "step.done", "page", "ack", "hypothesis", "decision", "mitigation", "clock.resumed",
    "fault.undo", "fault.reverted", "review", "note", "recovery.verified", "drill.closed",
    "alert.firing", "probe.sample", "state", "hint",
]  # fmt: skip
junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers()),
)  # fmt: skip
events = st.fixed_dictionaries(
    {"v": st.just(1), "type": st.sampled_from(EVENT_TYPES)},
    optional={k: junk for k in ("seq", "t", "drill_s", "step", "fault", "text", "correct",
                                "choice", "by", "verdict", "values", "paused_s", "to")},
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.lists(events, max_size=6), at=st.integers(min_value=0, max_value=40))
def test_hand_edited_events_never_break_an_export(tmp_path, extra, at):
    lines = (JOURNALS / "api-500-injection.jsonl").read_text().splitlines()
    lines[at:at] = [json.dumps(e) for e in extra]
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join(lines) + "\n")
    timeline = load(path)
    every_format(timeline)  # nothing raises
    list_drills(tmp_path)  # nor does the list


# ------------------------------------------------------------ the same facts


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_format_states_the_same_facts(scenario):
    """What the lead reads of a drill does not depend on the format chosen."""
    tl = load(JOURNALS / f"{scenario}.jsonl")
    s = tl.summary
    h = s.hypothesis
    facts = {
        "engineer": s.engineer,
        "title": s.title,
        "severity": s.severity,
        "scenario": s.scenario,
        "drill": tl.drill,
        "page": s.page_alert,
        "outcome": outcome_text(s),
        "hypothesis": h.first_text,
        "counts": counts_line(s),
        "decision": decision_line(s),
        "mitigated": clock(s.time_to_mitigate_s),
        "recovered": clock(s.time_to_recovery_s),
        "hypothesis target": mmss(h.target_s),
        **{f"step {title}": title for title, *_ in step_lines(s)},
        **{f"step time {title}": f"{done}" for title, done, *_ in step_lines(s)},
        **{f"step target {title}": f"{target}" for title, _, target, _ in step_lines(s)},
    }
    assert s.hints_used == 0 and "Hints used: 0." in facts["counts"]
    exports = {
        "slack": "\n".join(slack_messages(tl)),
        "markdown": markdown(tl),
        "html": html_module.unescape(render_html(tl)),
    }
    for fmt, text in exports.items():
        missing = [name for name, value in facts.items() if str(value) not in text]
        assert not missing, f"the {fmt} export lacks {missing}"
    document = to_json(tl)["summary"]
    for key in ("engineer", "title", "severity", "scenario", "page_alert", "hints_used",
                "notes", "paused_s", "decision", "time_to_mitigate_s", "time_to_recovery_s",
                "steps", "hypothesis"):  # fmt: skip
        assert key in document, key


def _flush_journal_edited(tmp_path: Path, edit) -> Path:
    """The recorded redis-cache-flush journal with `edit(events)` applied, renumbered."""
    evs = [
        json.loads(line) for line in (JOURNALS / "redis-cache-flush.jsonl").read_text().splitlines()
    ]
    evs = edit(evs)
    for seq, e in enumerate(evs):
        e["seq"] = seq
    path = tmp_path / "edited.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in evs))
    return path


def _with_a_warmup_alert(evs: list[dict]) -> list[dict]:
    """A cold cache's spike and alert during steady state, well before the fault."""
    at = next(i for i, e in enumerate(evs) if e["type"] == "state" and e["to"] == "steady-state")
    base = evs[at]
    sample = next(e for e in evs if e["type"] == "probe.sample")
    spike = json.loads(json.dumps(sample))
    spike["values"]["misses"]["rate"] = 4.999
    alert = {k: base[k] for k in ("v", "ts", "t", "drill")}
    common = {"alert": "cache-misses", "page": True, "severity": "P2", "drill_s": None,
              "summary": "Market reads are missing the cache (more than 0.5/s)",
              "expr": "misses.rate > 0.5"}  # fmt: skip
    inserted = [
        spike | {"t": base["t"] + 0.01},
        alert | common | {"type": "alert.firing", "t": base["t"] + 0.02},
        alert | common | {"type": "alert.resolved", "t": base["t"] + 0.03},
    ]
    return evs[: at + 1] + inserted + evs[at + 1 :]


def test_an_alert_before_the_fault_is_marked_so_and_left_out_of_the_peaks(tmp_path):
    from pagerdrill.reports.html import render_html
    from pagerdrill.reports.timeline import clock, signal_summary

    tl = load(_flush_journal_edited(tmp_path, _with_a_warmup_alert))
    assert tl.summary.alerts_before_fault == 1
    assert tl.summary.alert_fired  # the fault's own alert, after it
    before = "alert cache-misses firing before the fault (not a page)"
    slack = "\n".join(slack_messages(tl))
    md = markdown(tl)
    html = render_html(tl)
    doc = to_json(tl)
    jsonschema.validate(doc, SCHEMA)
    assert before in slack and before in md and before in html
    assert any(e["text"].startswith(before) for e in doc["timeline"])
    assert "resolved (before the fault)" in md
    assert "1 alert fired before the fault" in md and "1 alert fired before the fault" in html
    # the fault's own alert keeps its plain line
    assert any(e.text.startswith("ALERT cache-misses firing") for e in tl.entries)
    misses = next(s for s in tl.series if s.label == "misses.rate")
    assert max(v for _, v in misses.points) == 4.999  # the spike is charted ...
    info = signal_summary(misses, tl.page_t, tl.fault_t)
    assert info["peak"] != "4.999"  # ... but it is no peak of the incident
    spike_t = next(t for t, v in misses.points if v == 4.999)
    assert tl.page_t is not None and tl.fault_t is not None
    assert info["crossed"] != clock(spike_t - tl.page_t)  # first crossed after the fault
    figure = html[html.index("<h3>misses.rate</h3>") :].split("</figure>")[0]
    assert "peak 4.999" not in figure and "peak " in figure


def test_a_symptom_that_faded_before_any_mitigation_is_said_so_in_every_export(tmp_path):
    from pagerdrill.reports.html import render_html

    def no_mitigation(evs: list[dict]) -> list[dict]:
        return [e for e in evs if not e["type"].startswith("mitigation")]

    tl = load(_flush_journal_edited(tmp_path, no_mitigation))
    resolved = next(e for e in tl.entries if e.kind == "alert.resolved")
    faded_s = tl.summary.symptom_faded_s
    assert faded_s == pytest.approx(resolved.page_s, abs=0.5)
    line = f"the alert resolved by itself at T+00:{int(faded_s):02d}"
    for text in ("\n".join(slack_messages(tl)), markdown(tl), render_html(tl)):
        assert line + ", before any mitigation" in text
    assert to_json(tl)["summary"]["symptom_faded_s"] == faded_s

    # with the replay before the alert resolved, nothing faded by itself
    def replay_first(evs: list[dict]) -> list[dict]:
        evs = no_mitigation(evs)
        at = next(i for i, e in enumerate(evs) if e["type"] == "alert.resolved")
        mitigation = {k: evs[at][k] for k in ("v", "ts", "t", "drill")} | {
            "type": "mitigation", "mitigation": "replay-lost-jobs", "action": "replay-lost-jobs",
            "title": "Replay the lost settlement jobs", "detail": {}, "drill_s": 1.0,
        }  # fmt: skip
        return [*evs[:at], mitigation, *evs[at:]]

    tl = load(_flush_journal_edited(tmp_path, replay_first))
    assert tl.summary.symptom_faded_s is None
    assert "by itself" not in markdown(tl) and "by itself" not in render_html(tl)
