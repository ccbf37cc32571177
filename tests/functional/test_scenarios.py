"""Scenarios: the shipped ones load and grade their own answer key; parameters; free-text
grading; every bad file is refused with its file, line and reason (library and CLI).
No stack is started: `run --dry-run` and a refused `run` touch nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, pagerdrill_cli, write_workspace
from pagerdrill.drill.checklist import load_checklist
from pagerdrill.drill.runner import autopilot, check_script
from pagerdrill.errors import BadInputError, ConfigError
from pagerdrill.scenarios.model import (
    coerce_param,
    grade_hypothesis,
    load_scenario,
    parse_param,
    parse_scenario,
    scenario_files,
)

SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad_scenarios"
OK = BAD / "ok.yaml"
MARK = re.compile(r"#\s*<- here\s*$")


def marked_lines(path: Path) -> list[int]:
    """The 1-based lines a fixture marks with `# <- here`: where its mistakes are."""
    text = path.read_bytes().decode("utf-8", errors="replace")  # not-utf8.yaml too
    return [n for n, line in enumerate(text.splitlines(), 1) if MARK.search(line)]


def ok_text(old: str = "", new: str = "") -> str:
    text = OK.read_text()
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return pagerdrill_cli(*args, cwd=cwd, timeout=60)


# ------------------------------------------------------------------ shipped scenarios


def test_the_repo_ships_the_five_seed_scenarios():
    assert {p.stem for p in SHIPPED} >= {
        "api-500-injection",
        "bullmq-backpressure",
        "redis-cache-flush",
        "signin-failure-spike",
        "ws-handshake-storm",
    }
    assert scenario_files(REPO) == SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_scenario_loads_and_its_answer_key_is_graded_correct(path):
    sc = load_scenario(path)
    assert sc.name == path.stem
    answer = sc.model.answer
    assert grade_hypothesis(sc.model, answer.hypothesis, None).grade == "right"
    wrong = [c.id for c in sc.model.hypotheses.choices if not c.correct]
    assert wrong and all(grade_hypothesis(sc.model, c, None).grade == "wrong" for c in wrong)
    # every expression the engine will look up was compiled at load time
    for source in [a.expr for a in sc.model.alerts] + list(sc.model.recovery.all):
        assert sc.expr(source).source == source


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_typed_as_free_text_the_right_choice_grades_right_and_the_wrong_ones_never_do(path):
    m = load_scenario(path).model
    for choice in m.hypotheses.choices:
        grade = grade_hypothesis(m, None, choice.text).grade
        assert (grade == "right") is choice.correct, (choice.text, grade)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_scenario_autopilot_script_passes_its_own_checks(path):
    sc = load_scenario(path)
    checklist, _ = load_checklist(REPO)
    actions = autopilot(sc, checklist, pace_s=0.1)
    check_script(actions, sc, checklist, path)  # raises on a name that does not exist
    assert actions[0].do == "ack"
    assert actions[-2].wait == "recovered" and actions[-1].do == "resolve"
    hyp = [a for a in actions if a.do == "hypothesis"]
    assert [a.choice for a in hyp] == [sc.model.answer.hypothesis]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_scenarios_roles_bind_to_reference_services_and_an_unbound_one_is_reported(
    path,
):
    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.refstack.spec import SERVICE_NAMES
    from pagerdrill.workspace import load_workspace

    bindings = role_bindings(load_workspace(REPO))
    sc = load_scenario(path, roles=bindings)
    for role in sc.model.roles:
        assert role in bindings, f"{path.name}: role {role} has no binding"
        assert bindings[role].service in SERVICE_NAMES, (role, bindings[role].service)
    # the role its first fault acts on, taken out of the bindings, is named as unbound
    role = sc.model.faults[0].role
    assert role is not None, f"{path.name}: the first fault names no role"
    lacking = {k: v for k, v in bindings.items() if k != role}
    with pytest.raises(BadInputError) as err:
        load_scenario(path, roles=lacking)
    assert f"role '{role}' is not bound in pagerdrill.yaml" in str(err.value)
    assert path.name in str(err.value)


def test_the_ok_fixture_that_every_bad_one_starts_from_loads():
    sc = load_scenario(OK)
    assert sc.name == "ok"
    assert [f.kind for f in sc.model.faults] == ["stop-service", "redis-command", "http-fault"]
    assert sc.model.alerts[0].summary == "More than 5 things are wrong"
    assert load_scenario(OK, roles={"api": object(), "cache": object()}).name == "ok"


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("n=5", 60, 5),
        ("ratio=0.5", 1.0, 0.5),
        ("ratio=1", 1.0, 1),
        ("flag=true", False, True),
        ("flag=false", True, False),
        ("route=/api/x", "/api/promotions", "/api/x"),
        ("word=abc", "x", "abc"),
        ("empty=", "x", ""),
        ("password=yes", "x", "yes"),
        ("password=12345", "x", "12345"),
        ("eq=a=b", "x", "a=b"),
        (" spaced = 7", 1, 7),
    ],
)
def test_a_param_value_takes_the_type_of_the_parameters_default(text, default, expected):
    key, raw = parse_param(text)
    assert raw == text.partition("=")[2]  # text until the scenario says what it is
    value = coerce_param(key, raw, default, Path("s.yaml"))
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["noequals", "=5", ""])
def test_parse_param_without_key_equals_value_is_bad_input(text):
    with pytest.raises(BadInputError, match="expected KEY=VALUE"):
        parse_param(text)


def test_a_whole_value_param_reference_keeps_the_type_and_one_in_a_string_interpolates():
    sc = load_scenario(REPO / "scenarios" / "bullmq-backpressure.yaml")
    assert sc.params["outage_s"] == 60
    assert sc.model.faults[0].duration_s == 60.0
    assert sc.model.quiet.min_s == 20.0 and sc.model.quiet.max_s == 90.0
    assert sc.model.alerts[0].expr == "waiting > 50"
    assert sc.model.alerts[0].summary == "bet_settled_queue has more than 50 jobs waiting"


def test_a_param_override_replaces_the_default_everywhere_it_is_used():
    path = REPO / "scenarios" / "bullmq-backpressure.yaml"
    sc = parse_scenario(
        path.read_text(), path, overrides={"outage_s": 5, "depth_alert": 7, "quiet_min_s": 1.5}
    )
    assert sc.params == {
        "outage_s": 5,
        "depth_alert": 7,
        "quiet_min_s": 1.5,
        "quiet_max_s": 90,
        "recovery_s": 5,
    }
    assert sc.model.faults[0].duration_s == 5.0
    assert sc.model.quiet.min_s == 1.5
    assert sc.model.alerts[0].expr == "waiting > 7"
    assert sc.expr("waiting > 7").holds({"waiting": {"value": 8}})
    assert "more than 7 jobs" in sc.model.alerts[0].summary


def test_a_string_param_override_lands_whole_in_a_fault_parameter():
    path = REPO / "scenarios" / "api-500-injection.yaml"
    sc = parse_scenario(path.read_text(), path, overrides={"route": "/api/markets/{market_id}"})
    assert sc.model.faults[0].params["path"] == "^/api/markets/{market_id}"
    assert "/api/markets/{market_id} answer 500" in sc.model.root_cause


def test_an_override_of_an_unknown_parameter_is_bad_input_naming_it_and_the_known_ones():
    path = REPO / "scenarios" / "bullmq-backpressure.yaml"
    with pytest.raises(BadInputError) as caught:
        parse_scenario(path.read_text(), path, overrides={"outage": 5})
    message = str(caught.value)
    assert "--param outage: no such parameter" in message
    assert "depth_alert, outage_s, quiet_max_s, quiet_min_s" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"outage_s": "soon"}, r"--param outage_s=soon: expected a number like the default \(60\)"),
        ({"outage_s": True}, r"--param outage_s=True: expected a number like the default \(60\)"),
        ({"depth_alert": "many"}, r"--param depth_alert=many: expected a number"),
    ],
)
def test_an_override_of_the_wrong_type_is_bad_input_naming_the_parameter(override, expected):
    path = REPO / "scenarios" / "bullmq-backpressure.yaml"
    with pytest.raises(BadInputError) as caught:
        parse_scenario(path.read_text(), path, overrides=override)
    assert re.search(expected, str(caught.value))


def test_a_number_param_accepts_an_int_or_a_float_override():
    path = REPO / "scenarios" / "api-500-injection.yaml"
    sc = parse_scenario(path.read_text(), path, overrides={"ratio": 1, "error_alert": 2})
    assert sc.model.faults[0].params["ratio"] == 1
    assert sc.model.alerts[0].expr == "errors > 2"


def test_a_boolean_override_of_a_string_parameter_is_refused():
    path = REPO / "scenarios" / "signin-failure-spike.yaml"
    with pytest.raises(BadInputError, match="--param bad_password=True: expected text"):
        parse_scenario(path.read_text(), path, overrides={"bad_password": True})


def test_a_string_parameter_can_be_set_to_a_word_yaml_reads_as_a_boolean():
    path = REPO / "scenarios" / "signin-failure-spike.yaml"
    overrides = dict([parse_param("bad_password=yes")])
    sc = parse_scenario(path.read_text(), path, overrides=overrides)
    assert sc.params["bad_password"] == "yes"


def test_an_override_that_breaks_a_constraint_is_reported_at_the_line_that_uses_it():
    path = REPO / "scenarios" / "bullmq-backpressure.yaml"
    line = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("quiet:")
    )
    with pytest.raises(ConfigError) as caught:
        parse_scenario(path.read_text(), path, overrides={"quiet_min_s": 100})
    assert f"{path}:{line}: quiet: Value error, max_s must not be below min_s" in str(caught.value)


# ------------------------------------------------------------------ free-text hypotheses


@pytest.mark.parametrize(
    ("text", "grade"),
    [
        ("The API is DOWN", "right"),
        ("the consumer is not running", "right"),  # a keyword that holds a "not"
        ("Worker crashed!", "right"),
        ("api-down", "right"),
        ("api is fine", "ungraded"),  # a term of the first group only, and negated
        ("it is down", "ungraded"),  # a term of the second group only
        ("rapid downturn", "wrong"),  # api / down only inside other words
        ("apis downs", "wrong"),
        ("", "wrong"),
        (None, "wrong"),
    ],
)
def test_free_text_is_right_with_a_whole_word_of_every_keyword_group(text, grade):
    m = load_scenario(REPO / "scenarios" / "bullmq-backpressure.yaml").model
    assert grade_hypothesis(m, None, text).grade == grade


def test_a_keyword_with_dots_matches_only_the_whole_address():
    m = load_scenario(REPO / "scenarios" / "ws-handshake-storm.yaml").model
    assert grade_hypothesis(m, None, "a storm from 203.0.113.7").grade == "right"
    # "storm" alone names one group of two: the lead grades it
    assert grade_hypothesis(m, None, "a storm from 203.0.113.70").grade == "ungraded"
    assert grade_hypothesis(m, None, "a storm from 203x0y113z7").grade == "ungraded"
    assert grade_hypothesis(m, None, "traffic from 203.0.113.70").grade == "wrong"


def test_a_chosen_hypothesis_is_graded_by_its_mark_not_by_any_text():
    m = load_scenario(REPO / "scenarios" / "bullmq-backpressure.yaml").model
    assert grade_hypothesis(m, "consumer-down", "nonsense").grade == "right"
    assert grade_hypothesis(m, "redis-slow", "the api consumer is down").grade == "wrong"
    assert grade_hypothesis(m, "no-such-choice", None).grade == "wrong"


def test_free_text_is_left_for_the_lead_when_the_scenario_has_no_keywords():
    m = parse_scenario(ok_text("  keywords:\n    - [api, service]\n    - [down, stopped]\n"), OK)
    assert m.model.hypotheses.keywords == []
    graded = grade_hypothesis(m.model, None, "the api service is down")
    assert graded.grade == "ungraded" and graded.correct is None


def test_a_keyword_that_starts_with_a_slash_matches_as_a_whole_word():
    text = ok_text("    - [api, service]\n", "    - [/api/promotions]\n")
    m = parse_scenario(text, OK).model
    assert grade_hypothesis(m, None, "the /api/promotions route is down").grade == "right"


# ------------------------------------------------------------------ bad scenario files

CASES = [
    ("unknown-fault-kind.yaml", "faults[0].kind: unknown fault kind 'stop-servce' (installed: "),
    ("role-not-in-roles.yaml", "probes[2].role: role 'queue' is not in this scenario's roles"),
    (
        "repair-role-not-in-roles.yaml",
        "faults[1].repair.role: role 'producer' is not in this scenario's roles",
    ),
    ("repair-with-duration.yaml", "faults[1]: Value error, a fault with `repair` cannot have"),
    ("bad-expr-syntax.yaml", "alerts[0].expr: bad expression 'api.up ==': not a valid expr"),
    (
        "unknown-probe-in-expr.yaml",
        "recovery.all[1]: bad expression 'queue.waiting < 10': unknown probe 'queue' "
        "(probes: api, errors)",
    ),
    ("unknown-key.yaml", "sympton: unknown key (did you mean 'symptom'?)"),
    ("fault-param-redis.yaml", "faults[1].command: Value error, command must be one of FLUSHDB"),
    ("fault-param-http.yaml", "faults[2].ratio: Input should be less than or equal to 1"),
    ("duplicate-fault-id.yaml", "faults[1].id: duplicate id 'stop-api'"),
    ("answer-not-correct.yaml", "answer.hypothesis: 'cache-cold' is not marked correct"),
    ("unknown-param.yaml", "alerts[0].summary: unknown parameter ${dpeth} (depth)"),
    ("invalid-yaml.yaml", "not valid YAML: mapping values are not allowed here"),
    ("duplicate-key.yaml", "title: duplicate key (first at line 3)"),
    (
        "unclosed-quote.yaml",
        "not valid YAML: a quoted string starts here (column 10) and is never closed",
    ),
    ("not-utf8.yaml", "column 22: not UTF-8 text (byte 0xe9)"),
]


def test_every_bad_fixture_is_covered_and_marks_where_its_mistake_is():
    files = {p.name for p in BAD.glob("*.yaml")} - {"ok.yaml"}
    named = {name for name, _ in CASES} | {
        "role-not-bound.yaml",
        "several-problems.yaml",
        "schema-and-consistency-problems.yaml",
        "alias-bomb.yaml",  # only ever loaded under a memory cap: see test_bad_input.py
    }
    assert files == named
    for name in files:
        assert marked_lines(BAD / name), name
    assert not marked_lines(OK)


@pytest.mark.parametrize(("name", "reason"), CASES, ids=[c[0].removesuffix(".yaml") for c in CASES])
def test_a_bad_scenario_is_refused_with_its_file_line_and_reason(name, reason):
    path = BAD / name
    [line] = marked_lines(path)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert f"{path}:{line}: {reason}" in str(caught.value)
    assert caught.value.exit_code == 2
    assert (line, reason) in [(n, m[: len(reason)]) for n, m in caught.value.problems]


def test_a_role_the_workspace_does_not_bind_is_refused_at_its_line():
    path = BAD / "role-not-bound.yaml"
    [line] = marked_lines(path)
    load_scenario(path)  # without bindings nothing is wrong
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, roles={"api": object()})
    assert str(caught.value) == (
        f"{path}:{line}: faults[1].role: role 'cache' is not bound in pagerdrill.yaml (bound: api)"
    )


def test_a_file_with_several_problems_reports_them_all_at_once_in_line_order():
    path = BAD / "several-problems.yaml"
    lines = marked_lines(path)
    assert len(lines) == 4
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    problems = caught.value.problems
    assert [n for n, _ in problems] == lines
    reasons = [
        "faults[1].kind: unknown fault kind 'redis-commando'",
        "alerts[0].expr: bad expression 'api.down == 0': probe 'api' has no field 'down'",
        "mitigations[1].id: duplicate id 'start-api'",
        "answer.hypothesis: 'cache-cold' is not marked correct",
    ]
    for (line, message), reason in zip(problems, reasons, strict=True):
        assert message.startswith(reason)
        assert f"{path}:{line}: {reason}" in str(caught.value)


def test_schema_problems_are_all_reported_together():
    text = ok_text("severity: P3\n", "severity: P9\n")
    text = text.replace("  depth: 5\n", "  depth: 5\nquiet: {min_s: -1}\n")
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, Path("many.yaml"))
    rendered = str(caught.value)
    assert "many.yaml:5: severity: Input should be 'P0', 'P1', 'P2' or 'P3'" in rendered
    assert "many.yaml:10: quiet.min_s: Input should be greater than or equal to 0" in rendered


def test_a_schema_problem_and_a_consistency_problem_are_reported_together():
    path = BAD / "schema-and-consistency-problems.yaml"
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    reported = {n for n, _ in caught.value.problems}
    assert set(marked_lines(path)) <= reported


def test_a_mapping_is_required_at_the_top_level():
    with pytest.raises(ConfigError, match=r"^x\.yaml:1: expected a mapping"):
        parse_scenario("- just\n- a list\n", Path("x.yaml"))
    with pytest.raises(ConfigError, match=r"^x\.yaml:1: expected a mapping"):
        parse_scenario("", Path("x.yaml"))


def test_a_missing_scenario_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_scenario(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ the CLI


def test_validate_of_bad_scenarios_exits_2_with_each_file_and_line_and_no_traceback(tmp_path):
    paths = [BAD / name for name, _ in CASES]
    result = cli("scenarios", "validate", *map(str, paths), str(OK), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    for path, (_, reason) in zip(paths, CASES, strict=True):
        [line] = marked_lines(path)
        assert f"{path}:{line}: {reason}" in result.stderr
    assert "Traceback" not in result.stderr
    assert f"{OK}  (ok, P3)" in result.stdout  # the good one among them still passes


def test_validate_of_the_good_fixture_exits_0(tmp_path):
    result = cli("scenarios", "validate", str(OK), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{OK}  (ok, P3)" in result.stdout


def test_validate_in_a_workspace_checks_every_scenario_with_its_bindings(tmp_path):
    ws = write_workspace(tmp_path / "ws")
    shutil.copytree(REPO / "scenarios", ws / "scenarios")
    result = cli("scenarios", "validate", "-w", str(ws), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("✓") == len(SHIPPED)


def test_validate_of_a_self_referencing_alias_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(ok_text("params:\n", "loop: &x [*x]\nparams:\n"))
    result = cli("scenarios", "validate", str(path), cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2


def drill_workspace(tmp_path: Path) -> Path:
    ws = write_workspace(tmp_path / "ws")
    shutil.copytree(REPO / "scenarios", ws / "scenarios")
    return ws


def untouched(ws: Path) -> None:
    assert not (ws / ".pagerdrill").exists()
    assert not list(ws.glob("drills/*.jsonl"))
    assert sorted(p.name for p in ws.iterdir()) == ["pagerdrill.yaml", "scenarios"]


def test_a_dry_run_prints_the_plan_and_touches_nothing(tmp_path):
    ws = drill_workspace(tmp_path)
    result = cli(
        "run",
        "bullmq-backpressure",
        "--headless",
        "--engineer",
        "x",
        "--autopilot",
        "--dry-run",
        "-w",
        str(ws),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "BullMQ back-pressure (bullmq-backpressure, P2) — dry run" in out
    assert "roles: api → api, consumer → api, queue → redis-cache, producer → game" in out
    assert "stop-consumer (+0 s, for 60 s): stop service api (role consumer)" in out
    assert "alerts: queue-depth: waiting > 50 for 3 s" in out
    assert "nothing was touched" in out
    untouched(ws)


def test_a_dry_run_shows_param_overrides_in_the_plan(tmp_path):
    ws = drill_workspace(tmp_path)
    result = cli(
        "run", "bullmq-backpressure", "--headless", "-e", "x", "--autopilot", "--dry-run",
        "-p", "outage_s=7", "-p", "depth_alert=3", "-w", str(ws), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "stop-consumer (+0 s, for 7 s)" in result.stdout
    assert "waiting > 3 for 3 s" in result.stdout
    untouched(ws)


def test_a_page_timeout_given_to_run_replaces_the_scenario_s_in_the_plan(tmp_path):
    ws = drill_workspace(tmp_path)
    args = ("run", "bullmq-backpressure", "-e", "x", "--autopilot", "--dry-run", "-w", str(ws))
    default = cli(*args, cwd=tmp_path)
    assert "page: within 120 s of the fault, else the drill aborts" in default.stdout
    given = cli(*args, "--page-timeout", "30", "--json", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["page_timeout_s"] == 30
    refused = cli(*args, "--page-timeout", "0", cwd=tmp_path)
    assert refused.returncode == 2 and "--page-timeout" in refused.stderr
    untouched(ws)


def test_run_with_an_unknown_param_exits_2_naming_it_and_touches_nothing(tmp_path):
    ws = drill_workspace(tmp_path)
    result = cli(
        "run", "bullmq-backpressure", "--headless", "-e", "x", "--autopilot",
        "-p", "outage=7", "-w", str(ws), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--param outage: no such parameter" in result.stderr
    assert "Traceback" not in result.stderr
    untouched(ws)


def test_run_of_a_bad_scenario_file_exits_2_with_file_and_line_before_touching_anything(
    tmp_path,
):
    ws = drill_workspace(tmp_path)
    path = BAD / "unknown-probe-in-expr.yaml"
    [line] = marked_lines(path)
    result = cli(
        "run", str(path), "--headless", "--engineer", "x", "--autopilot", "-w", str(ws),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{path}:{line}: recovery.all[1]: bad expression" in result.stderr
    assert "Traceback" not in result.stderr
    untouched(ws)
