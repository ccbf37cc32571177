"""Benchmark the compose target's faults on a real Docker Engine, next to the same fault
on the local target and next to the raw docker / compose CLI command that does it.

    python bench/compose_bench.py [--runs N] [--stack reference|foreign]

Brings up its own compose project (the reference stack, compose/docker-compose.yml, or
the test fixture with other names, tests/fixtures/foreign-compose) with free loopback
ports, and a local reference stack, and always takes both down again. For each fault,
N runs of each way, alternated, the fault put back between runs:

1. stop-service on the api: pagerdrill's `inject()` (docker SDK stop) / `docker stop`
   / `COMPOSE stop api`. Done when the call returns (the container has exited).
2. FLUSHDB on the cache: pagerdrill's `inject()` (redis-py on the published port) /
   `docker exec REDIS redis-cli -a PASSWORD FLUSHDB` / `COMPOSE exec -T ...`.
3. restart-with-env on the api (a wrong admin password): pagerdrill's `inject()`
   (override file + `COMPOSE up -d --no-deps --force-recreate api`, then waiting until
   the api is healthy) / the same compose command with the variable set in its
   environment, then the same wait for health.

Overhead is pagerdrill's median over the fastest raw way's median; budget ≤ 10%.
Results also go to bench/results/compose_bench.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from benchkit import save_results  # noqa: E402
from composing import (  # noqa: E402
    FOREIGN,
    REFERENCE,
    docker_env,
    foreign_roles,
    free_ports,
    project_name,
    reference_roles,
    teardown,
    write_compose_workspace,
)
from helpers import write_workspace  # noqa: E402
from pagerdrill.drill.engine import role_bindings  # noqa: E402
from pagerdrill.faults import FaultContext  # noqa: E402
from pagerdrill.faults.builtin import (  # noqa: E402
    RedisCommand,
    RedisCommandParams,
    RestartWithEnv,
    RestartWithEnvParams,
    StopService,
    restore_env,
)
from pagerdrill.targets.compose import ComposeTarget, _published, compose_cli  # noqa: E402
from pagerdrill.targets.local import LocalTarget  # noqa: E402
from pagerdrill.targets.roles import RoleResolver  # noqa: E402
from pagerdrill.workspace import load_workspace  # noqa: E402

BUDGET_OVERHEAD = 0.10


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def p95_ms(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1)


def timed(fn: Callable[[], object]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ...: {done.stderr.strip()[-400:]}")


def wait_healthy_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 in {timeout} s")


def wait_clean(target, service: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = target.service_status(service)
        if s.state == "running" and s.health == "healthy":
            return
        time.sleep(0.1)
    raise RuntimeError(f"{service} not healthy again")


class Stack:
    """One target with the context faults need, and the names of its roles."""

    def __init__(self, target, label: str):
        self.target = target
        self.label = label
        self.roles = RoleResolver(role_bindings(target.workspace), target)
        self.ctx = FaultContext(target=target, roles=self.roles)
        self.api = self.roles.service("api")
        self.cache = self.roles.service("cache")
        self.password_env = self.roles.admin_password_env("api")


def bench_stop(stack: Stack, runs: int, raw: dict[str, Callable[[], None]]) -> dict:
    fault = StopService("stop-api", "api", StopService.Params(), stack.ctx)
    ways: dict[str, list[float]] = {"pagerdrill": [], **{k: [] for k in raw}}
    for _ in range(runs):
        for way in ways:
            wait_clean(stack.target, stack.api)
            undo = fault.prepare()
            ways[way].append(timed(fault.inject if way == "pagerdrill" else raw[way]))
            if stack.target.service_status(stack.api).state == "running":
                raise RuntimeError(f"{way}: api still running after the stop")
            fault.revert(undo)
            time.sleep(0.3)
    return ways


def bench_flush(stack: Stack, runs: int, raw: dict[str, Callable[[], None]]) -> dict:
    import redis

    fault = RedisCommand("flushdb", "cache", RedisCommandParams(command=["FLUSHDB"]), stack.ctx)
    client = redis.Redis.from_url(stack.roles.redis_url("cache"), socket_timeout=2)
    ways: dict[str, list[float]] = {"pagerdrill": [], **{k: [] for k in raw}}
    try:
        for run_no in range(runs):
            for way in ways:
                key = f"pagerdrill-bench:{os.getpid()}:{run_no}:{way}"
                client.set(key, "1")
                ways[way].append(timed(fault.inject if way == "pagerdrill" else raw[way]))
                if client.exists(key):
                    raise RuntimeError(f"{way}: the marker survived FLUSHDB")
                time.sleep(0.2)
    finally:
        client.close()
    return ways


def bench_restart_env(stack: Stack, runs: int, raw: dict[str, Callable[[], None]]) -> dict:
    params = RestartWithEnvParams(env_from_binding={"admin_password_env": "bench-wrong"})
    fault = RestartWithEnv("bad-password", "api", params, stack.ctx)
    ways: dict[str, list[float]] = {"pagerdrill": [], **{k: [] for k in raw}}
    for _ in range(runs):
        for way in ways:
            wait_clean(stack.target, stack.api)
            undo = fault.prepare()
            ways[way].append(timed(fault.inject if way == "pagerdrill" else raw[way]))
            if way == "pagerdrill":
                restore_env(stack.target, undo)
            else:
                stack.target.restart(stack.api, reset_env=True)
            time.sleep(0.3)
    return ways


def compose_raw(stack: Stack, env: dict[str, str], files: list[Path]) -> dict[str, dict]:
    target: ComposeTarget = stack.target
    base = [*compose_cli(), "-p", target.project]
    for f in files:
        base += ["-f", str(f)]
    api_id = target._primary(stack.api)["Id"]
    cache = target._primary(stack.cache)
    password = target.workspace.config.roles["cache"].password or ""
    inner_port = str(_published(cache)[0][0])  # the port Redis listens on in its container
    redis_cli = ["redis-cli", "-p", inner_port, "-a", password, "--no-auth-warning", "FLUSHDB"]
    health = target.service_endpoints(stack.api)["health"]

    def recreate() -> None:
        run(
            [*base, "up", "-d", "--no-deps", "--force-recreate", stack.api],
            env | {stack.password_env: "bench-wrong"},
        )
        wait_healthy_http(health)

    def docker_stop() -> None:
        run(["docker", "stop", "-t", str(target.config.stop_timeout_s), api_id], env)

    return {
        "stop": {
            "docker stop": docker_stop,
            "compose stop": lambda: run([*base, "stop", stack.api], env),
        },
        "flush": {
            "docker exec": lambda: run(["docker", "exec", cache["Id"], *redis_cli], env),
            "compose exec": lambda: run([*base, "exec", "-T", stack.cache, *redis_cli], env),
        },
        "restart_env": {"compose up --force-recreate + health": recreate},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stack", choices=("reference", "foreign"), default="reference")
    args = parser.parse_args()
    env = docker_env() | free_ports()
    files = [REFERENCE if args.stack == "reference" else FOREIGN]
    roles = reference_roles() if args.stack == "reference" else foreign_roles()
    if args.stack == "reference":
        roles["cache"]["password"] = roles["queue"]["password"] = "cache"
    project = project_name("bench")
    results: dict = {"runs": args.runs, "stack": args.stack, "machine": platform.machine()}
    with tempfile.TemporaryDirectory() as tmp:
        root = write_compose_workspace(Path(tmp) / "compose", project, files, roles)
        compose = ComposeTarget(load_workspace(root), environ=env)
        local = LocalTarget(load_workspace(write_workspace(Path(tmp) / "local")))
        try:
            t0 = time.monotonic()
            compose.up()
            results["compose_up_s"] = round(time.monotonic() - t0, 2)
            local.up()
            cstack, lstack = Stack(compose, "compose"), Stack(local, "local")
            raw = compose_raw(cstack, env, files)
            for name, bench in (
                ("stop", bench_stop),
                ("flush", bench_flush),
                ("restart_env", bench_restart_env),
            ):
                on_compose = bench(cstack, args.runs, raw[name])
                on_local = bench(lstack, args.runs, {})["pagerdrill"]
                results[name] = {
                    "compose": {
                        way: {"median_ms": median_ms(v), "p95_ms": p95_ms(v)}
                        for way, v in on_compose.items()
                    },
                    "local": {"median_ms": median_ms(on_local), "p95_ms": p95_ms(on_local)},
                }
        finally:
            local.down()
            teardown(project, files, env, root)
    print(
        f"compose bench: {args.stack} stack, {args.runs} runs each, compose up "
        f"{results['compose_up_s']} s"
    )
    print(f"{'fault':<12} {'way':<40} {'median':>9} {'p95':>9}")
    failed = False
    for name in ("stop", "flush", "restart_env"):
        row = results[name]
        ours = row["compose"]["pagerdrill"]["median_ms"]
        raws = {w: s["median_ms"] for w, s in row["compose"].items() if w != "pagerdrill"}
        fastest = min(raws.values())
        overhead = ours / fastest - 1
        row["overhead_vs_fastest_raw"] = round(overhead, 3)
        for way, stats in row["compose"].items():
            print(
                f"{name:<12} {'compose: ' + way:<40} {stats['median_ms']:>7} ms "
                f"{stats['p95_ms']:>7} ms"
            )
        print(
            f"{name:<12} {'local: pagerdrill':<40} {row['local']['median_ms']:>7} ms "
            f"{row['local']['p95_ms']:>7} ms"
        )
        verdict = "PASS" if overhead <= BUDGET_OVERHEAD else "FAIL"
        failed |= verdict == "FAIL"
        print(
            f"{'':<12} overhead over the fastest raw command: {overhead:+.1%} "
            f"(budget ≤ +{BUDGET_OVERHEAD:.0%}): {verdict}"
        )
    save_results("compose_bench", results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
