"""Which scenarios a workspace's role bindings can run, and what is missing for the rest.

A scenario speaks of roles; each fault, probe and mitigation needs some detail of a
role's service: its URL, its Redis URL and password, its BullMQ queue, the variable
that holds the admin password. A detail comes from the binding in `pagerdrill.yaml`
or, for addresses, from the running target (the local stack's ports, a compose
service's published ports). A probe that names a catalogue signal needs the signal
mapped in `signals:`, and the details of the role its source reads. With the stack up,
the details are also tried: Redis must accept the password, a service must have the
variables a fault changes or reads, and every probe reads its signal once (the metric
exists with those labels, the path answers, the queue exists, the query returns a
series).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pagerdrill.errors import BadInputError, ConfigError, PagerdrillError
from pagerdrill.scenarios.model import Scenario, ScenarioModel, load_scenario, scenario_files
from pagerdrill.targets.base import Target
from pagerdrill.targets.roles import RoleResolver
from pagerdrill.workspace.config import RoleBinding
from pagerdrill.workspace.sources import SignalSource


@dataclass(frozen=True)
class Need:
    """One detail of a role that something in a scenario needs."""

    role: str
    by: str
    """What needs it: `probe queue`, `fault bad-password`."""
    what: str
    """The detail, for people: `BullMQ queue name`."""
    key: str
    """The binding key that gives it: roles.ROLE.KEY."""
    endpoint: str | None = None
    """The target endpoint that can give it instead (http, health, metrics, redis)."""


@dataclass
class ScenarioCheck:
    name: str
    path: Path
    runnable: bool = False
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Details only the running stack can give, while it is not up."""
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "scenario": self.name,
            "file": str(self.path),
            "runnable": self.runnable,
            "missing": self.missing,
            "unknown_until_up": self.unknown,
            "error": self.error,
        }


# what each fault kind needs of its role, beyond the service (plugins: the service only)
FAULT_NEEDS: dict[str, list[tuple[str, str, str | None]]] = {
    "redis-command": [("Redis URL", "redis_url", "redis")],
    "http-fault": [("URL", "url", "http")],
    "socketio-storm": [("socket.io URL", "url", "http")],
}
PROBE_NEEDS: dict[str, list[tuple[str, str, str | None]]] = {
    "queue": [("BullMQ queue name", "queue", None), ("Redis URL", "redis_url", "redis")],
    "metric": [("URL", "url", "metrics")],
    "promql": [("Prometheus URL", "url", "http")],
    "http": [("URL", "url", "http")],
}
BINDING_FIELDS = {"admin_password_env": "variable that holds the admin password"}


def needs(model: ScenarioModel, signals: dict[str, SignalSource] | None = None) -> list[Need]:
    """Everything the scenario needs of its roles' bindings (a signal probe: of the role
    its mapped source reads; an unmapped one needs nothing of a role)."""
    out: list[Need] = []
    for f in model.faults:
        by = f"fault {f.id}"
        out.append(Need(f.role, by, "service", "service"))
        for what, key, endpoint in FAULT_NEEDS.get(f.kind, []):
            out.append(Need(f.role, by, what, key, endpoint))
        if f.repair is not None and f.repair.action == "replay-lost-jobs":
            repair = f"fault {f.id} repair"
            out.append(Need(f.repair.role, repair, "service", "service"))
            out.append(Need(f.repair.role, repair, "URL", "url", "http"))
        if f.kind == "restart-with-env":
            for key in f.params.get("env_from_binding") or {}:
                out.append(Need(f.role, by, BINDING_FIELDS.get(key, key), key))
    for p in model.probes:
        by = f"probe {p.name}"
        if p.signal is not None:
            source = (signals or {}).get(p.signal)
            if source is not None:
                by = f"signal {p.signal}"
                out.append(Need(source.role, by, "service", "service"))
                for what, key, endpoint in PROBE_NEEDS.get(source.kind, []):
                    out.append(Need(source.role, by, what, key, endpoint))
            continue
        assert p.role is not None and p.kind is not None  # the model requires them
        out.append(Need(p.role, by, "service", "service"))
        if p.kind == "http":
            if p.path:
                out.append(Need(p.role, by, "URL", "url", "http"))
            else:
                out.append(Need(p.role, by, "health URL", "health_url", "health"))
        for what, key, endpoint in PROBE_NEEDS.get(p.kind, []):
            if key == "queue" and p.key:
                continue  # the probe names its queue itself
            out.append(Need(p.role, by, what, key, endpoint))
    for m in model.mitigations:
        if m.role:
            out.append(Need(m.role, f"mitigation {m.id}", "service", "service"))
        if m.role and m.action == "replay-lost-jobs":
            out.append(Need(m.role, f"mitigation {m.id}", "URL", "url", "http"))
    for role in model.roles:
        out.append(Need(role, "roles", "service", "service"))
    return out


class _Stack:
    """What the running target says about a service, asked once per service."""

    def __init__(self, target: Target):
        self.target = target
        self._endpoints: dict[str, dict[str, str]] = {}
        self._env: dict[str, dict[str, str] | None] = {}
        self._redis: dict[str, str | None] = {}

    def endpoints(self, service: str) -> dict[str, str]:
        if service not in self._endpoints:
            try:
                self._endpoints[service] = self.target.service_endpoints(service)
            except PagerdrillError:
                self._endpoints[service] = {}
        return self._endpoints[service]

    def environment(self, service: str) -> dict[str, str] | None:
        if service not in self._env:
            try:
                self._env[service] = self.target.environment(service)
            except PagerdrillError:
                self._env[service] = None
        return self._env[service]

    def redis_problem(self, url: str) -> str | None:
        """None when Redis at `url` answers PING (password accepted), else why not."""
        if url not in self._redis:
            import redis

            try:
                with redis.Redis.from_url(
                    url, socket_timeout=2, socket_connect_timeout=2
                ) as client:
                    client.ping()
                self._redis[url] = None
            except (redis.RedisError, OSError, ValueError) as exc:
                self._redis[url] = str(exc) or type(exc).__name__
        return self._redis[url]


def check_bindings(
    model: ScenarioModel,
    bindings: dict[str, RoleBinding],
    stack: _Stack | None,
    target_gives_addresses: bool,
    signals: dict[str, SignalSource] | None = None,
) -> tuple[list[str], list[str]]:
    """(missing, unknown-until-up) for one scenario, as lines for people."""
    missing: dict[str, None] = dict.fromkeys(_unmapped(model, signals or {}))
    # (role, key) -> (the detail, the service, what needs it): one line per binding key
    lacking: dict[tuple[str, str], tuple[Need, str, list[str]]] = {}
    services = stack.target.services() if stack is not None else None
    absent: set[str] = set()
    for need in needs(model, signals):
        binding = bindings.get(need.role)
        if binding is None:
            missing[f"role {need.role} is not bound (set roles.{need.role}.service)"] = None
            continue
        if binding.generator:
            continue  # pagerdrill's own traffic generator: the drill starts it
        if services is not None and binding.service not in services:
            absent.add(need.role)
            missing[
                f"roles.{need.role}.service: the stack has no service '{binding.service}' "
                f"(it has {', '.join(services)})"
            ] = None
            continue
        if need.key == "service":
            continue
        given = getattr(binding, need.key, None)
        if not given and need.endpoint and stack is not None:
            found = stack.endpoints(binding.service)
            given = found.get(need.endpoint) or (
                found.get("http") if need.endpoint in ("metrics", "health") else None
            )
        if given or (need.endpoint and stack is None and target_gives_addresses):
            continue  # the local target knows its own addresses once it is up
        entry = lacking.setdefault((need.role, need.key), (need, binding.service, []))
        if need.by not in entry[2]:
            entry[2].append(need.by)
    unknown: dict[str, None] = {}
    for (role, key), (need, service, by) in lacking.items():
        line = (
            f"roles.{role}.{key}: no {need.what} known for service {service} "
            f"(needed by {', '.join(by)})"
        )
        if need.endpoint and stack is None:
            unknown[f"{line}; known once the stack is up (a published port), or set it"] = None
        else:
            missing[line] = None
    if stack is not None:
        live = {r: b for r, b in bindings.items() if r not in absent}
        resolver = RoleResolver(live, stack.target, dict(signals or {}))
        _live_checks(model, live, stack, resolver, missing)
        if not missing:  # the signals are read once every detail they need is there
            for line in signal_problems(model, resolver, stack.target):
                missing[line] = None
    return list(missing), list(unknown)


def _unmapped(model: ScenarioModel, signals: dict[str, SignalSource]) -> list[str]:
    return [
        f"signal {p.signal} (probe {p.name}) is not mapped: set signals.{p.signal} in "
        "pagerdrill.yaml"
        for p in model.probes
        if p.signal is not None and p.signal not in signals
    ]


def signal_problems(
    model: ScenarioModel,
    roles: RoleResolver,
    target: Target,
    only: set[str] | None = None,
) -> list[str]:
    """One live read of each probe (of those named in `only`, else all): a line per
    probe whose signal does not resolve, naming the source tried and what came back."""
    import httpx

    from pagerdrill.signals.probes import Cycle, make_probe

    out: list[str] = []
    with httpx.Client() as http:
        cycle = Cycle(http=http, now=0.0)
        for spec in model.probes:
            if only is not None and spec.name not in only:
                continue
            what = (
                f"signal {spec.signal} (probe {spec.name})" if spec.signal else f"probe {spec.name}"
            )
            try:
                probe = make_probe(spec, roles, target)
            except PagerdrillError as exc:
                out.append(f"{what}: {exc}")
                continue
            try:
                problem = probe.check(cycle)
            finally:
                close = getattr(probe, "close", None)
                if close is not None:
                    close()
            if problem:
                out.append(f"{what}: {problem}")
    return out


def refuse_unreadable_alerts(scenario: Scenario, roles: RoleResolver, target: Target) -> None:
    """Before a drill touches anything: every signal its alerts read must resolve on the
    running stack, else no page could come and the drill would only wait for it."""
    alert_probes = {p for a in scenario.model.alerts for p, _ in scenario.expr(a.expr).refs}
    problems = signal_problems(scenario.model, roles, target, only=alert_probes)
    if problems:
        raise BadInputError(
            f"{scenario.name}: its alert signals cannot be read on this stack, so it could "
            "never page; nothing was touched:\n  " + "\n  ".join(problems)
        )


def _live_checks(model, bindings, stack: _Stack, resolver, missing: dict[str, None]) -> None:
    """With the stack up: Redis takes the password; the variables faults use exist."""
    for need in needs(model, resolver.signals):
        binding = bindings.get(need.role)
        if binding is None or need.key != "redis_url":
            continue
        try:
            url = resolver.redis_url(need.role)
        except PagerdrillError:
            continue
        problem = stack.redis_problem(url)
        if problem:
            missing[
                f"roles.{need.role}: Redis of {binding.service} refused ({problem}); "
                f"set roles.{need.role}.password or redis_url"
            ] = None
    for f in model.faults:
        binding = bindings.get(f.role)
        if binding is None:
            continue
        env = stack.environment(binding.service)
        if env is None:
            continue
        variables: list[tuple[str, str]] = []
        if f.kind == "restart-with-env":
            for key in f.params.get("env_from_binding") or {}:
                name = getattr(binding, key, None)
                if name:
                    variables.append((name, f"roles.{f.role}.{key}"))
        if f.kind == "http-fault":
            token = f.params.get("token_env", "FAULT_TOKEN")
            if not env.get(token):
                missing[
                    f"{binding.service} has no {token} in its environment: its fault route is "
                    f"off (fault {f.id})"
                ] = None
        for name, where in variables:
            if name not in env:
                missing[
                    f"{where}: {binding.service}'s environment has no {name} (fault {f.id})"
                ] = None


def check_workspace(
    root: Path,
    bindings: dict[str, RoleBinding],
    target: Target | None,
    target_gives_addresses: bool,
    signals: dict[str, SignalSource] | None = None,
) -> list[ScenarioCheck]:
    """Every scenario of the workspace against its bindings (and the running target,
    when given)."""
    stack = _Stack(target) if target is not None else None
    results = []
    for path in scenario_files(root):
        result = ScenarioCheck(path.stem, path)
        try:
            sc = load_scenario(path)
        except ConfigError as exc:
            result.error = str(exc)
            results.append(result)
            continue
        result.name = sc.name
        result.missing, result.unknown = check_bindings(
            sc.model, bindings, stack, target_gives_addresses, signals
        )
        result.runnable = not result.missing and not result.unknown
        results.append(result)
    return results
