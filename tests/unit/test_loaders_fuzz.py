"""Property-based tests of the loaders: whatever the bytes, a scenario, a script or a
journal either loads or is refused with a line-numbered problem, never an exception of
another kind (which the CLI would show as a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import REPO
from pagerdrill.drill.runner import ScriptAction, load_script
from pagerdrill.errors import ConfigError
from pagerdrill.journal import SCHEMA_VERSION, JournalWriter, read_journal
from pagerdrill.scenarios.model import Scenario, parse_scenario

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PATH = Path("fuzzed/scenario.yaml")
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
TEXTS = [p.read_text() for p in SHIPPED]
OK = Path(__file__).resolve().parents[1] / "fixtures" / "bad_scenarios" / "ok.yaml"
OK_DATA = yaml.safe_load(OK.read_text())

SCENARIO_KEYS = [
    *OK_DATA,
    "quiet",
    "steady_state",
    "guards",
    "decision",
    "hints",
    "interval_s",
    "min_s",
    "max_s",
    "expr",
    "for_s",
    "name",
    "id",
    "kind",
    "role",
    "choices",
    "correct",
    "text",
    "all",
    "duration_s",
    "at_s",
    "command",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["${depth}", "${nope}", "api", "P2", "stop-service", "api.up == 1", "x >"])
)
keys = st.sampled_from(SCENARIO_KEYS) | st.text(max_size=8).filter(lambda k: "[" not in k)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)


def lines_in(text: str) -> int:
    return len(text.splitlines())


def bracket_in_a_key(text: str) -> bool:
    """Whether a mapping key of the document holds `[`: a known bug (see
    test_a_key_holding_a_bracket_is_refused_with_a_config_error), kept out of the
    properties so that they check everything else."""
    try:
        seen, todo = set(), [yaml.safe_load(text)]
    except Exception:
        return False
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            if any("[" in str(k) for k in node):
                return True
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return False


def assert_loads_or_is_refused(text: str) -> None:
    """The property every scenario text must have."""
    try:
        sc = parse_scenario(text, PATH)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError with no problem in it"
        assert str(exc).startswith(str(PATH))
        for line, message in exc.problems:
            assert line is None or 1 <= line <= lines_in(text) + 1, (line, message)
            assert message.strip()
        return
    assert isinstance(sc, Scenario)
    m = sc.model
    # everything the engine will evaluate was compiled when the file was loaded
    for source in [a.expr for a in m.alerts] + [g.expr for g in m.guards] + list(m.recovery.all):
        assert sc.expr(source).source == source.strip()
    assert any(c.correct and c.id == m.answer.hypothesis for c in m.hypotheses.choices)


# ------------------------------------------------------------------ scenarios


@FUZZ
@given(st.text(max_size=400))
def test_any_text_loads_as_a_scenario_or_is_refused_with_a_config_error(text):
    assume(not bracket_in_a_key(text))
    assert_loads_or_is_refused(text)


@FUZZ
@given(st.dictionaries(keys, junk, max_size=8) | junk)
def test_any_yaml_document_loads_as_a_scenario_or_is_refused(document):
    # `keys` holds no "[": no filter needed
    assert_loads_or_is_refused(yaml.safe_dump(document, allow_unicode=True))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


OK_PATHS = [p for p in _paths(OK_DATA) if p]


def _replaced(document, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {k: (_replaced(v, rest, value) if k == head else v) for k, v in document.items()}
    return [(_replaced(v, rest, value) if i == head else v) for i, v in enumerate(document)]


@FUZZ
@given(st.sampled_from(OK_PATHS), junk)
def test_a_valid_scenario_with_one_part_replaced_by_junk_loads_or_is_refused(path, value):
    # `keys` holds no "[": no filter needed
    assert_loads_or_is_refused(yaml.safe_dump(_replaced(OK_DATA, path, value)))


@st.composite
def mutated_scenarios(draw) -> str:
    """A shipped scenario with one line deleted, duplicated or swapped, one value
    replaced, random text inserted, or the file cut short."""
    text = draw(st.sampled_from(TEXTS))
    lines = text.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["delete", "duplicate", "swap", "value", "insert", "cut"]))
    if how == "delete":
        del lines[i]
    elif how == "duplicate":
        lines.insert(i, lines[i])
    elif how == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "value":
        head, sep, _ = lines[i].partition(": ")
        new = draw(
            st.sampled_from(["", "-1", "1e9", "[a, b]", "{x: 1}", "null", "'${nope}'", "P9"])
            | st.text(max_size=10).map(json.dumps)
        )
        lines[i] = f"{head}{sep or ': '}{new}\n"
    elif how == "insert":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.text(max_size=20)) + text[at:]
    else:
        return text[: draw(st.integers(0, len(text)))]
    return "".join(lines)


@FUZZ
@given(mutated_scenarios())
def test_a_mutated_shipped_scenario_loads_or_is_refused(text):
    assume(not bracket_in_a_key(text))
    assert_loads_or_is_refused(text)


def test_the_mutations_start_from_scenarios_that_load():
    for text in TEXTS:
        assert isinstance(parse_scenario(text, PATH), Scenario)


# Inputs the random strategies do not reach, each a traceback today.

LOOP = "loop: &x [*x]\n"


def test_a_self_referencing_alias_is_refused_with_a_config_error():
    assert_loads_or_is_refused(OK.read_text().replace("params:\n", LOOP + "params:\n"))


def test_absurdly_deep_nesting_is_refused_with_a_config_error():
    assert_loads_or_is_refused("[" * 500 + "]" * 500)


def test_an_absurdly_long_expression_in_a_scenario_is_refused_with_a_config_error():
    long = " + ".join(["api.up"] * 1000)
    assert_loads_or_is_refused(OK.read_text().replace("expr: api.up == 0", f"expr: {long} > 0"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("version: 1", "faults[0]: 1"),
        ("    command: [FLUSHDB]", "    command: [FLUSHDB]\n    command[1]: x"),
    ],
    ids=["top-level", "fault-parameter"],
)
def test_a_key_holding_a_bracket_is_refused_with_a_config_error(old, new):
    text = OK.read_text().replace(old, new)
    with pytest.raises(ConfigError):
        parse_scenario(text, PATH)


# ------------------------------------------------------------------ scripts


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_script_loads_or_is_refused(path: Path) -> None:
    try:
        actions = load_script(path)
    except ConfigError as exc:
        assert exc.problems and str(exc).startswith(str(path))
        return
    assert actions and all(isinstance(a, ScriptAction) for a in actions)
    for a in actions:
        assert (a.do is None) != (a.wait is None)
        assert a.at is None or a.after is None


SCRIPT_KEYS = ["at", "after", "wait", "do", "step", "text", "choice", "mitigation", "by"]
script_values = scalars | st.sampled_from(["ack", "recovered", "resolve", "step", "note"])
script_action = st.dictionaries(
    st.sampled_from(SCRIPT_KEYS) | st.text(max_size=6).filter(lambda k: "[" not in k),
    script_values | junk,
    max_size=4,
)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_loads_as_a_script_or_is_refused(scratch, text):
    assume(not bracket_in_a_key(text))
    path = scratch / "script.yaml"
    path.write_text(text, encoding="utf-8")
    assert_script_loads_or_is_refused(path)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_load_as_a_script_or_are_refused(scratch, data):
    assume(not bracket_in_a_key(data.decode("utf-8", errors="replace")))
    path = scratch / "script.yaml"
    path.write_bytes(data)
    assert_script_loads_or_is_refused(path)


@FUZZ
@given(
    st.fixed_dictionaries(
        {"actions": st.lists(script_action, max_size=5) | junk},
        optional={"version": st.sampled_from([1, 2, "1"]), "extra": junk},
    )
    | junk
)
def test_any_yaml_document_loads_as_a_script_or_is_refused(scratch, document):
    path = scratch / "script.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert_script_loads_or_is_refused(path)


def test_a_script_with_a_self_referencing_alias_is_refused(scratch):
    path = scratch / "loop-script.yaml"
    path.write_text("version: 1\nactions: &x [*x]\n")
    assert_script_loads_or_is_refused(path)


# ------------------------------------------------------------------ journals


def assert_read_is_sound(path: Path) -> None:
    """read_journal's contract: no exception; valid events; problems on real lines."""
    raw = path.read_bytes()
    read = read_journal(path)
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for event in read.events:
        assert isinstance(event, dict) and isinstance(event["type"], str)
        assert isinstance(event["v"], int) and event["v"] <= SCHEMA_VERSION
    numbers = [n for n, _ in read.problems]
    assert numbers == sorted(set(numbers))
    for number, message in read.problems:
        assert 1 <= number <= len(lines) and lines[number - 1].strip(), (number, message)
        if message.startswith("cut short"):
            assert number == len(lines) and not raw.endswith(b"\n")
    # a line is an event, a problem, or an event read without the parts left out
    dropped = [p for p in read.problems if not p[1].endswith("(left out)")]
    assert len(read.events) + len(dropped) == sum(1 for x in lines if x.strip())
    if lines and lines[-1].strip() and not raw.endswith(b"\n"):
        try:
            json.loads(lines[-1])
        except ValueError:
            assert read.problems[-1] == (len(lines), "cut short (the drill stopped mid-write)")


EVENT_LINES = [
    json.dumps({"v": 1, "seq": 0, "type": "drill.started", "drill": "d"}).encode(),
    json.dumps({"v": 1, "seq": 1, "type": "note", "text": "é ✓"}, ensure_ascii=False).encode(),
    json.dumps({"v": 2, "seq": 2, "type": "x"}).encode(),
    b'{"v": 1}',
    b"[]",
    b"",
    b"   ",
]


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_read_as_a_journal_without_an_exception(scratch, data):
    path = scratch / "random.jsonl"
    path.write_bytes(data)
    assert_read_is_sound(path)


@FUZZ
@given(st.lists(st.sampled_from(EVENT_LINES) | st.binary(max_size=30), max_size=12), st.booleans())
def test_lines_of_events_and_junk_read_as_a_journal_without_an_exception(scratch, parts, end):
    path = scratch / "mixed.jsonl"
    path.write_bytes(b"\n".join(parts) + (b"\n" if end else b""))
    assert_read_is_sound(path)


@pytest.fixture(scope="module")
def real_journal(scratch) -> tuple[bytes, list[dict]]:
    """A journal as the engine writes it, with multi-byte text a cut can split."""
    path = scratch / "real.jsonl"
    writer = JournalWriter(path, "20240501T100000Z-bullmq-ana-beef")
    events = [writer.append("drill.started", engineer="ana", scenario={"name": "bullmq"})]
    for i in range(12):
        events.append(writer.append("note", text=f"queue → {i} jobs, ça déborde ✓", drill_s=i))
    events.append(writer.append("drill.closed", text="résolu"))
    writer.close()
    return path.read_bytes(), events


@FUZZ
@given(st.data())
def test_a_journal_cut_anywhere_keeps_every_whole_event_and_reports_the_cut(
    scratch, real_journal, data
):
    raw, events = real_journal
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    path = scratch / "cut.jsonl"
    path.write_bytes(raw[:cut])
    read = read_journal(path)
    whole = raw[:cut].count(b"\n")
    partial = raw[:cut].rsplit(b"\n", 1)[-1]
    if partial.endswith(b"}") and raw[cut : cut + 1] == b"\n":
        whole += 1  # cut just before the newline: the event itself is complete
        partial = b""
    assert read.events == events[:whole]
    if partial:
        assert read.problems == [(whole + 1, "cut short (the drill stopped mid-write)")]
    else:
        assert read.problems == []
    assert_read_is_sound(path)


@FUZZ
@given(st.data())
def test_a_journal_with_corrupted_bytes_keeps_every_untouched_line(scratch, real_journal, data):
    raw, events = real_journal
    buf = bytearray(raw)
    spots = [i for i, b in enumerate(raw) if b != 0x0A]
    touched = data.draw(st.lists(st.sampled_from(spots), min_size=1, max_size=8, unique=True))
    for at in touched:
        buf[at] = data.draw(st.integers(0, 255).filter(lambda b: b != 0x0A))
    assume(bytes(buf) != raw)
    path = scratch / "corrupt.jsonl"
    path.write_bytes(bytes(buf))
    read = read_journal(path)
    bad_lines = {raw[:at].count(b"\n") + 1 for at in touched}
    assert all(n in bad_lines for n, _ in read.problems)
    assert not any(m.startswith("cut short") for _, m in read.problems)
    kept = [e for n, e in enumerate(events, 1) if n not in bad_lines]
    assert [e for e in read.events if e in kept] == kept
    assert len(read.events) + len(read.problems) == len(events)
    assert_read_is_sound(path)


@FUZZ
@given(st.data())
def test_a_journal_with_junk_inserted_anywhere_reads_without_an_exception(
    scratch, real_journal, data
):
    raw, _ = real_journal
    at = data.draw(st.integers(0, len(raw)))
    junk_bytes = data.draw(st.binary(max_size=40) | st.sampled_from(EVENT_LINES))
    path = scratch / "inserted.jsonl"
    path.write_bytes(raw[:at] + junk_bytes + raw[at:])
    assert_read_is_sound(path)


@pytest.mark.parametrize(
    "line",
    [b'{"v":1,"type":"x","n":' + b"1" * 5000 + b"}", b"[" * 100_000],
    ids=["long-number", "deep-array"],
)
def test_a_hand_edited_pathological_line_is_a_problem_not_an_exception(scratch, line):
    path = scratch / "pathological.jsonl"
    path.write_bytes(b'{"v":1,"seq":0,"type":"drill.started"}\n' + line + b"\n")
    read = read_journal(path)
    assert [n for n, _ in read.problems] == [2]


# ------------------------------------------------------------------ journals' contents

JOURNAL_FIXTURES = sorted((REPO / "tests" / "fixtures" / "journals").glob("*.jsonl"))
JOURNAL_EVENTS = {
    p.stem: [json.loads(x) for x in p.read_text().splitlines()] for p in JOURNAL_FIXTURES
}
json_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def export_everything(path: Path) -> None:
    """What `drills show`, `drills list` and the four exports compute from a journal."""
    from pagerdrill.reports.drills import row_of
    from pagerdrill.reports.html import render_html
    from pagerdrill.reports.text import markdown, slack_messages, to_json
    from pagerdrill.reports.timeline import load_redacted, signal_summary

    tl = load_redacted(path, None, samples=600)
    slack_messages(tl)
    markdown(tl)
    json.dumps(to_json(tl))
    render_html(tl)
    for series in tl.series:
        signal_summary(series, tl.page_t)
    row_of(path)
    if not tl.complete:
        assert tl.problems or not read_journal(path).finished


@st.composite
def journals_with_a_field_of_another_kind(draw) -> tuple[list[dict], tuple]:
    """A real journal with one field of one event (at any depth) replaced by junk."""
    events = [dict(e) for e in JOURNAL_EVENTS[draw(st.sampled_from(sorted(JOURNAL_EVENTS)))]]
    started_first = draw(st.booleans())
    index = 0 if started_first else draw(st.integers(0, len(events) - 1))
    paths = [p for p in _paths(events[index]) if p and p[0] not in ("v", "type")]
    path = draw(st.sampled_from(paths))
    events[index] = _replaced(events[index], path, draw(json_junk))
    return events, (events[index].get("type"), *path)


@FUZZ
@given(journals_with_a_field_of_another_kind())
def test_a_journal_with_a_field_of_another_kind_anywhere_exports_without_an_exception(
    scratch, case
):
    events, _where = case
    path = scratch / "kinds.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    export_everything(path)
