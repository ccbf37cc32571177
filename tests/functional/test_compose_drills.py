"""The seed's scenarios, unchanged, on compose stacks on a real Docker Engine:

- the reference stack in containers (compose/docker-compose.yml), each scenario headless
  with --autopilot: the same observables as on the local target, asserted from the
  journal, and the stack healthy afterwards (all running, no override left);
- another team's stack (tests/fixtures/foreign-compose: other service names, another
  Redis password and port, another queue), drilled through the role bindings alone;
  `kill -9` mid-fault then `recover` puts its containers and their environment back.

Both projects come up side by side once for the module. The reference stack's drills
run one after the other in a background thread while the foreground tests drill the
other stack (different projects, workspaces and drill locks), so the module takes about
as long as the longer of the two; the reference tests then assert on what their drill
recorded, stack checks included, right after it ran.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import yaml

from composing import (
    FOREIGN,
    REFERENCE,
    Spec,
    compose_projects,
    container_env,
    foreign_roles,
    reference_roles,
)
from drilling import (
    FAST,
    RECOVERED,
    WAIT_SCRIPT,
    api_faults,
    assert_stack_clean,
    autopilot_drill,
    cli,
    events,
    journals,
    newest_journal,
    promotions_fail,
    samples,
    scenario,
    start_cli,
    wait_for_event,
    write_script,
)
from helpers import wait_for
from pagerdrill.journal import read_journal
from pagerdrill.targets.compose import OVERRIDES_LABEL, ComposeTarget

# whole drills on containers: longer than the suite's default per-test timeout
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> Iterator[tuple[ComposeTarget, ComposeTarget]]:
    base = tmp_path_factory.mktemp("compose")
    with compose_projects(
        Spec(base / "ref", "ref", [REFERENCE], reference_roles()),
        Spec(base / "foreign", "foreign", [FOREIGN], foreign_roles()),
    ) as (ref, foreign):
        yield ref, foreign


@pytest.fixture(scope="module")
def ref(stacks) -> ComposeTarget:
    return stacks[0]


@pytest.fixture(scope="module")
def foreign(stacks) -> ComposeTarget:
    return stacks[1]


def before_fault(evs: list[dict], probe: str, field: str) -> list:
    """The last samples before the fault: the steady state it broke (a stack that has
    just come up may still be working off a start-up backlog earlier on)."""
    injected = next(e["seq"] for e in evs if e["type"] == "fault.injected")
    values = [e["values"][probe][field] for e in evs if e["type"] == "probe.sample"]
    seqs = [e["seq"] for e in evs if e["type"] == "probe.sample"]
    return [v for v, seq in zip(values, seqs, strict=True) if seq < injected][-3:]


def autopilot(target: ComposeTarget, name: str, *params: str) -> list[dict]:
    """A whole drill, headless, the scenario's answer key playing the engineer; the
    journal's events. Fails unless it paged and closed with recovery verified."""
    summary, evs = autopilot_drill(target.workspace.root, name, *params, timeout=300)
    assert evs[0]["target"] == "compose"
    assert summary["outcome"] == "closed" and summary["recovery_verified"]
    assert summary["alert_fired"] and summary["paged"] and summary["hypothesis"]["correct"]
    types = [e["type"] for e in evs]
    order = ["fault.undo", "fault.injected", "alert.firing", "page", "ack", "hypothesis",
             "recovery.verified", "drill.closed"]  # fmt: skip
    start = types.index("fault.undo")
    positions = [types.index(t, start if t != "fault.undo" else 0) for t in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    return evs


def assert_replayed_before_recovery(evs: list[dict], producer: str) -> None:
    """The flush's lost settlements were replayed through the producer's published port
    (with the stack's fault token), and recovery held only once none was unaccounted."""
    mitigation = next(e for e in evs if e["type"] == "mitigation")
    assert mitigation["mitigation"] == "replay-lost-jobs"
    assert mitigation["detail"]["service"] == producer
    assert mitigation["detail"]["replayed"] >= 5
    verified = next(e for e in evs if e["type"] == "recovery.verified")
    assert verified["seq"] > mitigation["seq"] and verified["values"]["lost"]["value"] == 0


# ------------------------------------------------- the reference stack, in background


@dataclass
class RefRun:
    """What one reference drill left: its journal, and the stack right after it."""

    events: list[dict]
    env_before: dict[str, list[str]]
    env_after: dict[str, list[str]]
    overrides_after: dict[str, dict[str, str]]
    api_faults_after: dict = field(default_factory=dict)


REF_DRILLS = {
    "test_compose_reference_bullmq_backpressure_queue_grows_and_drains": (
        "bullmq-backpressure",
        ("-p", "outage_s=120", "-p", "depth_alert=25"),
    ),
    "test_compose_reference_redis_flush_makes_reads_slow_and_loses_delayed_jobs": (
        "redis-cache-flush",
        (),
    ),
    "test_compose_reference_bad_admin_password_fails_sign_ins_until_reverted": (
        "signin-failure-spike",
        (),
    ),
    "test_compose_reference_ws_storm_is_throttled_until_the_source_is_blocked": (
        "ws-handshake-storm",
        # clients: still 2x the gateway's limit of 50 a second; recovery_s: long enough
        # for a sample to see the storm refused as blocked after rt's restart
        ("-p", "clients=100", "-p", "recovery_s=6"),
    ),
    "test_compose_reference_injected_500s_stop_when_the_flag_is_off": (
        "api-500-injection",
        (),
    ),
}


def run_reference_drill(target: ComposeTarget, name: str, params: tuple[str, ...]) -> RefRun:
    watched = ("api", "rt")
    before = {s: container_env(target, s) for s in watched}
    evs = autopilot(target, name, *params)
    assert_stack_clean(target)  # checked now, before the next drill breaks it again
    return RefRun(
        events=evs,
        env_before=before,
        env_after={s: container_env(target, s) for s in watched},
        overrides_after={s: target.overrides(s) for s in target.services()},
        api_faults_after=api_faults(target),
    )


@pytest.fixture(scope="module")
def ref_runs(request, ref) -> Iterator[dict[str, Future]]:
    """The selected reference drills, queued one after the other in the background."""
    selected = {item.originalname for item in request.session.items}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ref-drills")
    futures = {
        test: pool.submit(run_reference_drill, ref, name, params)
        for test, (name, params) in REF_DRILLS.items()
        if test in selected
    }
    try:
        yield futures
    finally:
        for future in futures.values():
            future.cancel()
        pool.shutdown(wait=True)


def ref_result(ref_runs: dict[str, Future], test: str) -> RefRun:
    return ref_runs[test].result(timeout=600)


def test_compose_reference_stack_comes_up_healthy_on_loopback_ports(ref, ref_runs):
    """(Also sets the reference drills going in the background.)"""
    statuses = {s.name: s for s in ref.status()}
    assert set(statuses) == {"redis-cache", "api", "rt", "game", "traffic"}
    for s in statuses.values():
        assert s.state == "running" and s.health == "healthy", s
        endpoint = s.endpoints.get("http") or s.endpoints["redis"]
        assert "127.0.0.1:" in endpoint
    # the password came from the container's own command line (`--requirepass cache`)
    assert statuses["redis-cache"].endpoints["redis"].startswith("redis://:cache@127.0.0.1:")
    assert ref.environment("api")["FAULT_TOKEN"]  # generated at `up`, passed by compose


# ---------------------------------------------------------- the foreign stack, here


def test_compose_foreign_stack_stop_service_backs_up_its_own_queue(foreign):
    evs = autopilot(foreign, "bullmq-backpressure", "-p", "outage_s=120")
    # the scenario's roles landed on this team's services
    assert evs[0]["roles"] == {
        "api": "backend",
        "consumer": "backend",
        "queue": "sessions-redis",
        "producer": "worker",
    }
    stop = next(e for e in evs if e["type"] == "fault.undo")
    assert stop["undo"] == {"service": "backend", "was": "running"}
    during = samples(evs, "waiting", "value", after="fault.injected", until=RECOVERED)
    assert max(before_fault(evs, "waiting", "value")) < 10
    assert max(during) > 50  # settlements_v2 grew while backend was stopped
    assert during[-1] < 10  # and drained once it was started again, as recovery saw it
    up = samples(evs, "api_up", "value", after="fault.injected")
    assert 0 in up and up[-1] == 1
    assert next(e for e in evs if e["type"] == "mitigation")["detail"] == {"service": "backend"}
    assert_stack_clean(foreign)


def test_compose_foreign_stack_flushdb_with_its_own_password_empties_its_redis(foreign):
    evs = autopilot(foreign, "redis-cache-flush")
    injected = next(e["seq"] for e in evs if e["type"] == "fault.injected")
    pre = [e["values"] for e in evs if e["type"] == "probe.sample" and e["seq"] < injected][-3:]
    post = [e["values"] for e in evs if e["type"] == "probe.sample" and e["seq"] > injected]
    assert max(v["misses"]["value"] or 0 for v in pre) < 0.5
    assert max(v["misses"]["value"] or 0 for v in post) > 0.5
    # the probe's market, cached before the flush, takes the slow path (backend's
    # SLOW_PATH_MS is 150) on the first read after it
    cold = post[0]["read"]["value"] or 0
    assert cold >= 145
    assert min(v["read"]["value"] or cold for v in pre) < cold - 50
    assert pre[-1]["delayed"]["value"] >= 5
    assert post[0]["delayed"]["value"] < pre[-1]["delayed"]["value"] / 2
    flush = next(e for e in evs if e["type"] == "fault.injected")
    assert flush["detail"]["service"] == "sessions-redis"
    assert_replayed_before_recovery(evs, "worker")
    assert_stack_clean(foreign)


def test_compose_foreign_stack_bad_password_recreates_backend_and_reverts_its_env(foreign):
    original = container_env(foreign, "backend")
    evs = autopilot(foreign, "signin-failure-spike", "-p", "bad_password=not$the-admin's")
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"] == {"service": "backend", "previous": {"ADMIN_DEFAULT_PASSWORD": None}}
    during = samples(evs, "auth", "value", after="fault.injected")
    assert max(r or 0 for r in during) > 0.2
    assert samples(evs, "auth", "value", after="fault.reverted")[-1] == 0
    # the recreated container is back to exactly the environment it had
    assert container_env(foreign, "backend") == original
    assert foreign.overrides("backend") == {}
    assert not foreign.override_path.exists()
    assert_stack_clean(foreign)


BAD = "kill-9-wrong$pw"


@pytest.mark.parametrize(
    ("name", "params", "broken"),
    [
        (
            "bullmq-backpressure",
            ("-p", "outage_s=600"),
            lambda t: t.service_status("backend").state == "stopped",
        ),
        (
            "signin-failure-spike",
            ("-p", f"bad_password={BAD}"),
            lambda t: t.overrides("backend") == {"ADMIN_DEFAULT_PASSWORD": BAD},
        ),
        # the proxy's container outlives the drill; its redirect is in backend's namespace
        (
            "api-500-injection",
            (),
            lambda t: promotions_fail(t, "backend") or t._proxy_rows("backend"),
        ),
    ],
    ids=["backend-stopped", "backend-recreated-with-wrong-password", "proxy-before-backend"],
)
def test_compose_kill_9_mid_fault_then_recover_restores_the_containers(
    foreign, tmp_path, name, params, broken
):
    original = container_env(foreign, "backend")
    root = foreign.workspace.root
    before = set(journals(root))
    script = write_script(tmp_path / "wait.json", WAIT_SCRIPT)
    proc = start_cli(
        "run", scenario(name), "--headless", "--engineer", "ci", "--script", str(script),
        *FAST, *params, "-w", str(root),
    )  # fmt: skip
    try:
        journal = newest_journal(root, before)
        wait_for_event(journal, "fault.injected", timeout=90)
        wait_for(lambda: broken(foreign), 30, "the fault in effect")
    finally:
        proc.kill()  # SIGKILL: no finally, no revert
        proc.communicate(timeout=30)
    assert broken(foreign), "the fault should still be in after kill -9"
    if "signin" in name:
        attrs = foreign._primary("backend")
        assert attrs is not None
        assert attrs["Config"]["Labels"][OVERRIDES_LABEL] == "ADMIN_DEFAULT_PASSWORD"
        assert f"ADMIN_DEFAULT_PASSWORD={BAD}" in container_env(foreign, "backend")
    assert not read_journal(journal).finished

    # a fresh process with nothing but the workspace: the journal's undo records and the
    # containers themselves say what to put back
    done = cli("recover", "--json", "-w", str(root))
    assert done.returncode == 0, done.stderr + done.stdout
    mine = next(r for r in json.loads(done.stdout) if r["journal"] == str(journal))
    assert mine["reverted"] and not mine["failed"]
    assert not broken(foreign)
    assert_stack_clean(foreign)
    assert container_env(foreign, "backend") == original
    finished = read_journal(journal)
    assert finished.events[-1]["type"] == "drill.aborted"
    assert finished.events[-1]["recovered"] is True
    assert any(e["type"] == "fault.reverted" and e["by"] == "recover" for e in events(journal))
    again = cli("recover", "--json", "-w", str(root))
    assert json.loads(again.stdout) == []


def test_compose_scenarios_check_on_the_foreign_stack_says_what_runs(foreign, tmp_path):
    done = cli("scenarios", "check", "--json", "-w", str(foreign.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    report = {s["scenario"]: s for s in json.loads(done.stdout)["scenarios"]}
    # the 500 drill asks nothing of this team's backend: a proxy stands in front of it
    for name in ("bullmq-backpressure", "redis-cache-flush", "signin-failure-spike",
                 "ws-handshake-storm", "api-500-injection"):  # fmt: skip
        assert report[name]["runnable"], report[name]

    # the same stack with bindings that do not fit it
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    config = yaml.safe_load((foreign.workspace.root / "pagerdrill.yaml").read_text())
    config["roles"]["cache"]["password"] = "cache"  # the reference stack's, not theirs
    del config["roles"]["queue"]["queue"]
    del config["roles"]["rt"]
    config["roles"]["api"]["admin_password_env"] = "ADMIN_PASSWORD"
    (wrong / "pagerdrill.yaml").write_text(yaml.safe_dump(config))
    (wrong / "scenarios").symlink_to(foreign.workspace.root / "scenarios")
    done = cli("scenarios", "check", "--json", "-w", str(wrong))
    assert done.returncode == 0, done.stderr + done.stdout
    report = {s["scenario"]: s for s in json.loads(done.stdout)["scenarios"]}
    # the 500 drill needs only the api and the traffic, which these bindings still fit
    assert [n for n, s in report.items() if s["runnable"]] == ["api-500-injection"]
    flush = "\n".join(report["redis-cache-flush"]["missing"])
    assert "roles.cache: Redis of sessions-redis refused" in flush
    assert "roles.queue.queue" in flush
    signin = "\n".join(report["signin-failure-spike"]["missing"])
    assert "backend's environment has no ADMIN_PASSWORD" in signin
    storm = report["ws-handshake-storm"]["missing"]
    assert "role rt is not bound (set roles.rt.service)" in storm


def test_compose_target_touches_only_containers_of_its_project(foreign):
    """A container that says it is `backend`, of another project, is never touched, and
    neither is a one-off container of this project."""
    attrs = foreign._primary("backend")
    assert attrs is not None
    ours, image = attrs["Id"], attrs["Config"]["Image"]

    def sleeper(*labels: str) -> str:
        argv = ["docker", "run", "-d", "--rm"]
        for label in labels:
            argv += ["--label", label]
        done = subprocess.run(
            [*argv, image, "sleep", "120"], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    outsider = sleeper(
        "com.docker.compose.project=someone-else", "com.docker.compose.service=backend"
    )
    oneoff = sleeper(
        f"com.docker.compose.project={foreign.project}",
        "com.docker.compose.service=backend",
        "com.docker.compose.oneoff=True",
    )
    try:
        foreign.stop("backend")
        assert foreign.service_status("backend").state == "stopped"
        for other in (outsider, oneoff):
            running = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Running}}", other],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            assert running == "true", f"{other[:12]} was touched"
        foreign.start("backend")
        assert foreign._primary("backend")["Id"] == ours  # type: ignore[index]
    finally:
        subprocess.run(["docker", "rm", "-f", outsider, oneoff], capture_output=True, check=False)
    assert_stack_clean(foreign)


# ------------------------------------------- the reference stack: what its drills showed


def test_compose_reference_bullmq_backpressure_queue_grows_and_drains(ref_runs):
    run = ref_result(ref_runs, "test_compose_reference_bullmq_backpressure_queue_grows_and_drains")
    evs = run.events
    during = samples(evs, "waiting", "value", after="fault.injected", until=RECOVERED)
    assert max(before_fault(evs, "waiting", "value")) < 10
    assert max(during) > 25  # the page's threshold, lowered for a quicker drill here
    assert during[-1] < 10  # as recovery saw it
    api_up = samples(evs, "api_up", "value", after="fault.injected")
    assert 0 in api_up and api_up[-1] == 1
    assert next(e for e in evs if e["type"] == "mitigation")["mitigation"] == "start-consumer"


def test_compose_reference_redis_flush_makes_reads_slow_and_loses_delayed_jobs(ref_runs):
    run = ref_result(
        ref_runs, "test_compose_reference_redis_flush_makes_reads_slow_and_loses_delayed_jobs"
    )
    evs = run.events
    injected = next(e["seq"] for e in evs if e["type"] == "fault.injected")
    pre = [e["values"] for e in evs if e["type"] == "probe.sample" and e["seq"] < injected][-3:]
    post = [e["values"] for e in evs if e["type"] == "probe.sample" and e["seq"] > injected]
    # a market read for the first time misses before the fault too: the flush is the
    # cliff, well above whatever the quiet period saw
    peak = max(v["misses"]["value"] or 0 for v in post)
    assert peak > 0.5
    assert max(v["misses"]["value"] or 0 for v in pre) < peak / 2
    cold = post[0]["read"]["value"] or 0  # the slow path: SLOW_PATH_MS is 120 here
    assert cold >= 115
    assert min(v["read"]["value"] or cold for v in pre) < cold - 50
    assert pre[-1]["delayed"]["value"] >= 5
    assert post[0]["delayed"]["value"] < pre[-1]["delayed"]["value"] / 2
    assert next(e for e in evs if e["type"] == "fault.undo")["undo"]["irreversible"]
    assert_replayed_before_recovery(evs, "game")


def test_compose_reference_bad_admin_password_fails_sign_ins_until_reverted(ref_runs):
    run = ref_result(
        ref_runs, "test_compose_reference_bad_admin_password_fails_sign_ins_until_reverted"
    )
    evs = run.events
    during = samples(evs, "auth", "value", after="fault.injected")
    assert all((r or 0) == 0 for r in before_fault(evs, "auth", "value"))
    assert max(r or 0 for r in during) > 0.2
    assert samples(evs, "auth", "value", after="fault.reverted")[-1] == 0
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["undo"]["previous"] == {"ADMIN_DEFAULT_PASSWORD": None}
    assert run.overrides_after["api"] == {}
    assert run.env_after["api"] == run.env_before["api"]


def test_compose_reference_ws_storm_is_throttled_until_the_source_is_blocked(ref_runs):
    run = ref_result(
        ref_runs, "test_compose_reference_ws_storm_is_throttled_until_the_source_is_blocked"
    )
    evs = run.events
    throttled = samples(evs, "throttled", "value", after="fault.injected")
    assert max(t or 0 for t in throttled) > 5
    blocked = samples(evs, "blocked", "value", after="mitigation")
    assert max(b or 0 for b in blocked) > 0
    mitigation = next(e for e in evs if e["type"] == "mitigation")
    assert mitigation["detail"]["values"] == {"BLOCKED_SOURCES": "203.0.113.7"}
    assert any(e["type"] == "mitigation.reverted" for e in evs)
    # the block list was a drill-time change: rt was recreated with its own environment
    assert run.env_after["rt"] == run.env_before["rt"]
    assert run.overrides_after["rt"] == {}


def test_compose_reference_injected_500s_stop_when_the_flag_is_off(ref_runs):
    run = ref_result(ref_runs, "test_compose_reference_injected_500s_stop_when_the_flag_is_off")
    evs = run.events
    errors = samples(evs, "errors", "value", after="fault.injected")
    assert max(e or 0 for e in errors) > 0.1
    assert samples(evs, "errors", "value", after="recovery.verified")[-1:] in ([], [0.0])
    assert run.api_faults_after == {}


def test_compose_reference_stack_is_clean_after_all_its_drills(ref, ref_runs):
    for future in ref_runs.values():
        future.result(timeout=600)
    assert_stack_clean(ref)
    assert not ref.override_path.exists()
