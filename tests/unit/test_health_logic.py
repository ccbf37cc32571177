"""What "healthy" means to the probes and to `recover`, as pure logic: a target that
answers from a script of statuses (no servers; the compose tests prove the target's
side on a real engine)."""

from __future__ import annotations

from collections.abc import Iterator

from pagerdrill.drill.recover import wait_for_health
from pagerdrill.signals.probes import ServiceProbe
from pagerdrill.signals.specs import ProbeSpec
from pagerdrill.targets.base import ServiceStatus
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace.config import RoleBinding


class ScriptedTarget:
    """Each service's statuses in turn, the last one repeated."""

    name = "scripted"

    def __init__(self, script: dict[str, list[tuple[str, str]]]):
        self.script = {s: iter(v) for s, v in script.items()}
        self.last: dict[str, ServiceStatus] = {}
        self.asked: dict[str, int] = {}

    def service_status(self, service: str) -> ServiceStatus:
        self.asked[service] = self.asked.get(service, 0) + 1
        steps: Iterator[tuple[str, str]] = self.script[service]
        state, health = next(steps, (None, None))
        if state is not None:
            self.last[service] = ServiceStatus(service, state, health)  # type: ignore[arg-type]
        return self.last[service]


def _up(state: str, health: str):
    target = ScriptedTarget({"api": [(state, health)]})
    roles = RoleResolver({"api": RoleBinding(service="api")}, target)  # type: ignore[arg-type]
    probe = ServiceProbe(ProbeSpec(name="api", kind="service", role="api"), roles, target)  # type: ignore[arg-type]
    return probe.sample(None)  # type: ignore[arg-type]


def test_a_running_service_whose_health_nothing_can_tell_is_not_up_but_unknown():
    sample = _up("running", "unknown")
    assert sample["up"] is None
    assert sample["running"] == 1


def test_a_healthy_service_is_up_and_an_unhealthy_one_is_down():
    assert _up("running", "healthy")["up"] == 1
    assert _up("running", "unhealthy")["up"] == 0
    assert _up("stopped", "unknown")["up"] == 0


def test_recover_waits_until_a_service_is_healthy_before_it_says_done():
    target = ScriptedTarget(
        {
            "api": [("running", "unhealthy")] * 3 + [("running", "healthy")],
            "worker": [("running", "unknown")],
        }
    )
    sleeps: list[float] = []
    not_healthy, unknown = wait_for_health(target, ["api", "worker"], 60, sleeps.append)  # type: ignore[arg-type]
    assert not_healthy == {}
    assert unknown == ["worker"]
    assert target.asked["api"] == 4 and len(sleeps) == 3


def test_recover_names_a_service_that_is_not_healthy_when_the_wait_runs_out():
    target = ScriptedTarget({"nginx": [("running", "unhealthy")], "api": [("running", "healthy")]})
    not_healthy, unknown = wait_for_health(target, ["nginx", "api"], 0, lambda _s: None)  # type: ignore[arg-type]
    assert not_healthy == {"nginx": "running, unhealthy"}
    assert unknown == []
