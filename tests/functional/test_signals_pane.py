"""The Signals pane, the drill's dashboard: before the page it shows the stack's
standard signals, the same for every scenario and with no alert rule (a blind drill
must not name its scenario); from the page on, the scenario's watched signals and its
alert come first, and every signal a hint names is on it at 80x24. The standard
signals are read from the real reference stack."""

from __future__ import annotations

import time
import urllib.request

import pytest

pytest.importorskip("textual", reason="textual is not installed: the TUI is not tested")

from textual.widgets import Static

from helpers import REPO
from pagerdrill.errors import ConfigError
from pagerdrill.journal import events as ev
from pagerdrill.scenarios.model import load_scenario, parse_scenario
from pagerdrill.signals.dashboard import STANDARD_ROWS
from pagerdrill.tui.app import DrillApp
from tui_demo import demo_app, sample_values

SHIPPED = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
PANES = {"logs", "spans", "runbooks"}
LABELS = {row.ref: row.label for row in STANDARD_ROWS}


def pane_text(app: DrillApp) -> str:
    """Everything the Signals pane holds, as text."""
    pane = app.drill_screen.query_one("#signals")
    return "\n".join(str(w.render()) for w in pane.query(Static))


def quiet(app: DrillApp) -> None:
    """Steady state and the quiet period, with the same samples for every scenario."""
    screen = app.drill_screen
    screen.apply_event(ev.DrillStarted(drill="x"))
    screen.apply_event(ev.State(to="steady-state"))
    screen.apply_event(ev.State(to="quiet"))
    for i in range(12):
        screen.apply_event(ev.ProbeSample(values=sample_values(i)))


def page(app: DrillApp) -> None:
    engine = app.engine
    alert = engine.model.alerts[0]
    engine.page_mono = engine.clock()
    app.drill_screen.apply_event(ev.Page(alert=alert.name, summary=alert.summary, symptom="x"))
    app.drill_screen.apply_event(ev.ProbeSample(values=sample_values(13)))


def test_before_the_page_the_signals_pane_is_the_same_for_every_scenario(tmp_path):
    import asyncio

    async def before_page(name: str) -> tuple[str, list[str]]:
        app = demo_app(tmp_path / name, name)
        async with app.run_test(size=(80, 24)) as pilot:
            quiet(app)
            await pilot.pause()
            probes = [p.name for p in app.engine.model.probes]
            return pane_text(app), probes

    shown = {name: asyncio.run(before_page(name)) for name in SHIPPED}
    texts = {text for text, _ in shown.values()}
    assert len(texts) == 1, texts  # nothing tells the scenarios apart
    text = texts.pop()
    assert "alert" not in text
    for label in ("api 5xx/s", "cache hits/s", "cache miss/s", "queue delayed", "rt refused/s"):
        assert label in text
    for name, (_, probes) in shown.items():
        for probe in probes:
            assert f"{probe}." not in text, (name, probe)


@pytest.mark.parametrize("name", SHIPPED)
def test_after_the_page_every_signal_a_hint_names_is_on_screen_at_80x24(tmp_path, name):
    import asyncio

    app = demo_app(tmp_path, name)
    hints = app.engine.model.hints
    assert hints and all(h.shows for h in hints)  # every hint points at its answer

    async def paged() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            quiet(app)
            page(app)
            await pilot.pause()
            await pilot.pause()
            text = pane_text(app)
            alert = app.engine.model.alerts[0]
            assert f"alert: {alert.expr}" in " ".join(text.split())
            pane = app.drill_screen.query_one("#signals")
            visible = pane.scrollable_content_region.height
            lines = text.splitlines()
            for hint in hints:
                for ref in hint.shows:
                    if ref in PANES:
                        continue
                    label = LABELS.get(ref, ref)
                    at = next((i for i, line in enumerate(lines) if line.startswith(label)), None)
                    assert at is not None, f"{name}: {ref} ({hint.text}) is not on the pane"
                    assert at < visible, f"{name}: {ref} is below the fold at 80x24"

    asyncio.run(paged())


def test_a_hint_naming_a_signal_no_probe_reads_is_refused_with_its_line():
    path = REPO / "scenarios" / "redis-cache-flush.yaml"
    text = path.read_text().replace("shows: [delayed]", "shows: [delayed.lost, graphs]")
    with pytest.raises(ConfigError) as err:
        parse_scenario(text, path)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "delayed.lost" in t)
    message = str(err.value)
    assert f":{line}: hints[1].shows[0]: 'delayed.lost': a delayed probe has no field 'lost'" in (
        message
    )
    assert f":{line}: hints[1].shows[1]: 'graphs': no probe 'graphs'" in message


def test_a_hint_written_as_plain_text_still_loads():
    path = REPO / "scenarios" / "redis-cache-flush.yaml"
    text = path.read_text()
    start = text.index("hints:")
    end = text.index("answer:")
    plain = text[:start] + "hints:\n  - Look at the cache.\n\n" + text[end:]
    hints = parse_scenario(plain, path).model.hints
    assert [(h.text, h.shows) for h in hints] == [("Look at the cache.", [])]


# ------------------------------------------------------------ on the real stack


@pytest.mark.stack
def test_the_standard_signals_are_read_from_the_real_stack_in_one_cycle(stack):
    from pagerdrill.drill.checklist import load_checklist
    from pagerdrill.drill.engine import DrillEngine, role_bindings
    from pagerdrill.workspace import load_workspace

    ws = load_workspace(stack.workspace.root)
    sc = load_scenario(REPO / "scenarios" / "ws-handshake-storm.yaml", roles=role_bindings(ws))
    checklist, _ = load_checklist(None)
    engine = DrillEngine(sc, ws, stack, "signals-test", checklist)
    engine.start()
    try:
        for _ in range(3):
            engine.tick()
            time.sleep(1.0)
        samples = engine.samples
    finally:
        engine.abort("test over")
    # every standard row reads a value from the stack, though this scenario probes
    # only rt: the cache, the queue, the api and the clients are read all the same
    for row in engine.stack_rows:
        assert (samples.get(row.probe) or {}).get(row.field) is not None, row
    reads = samples["stack.cache_hits"]["rate"] + samples["stack.cache_misses"]["rate"]
    assert reads > 0  # traffic reads markets all along: hits and misses, per second
    assert samples["stack.rt_refused"]["rate"] == 0


@pytest.mark.stack
def test_a_label_pattern_sums_every_series_it_matches(stack):
    import httpx

    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.scenarios.model import ProbeSpec
    from pagerdrill.signals.probes import Cycle, MetricProbe
    from pagerdrill.targets.roles import RoleResolver
    from pagerdrill.workspace import load_workspace

    roles = RoleResolver(role_bindings(load_workspace(stack.workspace.root)), stack)
    base = roles.base_url("api")
    for market in ("0", "999", "x"):  # no such market: 404
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{base}/api/markets/{market}", timeout=5)

    def read(patterns: dict) -> float | None:
        spec = ProbeSpec(
            name="p", kind="metric", role="api", metric="http_requests_total",
            label_patterns=patterns,
        )  # fmt: skip
        with httpx.Client() as http:
            return MetricProbe(spec, roles).sample(Cycle(http=http, now=0.0))["value"]

    assert read({"status": "4.."}) >= 3
    assert read({"status": "4..", "route": "/api/markets/.*"}) >= 3
    assert read({"status": "4"}) == 0  # the whole value must match


@pytest.mark.stack
def test_the_drill_shows_the_standard_signals_then_its_own_once_paged(stack):
    import asyncio

    from pagerdrill.tui.app import make_app

    fast = {"quiet_min_s": "3", "quiet_max_s": "4", "recovery_s": "2"}
    app = make_app(
        stack.workspace.root, str(REPO / "scenarios" / "api-500-injection.yaml"), "t", fast
    )

    async def drill() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 60
            while app.engine.phase.value not in ("quiet", "fault-injected"):
                assert time.monotonic() < deadline, "never quiet"
                await pilot.pause(0.2)
            await pilot.pause(1.5)
            before = pane_text(app)
            rows = [line.split()[0] for line in before.splitlines() if line.strip()]
            assert "cache hits/s" in before and "errors" not in rows
            assert "alert" not in before
            while app.drill_screen.page is None:
                assert time.monotonic() < deadline + 60, "never paged"
                await pilot.pause(0.2)
            await pilot.pause(1.5)
            after = pane_text(app)
            rows = [line.split()[0] for line in after.splitlines() if line.strip()]
            assert "errors" in rows and "alert: errors > 0.1" in after
            assert "cache hits/s" in after
            await pilot.press("q")
            await pilot.press("y")
            while app.is_running and not app.engine.done:
                await pilot.pause(0.2)

    asyncio.run(drill())
    assert app.engine.done
