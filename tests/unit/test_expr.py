"""Expressions over probe samples (alert rules, guards, recovery): what parses, what
they evaluate to, and what a missing value does. Pure logic, no stack."""

from __future__ import annotations

import pytest

from pagerdrill.signals.expressions import MISSING, ExprError, parse


def samples(**probes: object) -> dict[str, dict[str, object]]:
    """`samples(q={"waiting": 3}, api=1)`: a bare number is the probe's `value`."""
    return {
        name: dict(fields) if isinstance(fields, dict) else {"value": fields}
        for name, fields in probes.items()
    }


# ------------------------------------------------------------------ reading probes


def test_probe_dot_field_reads_that_field_of_the_probe():
    expr = parse("queue.waiting > 10")
    assert expr.refs == {("queue", "waiting")}
    assert expr.holds(samples(queue={"waiting": 11, "value": 0}))
    assert not expr.holds(samples(queue={"waiting": 10, "value": 99}))


def test_a_bare_probe_name_reads_its_value_field():
    expr = parse("errors > 2")
    assert expr.refs == {("errors", "value")}
    assert expr.evaluate(samples(errors={"value": 3, "rate": 0})) is True
    assert expr.evaluate(samples(errors={"value": 1, "rate": 50})) is False


def test_source_is_kept_stripped_and_refs_list_every_probe_field_read():
    expr = parse("  a.x > b and c.rate < 1  ")
    assert expr.source == "a.x > b and c.rate < 1"
    assert expr.refs == {("a", "x"), ("b", "value"), ("c", "rate")}


def test_a_string_field_compares_with_a_string_literal():
    expr = parse("svc.state == 'running'")
    assert expr.holds(samples(svc={"state": "running"}))
    assert not expr.holds(samples(svc={"state": "stopped"}))


def test_true_and_false_are_one_and_zero():
    assert parse("api.up == true").holds(samples(api={"up": 1}))
    assert parse("api.up == False").holds(samples(api={"up": 0}))
    assert parse("True + True").evaluate({}) == 2


# ------------------------------------------------------------------ comparisons


@pytest.mark.parametrize(
    ("source", "value", "expected"),
    [
        ("x > 1", 2, True),
        ("x > 1", 1, False),
        ("x >= 1", 1, True),
        ("x < 1", 0.5, True),
        ("x <= 1", 1.5, False),
        ("x == 1", 1.0, True),
        ("x != 1", 1, False),
    ],
)
def test_each_comparison_operator_compares_like_python(source, value, expected):
    assert parse(source).holds(samples(x=value)) is expected


@pytest.mark.parametrize(("value", "expected"), [(0, False), (1, True), (2, True), (3, False)])
def test_a_chained_comparison_holds_only_when_every_link_holds(value, expected):
    assert parse("1 <= x < 3").holds(samples(x=value)) is expected


def test_a_chain_of_three_comparisons_checks_each_neighbour_pair():
    expr = parse("a < b < c")
    assert expr.holds(samples(a=1, b=2, c=3))
    assert not expr.holds(samples(a=1, b=3, c=2))
    assert not expr.holds(samples(a=2, b=1, c=3))


def test_a_string_compared_with_a_number_never_holds():
    assert not parse("svc.state > 2").holds(samples(svc={"state": "3"}))
    assert not parse("svc.state == 3").holds(samples(svc={"state": "3"}))


# ------------------------------------------------------------------ and / or / not


@pytest.mark.parametrize(
    ("a", "b", "and_", "or_"),
    [(1, 1, True, True), (1, 0, False, True), (0, 1, False, True), (0, 0, False, False)],
)
def test_and_or_combine_their_operands(a, b, and_, or_):
    s = samples(a=a, b=b)
    assert parse("a == 1 and b == 1").holds(s) is and_
    assert parse("a == 1 or b == 1").holds(s) is or_


def test_not_negates_a_known_value():
    assert parse("not (x > 1)").holds(samples(x=0))
    assert not parse("not (x > 1)").holds(samples(x=5))
    assert parse("not x").holds(samples(x=0))


def test_and_binds_tighter_than_or():
    # a or (b and c): true through `a` alone
    assert parse("a == 1 or b == 1 and c == 1").holds(samples(a=1, b=0, c=0))
    assert not parse("(a == 1 or b == 1) and c == 1").holds(samples(a=1, b=0, c=0))


# ------------------------------------------------------------------ arithmetic


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a + b", 7),
        ("a - b", -1),
        ("a * b", 12),
        ("b / a", 4 / 3),
        ("-a", -3),
        ("+a", 3),
        ("a + b * 2", 11),
        ("(a + b) * 2", 14),
        ("abs(a - b)", 1),
        ("min(a, b, 10)", 3),
        ("max(a, b, 10)", 10),
        ("max(a, b) - min(a, b)", 1),
    ],
)
def test_arithmetic_and_abs_min_max_compute_like_python(source, expected):
    assert parse(source).evaluate(samples(a=3, b=4)) == pytest.approx(expected)


def test_arithmetic_feeds_a_comparison():
    expr = parse("errors.rate / requests.rate > 0.05")
    assert expr.holds(samples(errors={"rate": 6}, requests={"rate": 100}))
    assert not expr.holds(samples(errors={"rate": 4}, requests={"rate": 100}))


# ------------------------------------------------------------------ missing values


@pytest.mark.parametrize("missing", ["absent probe", "None value", "absent field"])
@pytest.mark.parametrize(
    "source",
    ["x > 1", "x < 1", "x == 0", "x != 0", "x >= 0", "0 <= x <= 100", "x.value + 1 > 0"],
)
def test_a_missing_value_makes_every_comparison_unknown(source, missing):
    s = {
        "absent probe": {},
        "None value": {"x": {"value": None}},
        "absent field": {"x": {"rate": 5}},
    }[missing]
    expr = parse(source)
    assert expr.evaluate(s) is MISSING
    assert not expr.holds(s)
    assert expr.holds(s) is False


def test_arithmetic_on_a_missing_value_stays_missing():
    for source in ("x + 1", "x * 0", "-x", "abs(x)", "max(x, 5)", "min(1, x)"):
        assert parse(source).evaluate({}) is MISSING, source
        assert parse(source).holds({}) is False, source


def test_a_missing_operand_does_not_stop_the_other_side_of_or():
    expr = parse("x > 1 or y == 1")
    assert expr.holds(samples(y=1))
    assert not expr.holds(samples(y=0))


def test_and_with_a_missing_operand_does_not_hold():
    assert not parse("x > 1 and y == 1").holds(samples(y=1))


def test_not_of_a_missing_bare_probe_does_not_hold():
    assert parse("not x").evaluate({}) is MISSING
    assert not parse("not x").holds({})


def test_a_bare_missing_probe_does_not_hold():
    assert not parse("x").holds({})
    assert not parse("x.up").holds({"x": {"up": None}})


def test_not_of_a_comparison_on_a_missing_probe_does_not_hold():
    # expr.py: "A probe that has no value yet ... so a rule neither fires nor counts as
    # recovered on missing data". `not (api.up == 1)` as an alert must not fire while
    # the api probe has not sampled.
    assert not parse("not (x > 1)").holds({})
    assert not parse("not (api.up == 1)").holds({"api": {"up": None}})


def test_division_by_zero_is_missing():
    expr = parse("a / b")
    assert expr.evaluate(samples(a=1, b=0)) is MISSING
    assert not expr.holds(samples(a=1, b=0))
    assert not parse("a / b > 0").holds(samples(a=1, b=0))
    assert not parse("a / b < 0").holds(samples(a=1, b=0))
    assert parse("a / b").evaluate(samples(a=1, b=2)) == 0.5


def test_a_division_by_zero_spoils_only_the_comparison_it_is_in():
    expr = parse("a / b > 1 or c == 1")
    assert expr.holds(samples(a=1, b=0, c=1))


# ------------------------------------------------------------------ refused syntax


@pytest.mark.parametrize(
    ("source", "phrase"),
    [
        ("foo(1)", "unknown function 'foo'"),
        ("print(x)", "unknown function 'print'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("abs()", "known: abs, min, max"),
        ("max(x, key=y)", "known: abs, min, max"),
        ("x.y()", "is not allowed here"),
        ("x[0]", "is not allowed here"),
        ("x['a']", "is not allowed here"),
        ("lambda: 1", "is not allowed here"),
        ("a.b.c", "is not allowed here"),
        ("a.b.c > 1", "is not allowed here"),
        ("x ** 2", "is not allowed here"),
        ("x // 2", "is not allowed here"),
        ("x % 2", "is not allowed here"),
        ("x if y else z", "is not allowed here"),
        ("[1, 2]", "is not allowed here"),
        ("None", "is not allowed here"),
        ("x == ...", "is not allowed here"),
        ("f'{x}'", "is not allowed here"),
        ("x in y", "only < <= > >= == != compare values"),
        ("x is None", "only < <= > >= == != compare values"),
        ("", "an expression is required"),
        ("   ", "an expression is required"),
        ("x >", "not a valid expression"),
        ("x > 1; y", "not a valid expression"),
        ("(x > 1", "not a valid expression"),
    ],
)
def test_syntax_outside_the_subset_is_refused_with_a_message(source, phrase):
    with pytest.raises(ExprError) as caught:
        parse(source)
    assert phrase in str(caught.value)


def test_a_syntax_error_says_at_which_column():
    with pytest.raises(ExprError, match=r"at column \d+"):
        parse("x > > 1")


def test_a_non_string_expression_is_refused():
    with pytest.raises(ExprError, match="an expression is required"):
        parse(5)  # type: ignore[arg-type]


def test_an_absurdly_long_expression_is_refused_with_an_expr_error():
    for source in ("+".join(["x"] * 1000), "not " * 5000 + "x"):
        with pytest.raises(ExprError):
            parse(source)


# ------------------------------------------------------------------ known probes and fields

FIELDS = {
    "queue": frozenset({"value", "waiting", "active"}),
    "api": frozenset({"value", "up"}),
    "auth": frozenset({"rate"}),
}


def test_with_fields_known_probes_and_fields_parse():
    expr = parse("queue.waiting > 5 and api.up == 1 and queue > 0", FIELDS)
    assert expr.refs == {("queue", "waiting"), ("api", "up"), ("queue", "value")}


def test_with_fields_an_unknown_probe_is_refused_naming_the_known_ones():
    with pytest.raises(ExprError) as caught:
        parse("queues.waiting > 5", FIELDS)
    assert str(caught.value) == "unknown probe 'queues' (probes: api, auth, queue)"


def test_with_fields_an_unknown_field_is_refused_naming_the_probe_and_its_fields():
    with pytest.raises(ExprError) as caught:
        parse("queue.wating > 5", FIELDS)
    assert str(caught.value) == (
        "probe 'queue' has no field 'wating' (fields: active, value, waiting)"
    )


def test_with_fields_a_bare_probe_without_a_value_field_is_refused():
    with pytest.raises(ExprError, match="probe 'auth' has no field 'value' \\(fields: rate\\)"):
        parse("auth > 1", FIELDS)


def test_with_fields_inside_a_function_call_unknown_probes_are_still_refused():
    with pytest.raises(ExprError, match="unknown probe 'nope'"):
        parse("max(queue.waiting, nope.x) > 1", FIELDS)


def test_with_no_probes_at_all_the_message_says_none():
    with pytest.raises(ExprError, match=r"\(probes: none\)"):
        parse("x > 1", {})


def test_without_fields_any_probe_name_parses():
    assert parse("anything.at_all > 1").refs == {("anything", "at_all")}
