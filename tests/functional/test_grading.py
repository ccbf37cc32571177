"""Grading a trainee cannot game: free text under a negation never counts, the matcher
leaves what it is not sure of to the lead, the lead's grade (`drills review
--hypothesis`) shows in every export, the choices are shuffled per drill, the shipped
distractors look like the right answer, and a "say why" checklist step takes its
reason. The engine runs on a stand-in target here; the real stack is in test_tui.py
and the CLI drill at the end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from drilling import FAST, cli, scenario
from helpers import REPO
from pagerdrill.drill.checklist import load_checklist
from pagerdrill.drill.engine import Action, DrillEngine
from pagerdrill.drill.runner import ScriptAction, autopilot, check_script
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.journal import read_journal
from pagerdrill.journal.events import HypothesisGraded
from pagerdrill.journal.summary import summarize
from pagerdrill.reports.drills import list_drills, review
from pagerdrill.reports.html import render_html
from pagerdrill.reports.text import markdown, slack_text, to_json
from pagerdrill.reports.timeline import load_redacted
from pagerdrill.scenarios.model import (
    drill_order,
    grade_hypothesis,
    load_scenario,
    parse_scenario,
    shown_choices,
    shown_decision_choices,
    shown_mitigations,
)
from standin import advance, stand_in_drill, stand_in_scenario

SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
DECIDING = [p for p in SHIPPED if load_scenario(p).model.decision is not None]
MITIGATING = [p for p in SHIPPED if len(load_scenario(p).model.mitigations) > 1]
SCHEMA = json.loads(
    (REPO / "src" / "pagerdrill" / "reports" / "drill-export.schema.json").read_text()
)
EXAMPLE = "not a cache flush, redis keys are fine; the database is slow"


def model(name: str = "redis-cache-flush"):
    return load_scenario(REPO / "scenarios" / f"{name}.yaml").model


# ------------------------------------------------------------------ the matcher


def test_the_issues_negated_hypothesis_does_not_grade_right():
    graded = grade_hypothesis(model(), None, EXAMPLE)
    assert graded.grade == "ungraded" and graded.correct is None
    assert set(graded.negated) >= {"cache", "redis", "keys", "flush"}
    assert graded.matched == ()
    assert "negation" in (graded.note or "")


@pytest.mark.parametrize(
    "text",
    [
        "the cache was not flushed",
        "redis isn't flushed",
        "redis isn\u2019t flushed",  # a typographic apostrophe
        "no sign of a cache flush",
        "a redis flush is ruled out",
        "ruled out a cache flush",
        "the database rather than a cache flush",
        "a slow database instead of a flushed cache",
        "nothing to do with a redis flush",
        "the redis keys are fine, nothing was flushed",
        "the cache is ok; flushdb was never run",
        "the cache is healthy and the keys were not wiped",
        "neither redis nor a flush",
    ],
)
def test_a_negated_keyword_does_not_grade_a_hypothesis_right(text):
    graded = grade_hypothesis(model(), None, text)
    assert graded.grade == "ungraded", graded
    assert graded.negated, graded  # the keywords it named are under the negation


def test_free_text_grades_to_one_of_three_outcomes():
    m = model()
    right = grade_hypothesis(m, None, "FLUSHDB wiped the redis cache")
    wrong = grade_hypothesis(m, None, "the database behind the markets is slow")
    unsure = grade_hypothesis(m, None, "redis is slow")  # one keyword group of two
    assert (right.grade, right.correct) == ("right", True)
    assert (wrong.grade, wrong.correct) == ("wrong", False)
    assert (unsure.grade, unsure.correct) == ("ungraded", None)
    assert "'flush'" in (unsure.note or "")  # which group it did not name


def test_a_complete_match_with_a_negation_elsewhere_is_left_to_the_lead():
    graded = grade_hypothesis(model(), None, "the redis cache was flushed, not the database")
    assert graded.grade == "ungraded"
    assert graded.negated == () and set(graded.matched) >= {"redis", "cache", "flushed"}
    assert graded.cues == ("not",)


def test_rather_than_negates_only_what_follows_it():
    graded = grade_hypothesis(model(), None, "the cache was flushed rather than evicted")
    assert set(graded.matched) == {"cache", "flushed"} and graded.negated == ("evicted",)
    assert graded.grade == "ungraded"


def test_a_picked_choice_is_graded_exactly_whatever_the_text():
    m = model()
    assert grade_hypothesis(m, "cache-flushed", EXAMPLE).grade == "right"
    assert grade_hypothesis(m, "db-slow", "FLUSHDB wiped the redis cache").grade == "wrong"


# ------------------------------------------------------------------ the shipped choices


def test_the_choices_are_shuffled_the_same_way_for_the_same_drill_id():
    m = model()
    ids = [f"20261122T1200{i:02d}Z-redis-cache-flush-ana-{i:04x}" for i in range(40)]
    orders = [tuple(c.id for c in shown_choices(m, i)) for i in ids]
    assert orders == [tuple(c.id for c in shown_choices(m, i)) for i in ids]
    assert all(sorted(o) == sorted(c.id for c in m.hypotheses.choices) for o in orders)
    assert len(set(orders)) > 5


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_right_choice_is_not_always_first_across_drill_ids(path):
    m = load_scenario(path).model
    positions = set()
    for i in range(30):
        shown = shown_choices(m, f"20261122T1200{i:02d}Z-{path.stem}-ana-{i:04x}")
        positions.add(next(n for n, c in enumerate(shown) if c.correct))
    assert len(positions) > 1 and positions != {0}, positions


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_no_right_answer_is_notably_longer_than_its_distractors(path):
    choices = load_scenario(path).model.hypotheses.choices
    right = [c.text for c in choices if c.correct]
    wrong = [c.text for c in choices if not c.correct]
    assert len(right) == 1 and len(wrong) >= 3
    # the same shape: one sentence each, within a tenth of each other's length
    assert len(right[0]) <= 1.1 * min(len(w) for w in wrong), (right, wrong)
    assert len(right[0].split()) <= 1.25 * min(len(w.split()) for w in wrong), (right, wrong)
    for text in [*right, *wrong]:
        assert text[0].isupper() and not text.endswith("."), text


def drill_ids(stem: str, n: int = 30) -> list[str]:
    return [f"20261122T1200{i:02d}Z-{stem}-ana-{i:04x}" for i in range(n)]


@pytest.mark.parametrize("path", DECIDING, ids=lambda p: p.stem)
def test_the_right_decision_is_not_always_first_across_drill_ids(path):
    m = load_scenario(path).model
    positions = set()
    for drill_id in drill_ids(path.stem):
        shown = shown_decision_choices(m, drill_id)
        assert sorted(c.id for c in shown) == sorted(c.id for c in m.decision.choices)
        positions.add(next(n for n, c in enumerate(shown) if c.correct))
    assert len(positions) > 1 and positions != {0}, positions


@pytest.mark.parametrize("path", DECIDING, ids=lambda p: p.stem)
def test_no_right_decision_is_notably_longer_than_its_alternatives(path):
    choices = load_scenario(path).model.decision.choices
    right = [c.text for c in choices if c.correct]
    wrong = [c.text for c in choices if not c.correct]
    assert len(right) == 1 and len(wrong) >= 2
    # the same check as the hypotheses': each a call of its own, none explained alone
    assert len(right[0]) <= 1.1 * min(len(w) for w in wrong), (right, wrong)
    assert len(right[0].split()) <= 1.25 * min(len(w.split()) for w in wrong), (right, wrong)
    for text in [*right, *wrong]:
        assert text[0].isupper() and not text.endswith("."), text


@pytest.mark.parametrize("path", MITIGATING, ids=lambda p: p.stem)
def test_the_right_mitigation_is_not_always_first_across_drill_ids(path):
    m = load_scenario(path).model
    right = set(m.answer.mitigations)
    positions = set()
    for drill_id in drill_ids(path.stem):
        shown = shown_mitigations(m, drill_id)
        assert sorted(x.id for x in shown) == sorted(x.id for x in m.mitigations)
        positions.add(next(n for n, x in enumerate(shown) if x.id in right))
    assert len(positions) > 1 and positions != {0}, positions


def test_every_picker_shuffles_by_one_rule_the_same_way_for_the_same_drill_id():
    m = model()
    ids = drill_ids("redis-cache-flush", 40)
    for shown, items, picker in (
        (shown_choices, m.hypotheses.choices, "hypotheses"),
        (shown_decision_choices, m.decision.choices, "decision"),
        (shown_mitigations, m.mitigations, "mitigations"),
    ):
        orders = [[x.id for x in shown(m, i)] for i in ids]
        assert orders == [[x.id for x in shown(m, i)] for i in ids]
        assert orders == [[x.id for x in drill_order(items, picker, i)] for i in ids]
        assert len({tuple(o) for o in orders}) > 1, picker


def test_the_feedback_setting_is_checked_strictly_and_hidden_by_default(tmp_path):
    path = REPO / "scenarios" / "redis-cache-flush.yaml"
    text = path.read_text().replace("  feedback: hidden", "  feedback: loud")
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, path)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "feedback: loud" in t)
    assert f"{path}:{line}: hypotheses.feedback" in str(caught.value)
    assert "'live' or 'hidden'" in str(caught.value)
    unset = path.read_text().replace("  feedback: hidden", "")
    assert parse_scenario(unset, path).model.hypotheses.feedback == "hidden"


# ------------------------------------------------------------------ a drill, stand-in target

SCENARIO = stand_in_scenario(
    max_duration_s=600,
    choices="""  choices:
    - {id: down, text: The api process was stopped, correct: true}
    - {id: slow, text: The api process is too slow}
    - {id: oom, text: The api process ran out of memory}
  keywords:
    - [api]
    - [stopped, down]
""",
)


def paged_drill(tmp_path: Path) -> DrillEngine:
    engine, _, clock, _ = stand_in_drill(tmp_path, SCENARIO, REPO, engineer="Ana", mode="test")
    engine.start()
    advance(engine, clock, 3)
    assert engine.page_mono is not None
    engine.act(Action("ack"))
    return engine


def test_the_drill_journals_the_order_it_shows_and_where_the_pick_was(tmp_path):
    engine = paged_drill(tmp_path)
    shown = [c.id for c in engine.hypothesis_choices]
    engine.act(Action("hypothesis", choice="slow"))
    engine.close()
    events = read_journal(engine.journal_path).events
    assert events[0]["hypotheses"] == {"shown": shown, "feedback": "hidden"}
    assert shown == [c.id for c in shown_choices(engine.model, engine.drill_id)]
    hyp = next(e for e in events if e["type"] == "hypothesis")
    assert hyp["position"] == shown.index("slow") + 1
    assert (hyp["grade"], hyp["correct"]) == ("wrong", False)


DECIDING_SCENARIO = SCENARIO.replace(
    "answer: {hypothesis: down}",
    """decision:
  prompt: Start it or wait?
  choices:
    - {id: start, text: Start the api now, correct: true}
    - {id: wait, text: Wait for it to return}
    - {id: page, text: Page the api's owners}
mitigations:
  - {id: start-api, title: Start api, action: start, role: api}
  - {id: restart-api, title: Restart api, action: restart, role: api}
  - {id: set-env, title: Restart api with debug on, action: set-env, role: api, env: {DEBUG: "1"}}
answer: {hypothesis: down, decision: start, mitigations: [start-api]}""",
)


def deciding_drill(tmp_path: Path, drill_id: str) -> DrillEngine:
    engine, _, _, ws = stand_in_drill(
        tmp_path, DECIDING_SCENARIO, REPO, engineer="Ana", mode="test"
    )
    engine.drill_id = drill_id
    engine.journal_path = ws.root / "drills" / f"{drill_id}.jsonl"
    engine.start()
    advance(engine, engine.clock, 3)  # type: ignore[arg-type]
    assert engine.page_mono is not None
    engine.act(Action("ack"))
    return engine


def test_the_drill_journals_the_decision_and_mitigation_orders_it_shows(tmp_path):
    drill_id = "20261122T120000Z-stand-in-ana-0001"
    engine = deciding_drill(tmp_path / "one", drill_id)
    decision = [c.id for c in engine.decision_choices]
    mitigations = [x.id for x in engine.mitigation_choices]
    engine.act(Action("decision", choice="wait"))
    engine.act(Action("mitigate", mitigation="start-api"))
    engine.close()
    events = read_journal(engine.journal_path).events
    assert events[0]["decision"] == {"shown": decision}
    assert events[0]["mitigations"] == {"shown": mitigations}
    assert decision == [c.id for c in shown_decision_choices(engine.model, drill_id)]
    assert mitigations == [x.id for x in shown_mitigations(engine.model, drill_id)]
    made = next(e for e in events if e["type"] == "decision")
    assert made["position"] == decision.index("wait") + 1 and made["correct"] is False
    done = next(e for e in events if e["type"] == "mitigation")
    assert done["position"] == mitigations.index("start-api") + 1
    # the same drill id shows the same orders, in another drill too
    again = deciding_drill(tmp_path / "two", drill_id)
    assert [c.id for c in again.decision_choices] == decision
    assert [x.id for x in again.mitigation_choices] == mitigations
    again.close()


def test_a_scenario_with_no_decision_journals_only_the_mitigation_order(tmp_path):
    engine = paged_drill(tmp_path)
    engine.close()
    started = read_journal(engine.journal_path).events[0]
    assert "decision" not in started and started["mitigations"] == {"shown": []}


@pytest.mark.parametrize("n", range(6))
def test_the_autopilot_picks_the_decision_and_mitigation_by_id_wherever_they_are_shown(tmp_path, n):
    engine = deciding_drill(tmp_path, f"20261122T120000Z-stand-in-ana-{n:04x}")
    for step in autopilot(engine.scenario, engine.checklist):
        if step.do == "decision":
            engine.act(Action("decision", choice=step.choice))
        elif step.do == "mitigate":
            engine.act(Action("mitigate", mitigation=step.mitigation))
    advance(engine, engine.clock, 3)  # type: ignore[arg-type]
    assert engine.recovered
    engine.close()
    summary = summarize(read_journal(engine.journal_path))
    assert summary["decision"] == {"choice": "start", "correct": True}


def test_the_page_the_lead_step_asks_for_the_call_and_the_reason(tmp_path):
    engine = paged_drill(tmp_path)
    with pytest.raises(BadInputError, match="If this were P0/P1 I would page now"):
        engine.act(Action("step", step="page-lead"))
    with pytest.raises(BadInputError, match="Say why"):
        engine.act(Action("step", step="page-lead", choice="no-page", reason="  "))
    assert "page-lead" not in engine.steps_done
    engine.act(Action("step", step="page-lead", choice="no-page", reason="P2, contained"))
    engine.close()
    read = read_journal(engine.journal_path)
    done = next(e for e in read.events if e["type"] == "step.done" and e["step"] == "page-lead")
    assert done["prompt"] == "If this were P0/P1 I would page now."
    assert (done["choice"], done["reason"]) == ("no-page", "P2, contained")
    step = next(s for s in summarize(read)["steps"] if s["id"] == "page-lead")
    assert step["reason"] == "P2, contained" and step["choice"].startswith("Don't page")
    tl = load_redacted(engine.journal_path)
    for text in (markdown(tl), slack_text(tl), render_html(tl)):
        assert "Don't page: I handle it and keep the lead posted (why: P2, contained)" in (
            text.replace("&#x27;", "'")
        )


def test_a_script_that_ticks_the_page_lead_step_without_a_reason_is_refused(tmp_path):
    sc = load_scenario(REPO / "scenarios" / "bullmq-backpressure.yaml")
    checklist, _ = load_checklist(REPO)
    bare = [ScriptAction(do="step", step="page-lead")]
    with pytest.raises(ConfigError) as caught:
        check_script(bare, sc, checklist, tmp_path / "s.yaml")
    assert "asks for a choice: page or no-page" in str(caught.value)
    assert "asks why: give a `reason`" in str(caught.value)
    step = next(a for a in autopilot(sc, checklist) if a.step == "page-lead")
    assert step.choice == "page" and step.reason


def _exports(journal: Path) -> dict[str, str]:
    tl = load_redacted(journal)
    summary = summarize(read_journal(journal))
    document = to_json(tl)
    jsonschema.validate(document, SCHEMA)
    return {
        "summary": json.dumps(summary["hypothesis"]),
        "slack": slack_text(tl),
        "markdown": markdown(tl),
        "json": json.dumps(document),
        "html": render_html(tl),
    }


def test_the_leads_grade_of_an_ungraded_hypothesis_shows_in_every_export(tmp_path):
    engine = paged_drill(tmp_path)
    engine.act(Action("hypothesis", text="not the api, it is fine; something stopped"))
    engine.close()
    journal = engine.journal_path
    state = engine.workspace.state_dir
    before = journal.read_bytes()
    hyp = next(e for e in read_journal(journal).events if e["type"] == "hypothesis")
    assert (hyp["grade"], hyp["correct"]) == ("ungraded", None) and hyp["grade_note"]
    for name, text in _exports(journal).items():
        assert "for the lead to grade" in text or '"ungraded"' in text, name
    [row] = list_drills(journal.parent)
    assert row.hypothesis_grade == "ungraded" and not row.hypothesis_correct

    [graded] = review(journal, state, by="Lou", hypothesis="right", comment="it was stopped")
    assert isinstance(graded, HypothesisGraded) and graded.of == hyp["seq"]
    assert journal.read_bytes().startswith(before)  # appended, never rewritten
    for name, text in _exports(journal).items():
        assert "right, graded by Lou" in text or '"graded_by": "Lou"' in text, name
        assert "for the lead to grade" not in text, name
    summary = summarize(read_journal(journal))["hypothesis"]
    assert summary["correct"] and summary["first_grade"] == "right" and summary["to_grade"] == 0
    [row] = list_drills(journal.parent)
    assert row.hypothesis_grade == "right" and row.hypothesis_correct

    review(journal, state, by="Lou", hypothesis="wrong", verdict="fail")  # the latest counts
    assert summarize(read_journal(journal))["hypothesis"]["grade"] == "wrong"
    assert "wrong, graded by Lou" in markdown(load_redacted(journal))


def test_a_review_says_which_hypothesis_when_more_than_one_waits(tmp_path):
    engine = paged_drill(tmp_path)
    engine.act(Action("hypothesis", text="the api is slow"))
    engine.act(Action("hypothesis", text="something was stopped"))
    engine.close()
    state = engine.workspace.state_dir
    with pytest.raises(BadInputError, match="say which with --attempt N"):
        review(engine.journal_path, state, by="Lou", hypothesis="right")
    with pytest.raises(BadInputError, match="expected right or wrong"):
        review(engine.journal_path, state, by="Lou", hypothesis="maybe")
    with pytest.raises(BadInputError, match="--attempt 3"):
        review(engine.journal_path, state, by="Lou", hypothesis="right", attempt=3)
    review(engine.journal_path, state, by="Lou", hypothesis="right", attempt=2)
    h = summarize(read_journal(engine.journal_path))["hypothesis"]
    assert [x["grade"] for x in h["stated"]] == ["ungraded", "right"]
    assert h["grade"] == "right" and h["first_grade"] == "ungraded" and h["to_grade"] == 1
    assert "1 more for the lead to grade" not in markdown(load_redacted(engine.journal_path))
    review(engine.journal_path, state, by="Lou", hypothesis="wrong")  # the only one left
    assert summarize(read_journal(engine.journal_path))["hypothesis"]["to_grade"] == 0


def test_an_old_journals_correct_flag_still_reads_as_right_or_wrong():
    for path in sorted((REPO / "tests" / "fixtures" / "journals").glob("*.jsonl")):
        h = summarize(read_journal(path))["hypothesis"]
        assert h["first_grade"] == "right" and h["grade"] == "right", path
        assert "(right, at" in markdown(load_redacted(path)), path


def test_an_old_journal_without_the_orders_shown_still_reads_and_exports():
    for path in sorted((REPO / "tests" / "fixtures" / "journals").glob("*.jsonl")):
        read = read_journal(path)
        started = read.events[0]
        assert "mitigations" not in started and "decision" not in started, path
        assert read.complete, (path, read.problems)
        tl = load_redacted(path)
        for text in (markdown(tl), slack_text(tl), render_html(tl), json.dumps(to_json(tl))):
            assert read.drill_id in text, path


# ------------------------------------------------------------------ the CLI, a real stack


@pytest.mark.stack
def test_a_headless_drill_records_a_negated_hypothesis_for_the_lead_to_grade(stack, tmp_path):
    """redis-cache-flush, as the issue tried it: the console says only that the
    hypothesis was recorded, the page-the-lead step takes its reason from the script,
    and the lead's `drills review --hypothesis` grade reaches the list and the exports."""
    root = stack.workspace.root
    shutil.copy(REPO / "checklist.yaml", root / "checklist.yaml")
    script = tmp_path / "drill.yaml"
    script.write_text(
        "version: 1\nactions:\n"
        "  - {do: ack}\n"
        "  - {do: step, step: page-lead, choice: no-page, reason: P2 and contained}\n"
        f"  - {{do: hypothesis, text: '{EXAMPLE}'}}\n"
        "  - {after: 0.5, do: abort, text: enough for the grading}\n"
    )
    done = cli("run", scenario("redis-cache-flush"), "--headless", "--engineer", "ana",
               "--script", str(script), *FAST, "-w", str(root))  # fmt: skip
    assert f"hypothesis recorded: {EXAMPLE}" in done.stderr, done.stderr
    assert "right" not in done.stderr.split("hypothesis recorded")[1].splitlines()[0]
    assert "(why: P2 and contained)" in done.stderr
    [journal] = (root / "drills").glob("*.jsonl")
    hyp = next(e for e in read_journal(journal).events if e["type"] == "hypothesis")
    assert (hyp["grade"], hyp["correct"]) == ("ungraded", None)
    listed = cli("drills", "list", "-w", str(root))
    assert "to grade" in listed.stdout, listed.stdout
    shown = cli("drills", "show", journal.stem, "-w", str(root))
    assert "for the lead to grade" in shown.stdout, shown.stdout

    reviewed = cli("drills", "review", journal.stem[-4:], "--by", "Lou", "--hypothesis",
                   "wrong", "-w", str(root))  # fmt: skip
    assert reviewed.returncode == 0, reviewed.stderr
    assert "hypothesis 1 graded wrong by Lou" in reviewed.stdout
    listed = cli("drills", "list", "--json", "-w", str(root))
    assert json.loads(listed.stdout)[0]["hypothesis_grade"] == "wrong"
    shown = cli("drills", "show", journal.stem, "-w", str(root))
    assert "wrong, graded by Lou" in shown.stdout, shown.stdout
    for fmt in ("slack", "markdown", "html"):
        exported = cli("drills", "export", journal.stem, "--format", fmt, "-w", str(root))
        assert exported.returncode == 0, exported.stderr
        assert "wrong, graded by Lou" in exported.stdout, fmt
        assert "for the lead to grade" not in exported.stdout, fmt
