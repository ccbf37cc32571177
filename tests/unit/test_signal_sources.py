"""Signals without servers: the catalogue, the workspace's `signals:` section, scenario
probes that name signals, and the histogram quantile against Prometheus's own worked
examples (promql/testdata/histograms.test)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from pagerdrill.errors import ConfigError
from pagerdrill.refstack.spec import REFERENCE_SIGNALS
from pagerdrill.scenarios.model import parse_scenario
from pagerdrill.signals.catalogue import BY_NAME
from pagerdrill.signals.histogram import histogram_quantile, parse_le
from pagerdrill.workspace import load_workspace
from pagerdrill.workspace.sources import SignalSource, workspace_signals

REPO = Path(__file__).resolve().parents[2]
INF = math.inf

# the buckets of histograms.test at 50m (0+5x10 is 50 ...); a rate over 5m scales every
# bucket alike, which leaves the quantile as it is
POSITIVE = [(0.1, 50), (parse_le(".2"), 70), (parse_le("1e0"), 110), (parse_le("+Inf"), 120)]
NEGATIVE = [(parse_le("-.2"), 10), (parse_le("-0.1"), 20), (0.3, 20), (INF, 30)]
# request_duration_seconds_bucket, job1/ins1, job1/ins2, job2/ins1, job2/ins2 (per 5m)
REQUESTS = {
    ("job1", "ins1"): [(0.1, 1), (0.2, 3), (INF, 4)],
    ("job1", "ins2"): [(0.1, 2), (0.2, 5), (INF, 6)],
    ("job2", "ins1"): [(0.1, 3), (0.2, 4), (INF, 6)],
    ("job2", "ins2"): [(0.1, 4), (0.2, 7), (INF, 9)],
}


def _summed(keys) -> list[tuple[float, float]]:
    """sum by (le) over the series `keys`: the buckets as a list with repeats, which the
    quantile merges per bound."""
    return [bucket for key in keys for bucket in REQUESTS[key]]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (-0.1, POSITIVE, -INF),
        (1.01, NEGATIVE, INF),
        (0, POSITIVE, 0),
        (0, NEGATIVE, -0.2),  # the lowest bucket's bound is below 0: it is the answer
        (1, POSITIVE, 1),  # in the +Inf bucket: the highest finite bound
        (1, NEGATIVE, 0.3),
        (0.2, POSITIVE, 0.048),
        (0.2, NEGATIVE, -0.2),
        (0.5, POSITIVE, 0.15),
        (0.5, NEGATIVE, -0.15),
        (0.8, POSITIVE, 0.72),
        (0.8, NEGATIVE, 0.3),
        (0.3, _summed(REQUESTS), 0.075),
        (0.5, _summed(REQUESTS), 0.1277777777777778),
        (0.5, _summed([("job1", "ins1"), ("job2", "ins1")]), 0.1333333333),
        (0.3, _summed([("job2", "ins1"), ("job2", "ins2")]), 0.0642857142857143),
        (0.5, _summed([("job1", "ins1"), ("job1", "ins2")]), 0.14),
        (0.3, REQUESTS[("job2", "ins2")], 0.0675),
        # nonmonotonic_bucket: counts forced monotonic, so not ~1000 but just below 1
        (0.99, [(0.1, 10), (1, 90), (10, 80), (100, 80), (1000, 90), (INF, 90)], 0.989875),
        # mixed_bucket: 0.2, 2e-1 and 2.0e-1 are one bound
        (0.5, [(0.1, 1), (0.2, 1), (parse_le("2e-1"), 1), (parse_le("2.0e-1"), 1), (INF, 4)], 0.15),
        (0.75, [(0.1, 1), (0.2, 1), (parse_le("2e-1"), 1), (parse_le("2.0e-1"), 1), (INF, 4)], 0.2),
    ],
)
def test_the_histogram_quantile_matches_prometheus_worked_examples(q, buckets, expected):
    assert histogram_quantile(q, buckets) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "buckets",
    [
        [(parse_le("+inf"), 0), (INF, 0)],  # mixed_bucket ins2: one bucket, no observations
        [(0.1, 1), (0.2, 3)],  # no +Inf bucket
        [(0.1, 0), (INF, 0)],  # no observations in the window
        [],
    ],
)
def test_a_histogram_quantile_with_nothing_to_tell_is_nan(buckets):
    assert math.isnan(histogram_quantile(0.5, buckets))


def test_the_repo_workspace_maps_every_signal_as_the_reference_stack_does():
    ws = load_workspace(REPO)
    adapter: TypeAdapter[SignalSource] = TypeAdapter(SignalSource)
    assert ws.config.signals == {
        k: adapter.validate_python(v) for k, v in REFERENCE_SIGNALS.items()
    }
    assert set(REFERENCE_SIGNALS) <= set(BY_NAME), "the reference maps only catalogue signals"


def test_the_local_target_maps_what_the_workspace_leaves_out_and_a_team_s_mapping_wins(tmp_path):
    (tmp_path / "pagerdrill.yaml").write_text(
        "signals:\n  cache.miss_rate: {kind: promql, role: prom, query: 'sum(rate(misses[1m]))'}\n"
    )
    signals = workspace_signals(load_workspace(tmp_path).config)
    assert signals["cache.miss_rate"].kind == "promql"
    assert signals["api.up"].kind == "service"  # the reference stack's, filled in


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "signals:\n  api.error_rate: {kind: metric, role: api, metric: x, as: sum}\n",
            ":2: signals.api.error_rate.as: Input should be 'value', 'rate' or 'quantile'",
        ),
        (
            "signals:\n  api.up:\n    kind: graphite\n    role: api\n",
            ":2: signals.api.up: Input tag 'graphite' found using 'kind' does not match",
        ),
        (
            "signals:\n  api.up: {kind: http, role: api, body_match: '(', as: ok}\n",
            ":2: signals.api.up.body_match: Value error, body_match: bad regular expression",
        ),
        (
            "signals:\n  api.up: {kind: service, role: api, metric: x}\n",
            ":2: signals.api.up.metric: unknown key",
        ),
        (
            "signals:\n  errors: {kind: service, role: api}\n",
            ":2: signals.errors: Value error, 'errors' is not a signal name: role.meaning",
        ),
    ],
)
def test_a_bad_signal_source_names_file_line_and_what_was_expected(tmp_path, text, expected):
    (tmp_path / "pagerdrill.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_workspace(tmp_path)
    assert f"{tmp_path / 'pagerdrill.yaml'}{expected}" in str(caught.value)
    assert caught.value.exit_code == 2


def _flush_with(old: str, new: str) -> tuple[str, Path]:
    path = REPO / "scenarios" / "redis-cache-flush.yaml"
    text = path.read_text()
    assert old in text
    return text.replace(old, new), path


def test_a_scenario_probe_naming_no_catalogue_signal_is_refused_with_its_line():
    text, path = _flush_with("signal: cache.miss_rate}", "signal: cache.mis_rate}")
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, path)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "cache.mis_rate" in t)
    assert (
        f":{line}: probes[0].signal: 'cache.mis_rate' is not a catalogue signal "
        "(did you mean 'cache.miss_rate'?)"
    ) in str(caught.value)


def test_a_signal_probe_that_also_names_a_stack_s_metric_is_refused():
    text, path = _flush_with(
        "{name: misses, signal: cache.miss_rate}",
        "{name: misses, signal: cache.miss_rate, metric: cache_misses_total}",
    )
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, path)
    assert "a signal probe names only `name` and `signal`" in str(caught.value)
    assert "not metric" in str(caught.value)


def test_an_expression_may_read_a_signal_probe_s_value_only():
    text, path = _flush_with('"misses < ${miss_alert}"', '"misses.rate < ${miss_alert}"')
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, path)
    assert "recovery.all[0]: bad expression 'misses.rate < 0.5'" in str(caught.value)


def test_a_missing_url_names_the_service_it_is_missing_for_and_what_needs_it():
    from pagerdrill.scenarios.check import check_bindings
    from pagerdrill.scenarios.model import load_scenario
    from pagerdrill.workspace.config import RoleBinding

    model = load_scenario(REPO / "scenarios" / "redis-cache-flush.yaml").model
    redis = {"service": "redis", "redis_url": "redis://127.0.0.1:6379"}
    bindings = {
        "api": RoleBinding(service="api", url="http://127.0.0.1:8000"),
        "cache": RoleBinding(**redis),
        "queue": RoleBinding(**redis, queue="jobs"),
        "traffic": RoleBinding(service="smoke", url="http://127.0.0.1:8001"),
        "producer": RoleBinding(service="worker"),
    }
    signals = workspace_signals(load_workspace(REPO).config)
    missing, unknown = check_bindings(model, bindings, None, False, signals)
    assert missing == []
    assert unknown == [
        "roles.producer.url: no URL known for service worker (needed by fault flushdb repair, "
        "signal queue.unaccounted, mitigation replay-lost-jobs); known once the stack is up "
        "(a published port), or set it"
    ]


class _Endpoints:
    """A target's endpoint table, for the role resolver's own rule (no stack needed)."""

    def __init__(self, endpoints: dict[str, dict[str, str]]):
        self.endpoints = endpoints

    def service_endpoints(self, service: str) -> dict[str, str]:
        return self.endpoints.get(service, {})


def test_a_url_naming_the_service_is_read_where_the_target_reaches_that_service():
    from pagerdrill.targets.roles import RoleResolver
    from pagerdrill.workspace.config import RoleBinding

    target = _Endpoints(
        {"api": {"http": "http://172.18.0.5:8000"}, "nginx": {"http": "http://127.0.0.1:81"}}
    )
    roles = RoleResolver(
        {
            "api": RoleBinding(service="api", url="http://api:8000/v1"),
            "edge": RoleBinding(service="nginx", url="http://127.0.0.1:8088"),
        },
        target,  # type: ignore[arg-type]
    )
    assert roles.base_url("api") == "http://172.18.0.5:8000/v1"
    assert roles.metrics_url("api") == "http://172.18.0.5:8000/v1/metrics"
    # a URL on this machine is used as bound: the binding wins over what the target says
    assert roles.base_url("edge") == "http://127.0.0.1:8088"


def _team_workspace():
    return load_workspace(REPO / "tests" / "fixtures" / "teamstack")


def test_the_signals_pane_s_standard_rows_are_the_signals_a_stack_maps_and_binds():
    from pagerdrill.signals.dashboard import STANDARD_ROWS, standard_rows

    reference = load_workspace(REPO)
    everything = standard_rows(workspace_signals(reference.config), reference.config.roles)
    assert everything == list(STANDARD_ROWS)
    team = _team_workspace().config
    rows = {r.label for r in standard_rows(workspace_signals(team), team.roles)}
    # the team stack has no realtime gateway and no delayed jobs: no rows that read 0
    assert rows == {
        "api 5xx/s", "client err %", "client p95 ms", "cache hits/s", "cache miss/s",
        "queue waiting",
    }  # fmt: skip
    unbound = {k: v for k, v in team.roles.items() if k != "traffic"}
    rows = {r.label for r in standard_rows(workspace_signals(team), unbound)}
    assert "client err %" not in rows and "cache hits/s" in rows


def test_a_standard_probe_s_value_is_its_first_field_even_when_that_one_is_left_out():
    from pagerdrill.signals.dashboard import StandardProbe
    from pagerdrill.signals.expressions import PRIMARY
    from pagerdrill.signals.probes import Cycle, Probe
    from pagerdrill.signals.specs import ProbeSpec

    class Fixed(Probe):
        def __init__(self, value: float, url: str):
            super().__init__(ProbeSpec.model_validate({"name": "q", "signal": "queue.delayed"}))
            self.value, self.url = value, url

        def sample(self, cycle):
            return {PRIMARY: self.value}

        def scrape_urls(self):
            return {self.url: 2.0}

    cycle = Cycle(http=None, now=0.0)  # type: ignore[arg-type]
    both = StandardProbe(
        Fixed(7, "a").spec, {"waiting": Fixed(3, "a"), "delayed": Fixed(7, "b")}, "waiting"
    )
    assert both.sample(cycle) == {"waiting": 3, "delayed": 7, PRIMARY: 3}
    assert both.scrape_urls() == {"a": 2.0, "b": 2.0}
    # queue.waiting could not be built: the delayed count is not passed off as it
    delayed_only = StandardProbe(Fixed(7, "b").spec, {"delayed": Fixed(7, "b")}, "waiting")
    assert delayed_only.sample(cycle) == {"delayed": 7, PRIMARY: None}
