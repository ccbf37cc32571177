"""Helpers for the compose tests: a real Docker Engine, throw-away compose projects.

Each project gets its own name and free loopback ports, and is always taken down with
`down -v`, on failure too. When no engine answers, the tests skip with the reason
(PAGERDRILL_DOCKER_UNAVAILABLE, or .ci/.docker-unavailable, as .ci/docker-setup
wrote it); where CI said the engine is ready (PAGERDRILL_DOCKER_AVAILABLE=1) a missing
engine or image fails them instead, so they never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from pagerdrill.refstack.spec import REFERENCE_SIGNALS
from pagerdrill.targets.compose import ComposeTarget, compose_cli
from pagerdrill.targets.local import _free_port
from pagerdrill.workspace import load_workspace

FOREIGN = REPO / "tests" / "fixtures" / "foreign-compose" / "docker-compose.yml"
REFERENCE = REPO / "compose" / "docker-compose.yml"
HEALTH = REPO / "tests" / "fixtures" / "health-compose" / "docker-compose.yml"
PORT_VARS = ("API_PORT", "RT_PORT", "GAME_PORT", "TRAFFIC_PORT", "REDIS_PORT", "DB_PORT")
IMAGE_VARS = {
    "PAGERDRILL_REFSTACK_IMAGE": "pagerdrill-refstack:local",
    "REDIS_IMAGE": "redis:7-alpine",
}


def _ci_docker_env() -> dict[str, str]:
    """The export lines .ci/docker-setup wrote for this machine, if any."""
    path = REPO / ".ci" / ".docker-env"
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            words = shlex.split(value) or [""]
            out[key.strip()] = words[0]
    return out


def docker_env() -> dict[str, str]:
    """os.environ, with what .ci/docker-setup found for this machine filled in."""
    env = dict(os.environ)
    for key, value in _ci_docker_env().items():
        env.setdefault(key, value)
    return env


def _unavailable(reason: str) -> None:
    if docker_env().get("PAGERDRILL_DOCKER_AVAILABLE") == "1":
        pytest.fail(f"CI set the Docker Engine up, but: {reason}")
    pytest.skip(f"compose tests need a Docker Engine: {reason}")


def require_engine() -> dict[str, str]:
    """The environment to run compose projects with; skips (or fails in CI) without an
    engine, a compose CLI or the images."""
    env = docker_env()
    # what .ci/run passes on when .ci/docker-setup could not make an engine
    reason = os.environ.get("PAGERDRILL_DOCKER_UNAVAILABLE", "").strip()
    if reason:
        pytest.skip(f"compose tests need a Docker Engine: {reason}")
    marker = REPO / ".ci" / ".docker-unavailable"
    if marker.is_file() and env.get("PAGERDRILL_DOCKER_AVAILABLE") != "1":
        _unavailable(marker.read_text().strip() or "(.ci/.docker-unavailable)")
    if not shutil.which("docker"):
        _unavailable("no docker client on PATH")
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    if info.returncode != 0:
        _unavailable(f"no Docker Engine answers `docker info`: {info.stderr.strip()[:300]}")
    try:
        compose_cli()
    except Exception as exc:
        _unavailable(str(exc))
    for var, default in IMAGE_VARS.items():
        image = env.setdefault(var, default)
        found = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
        )
        if found.returncode != 0:
            _unavailable(
                f"image {image} ({var}) is not on this engine (.ci/docker-setup builds it)"
            )
    return env


def project_name(kind: str) -> str:
    return f"pdtest-{kind}-{os.getpid()}-{secrets.token_hex(2)}"


def free_ports() -> dict[str, str]:
    taken: set[int] = set()
    ports = {}
    for var in PORT_VARS:
        port = _free_port(taken)
        taken.add(port)
        ports[var] = str(port)
    return ports


def write_compose_workspace(root: Path, project: str, files: list[Path], roles: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "target": "compose",
        "compose": {
            "project": project,
            "files": [str(f) for f in files],
            "startup_timeout_s": 120,
        },
        "roles": roles,
        # both projects run the reference services: their signals are read the same way
        "signals": REFERENCE_SIGNALS,
    }
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    shutil.copy2(REPO / "checklist.yaml", root / "checklist.yaml")
    return root


def teardown(project: str, files: list[Path], env: dict[str, str], root: Path) -> None:
    """`down -v` of the project, whatever state it and pagerdrill's files are in."""
    argv = [*compose_cli(), "-p", project]
    for path in files:
        argv += ["-f", str(path)]
    override = root / ".pagerdrill" / f"compose-{project}.override.yml"
    if override.exists():
        argv += ["-f", str(override)]
    # proxy containers of the http-proxy fault carry no compose labels: by their own
    proxies = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.pagerdrill.proxy-project={project}"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    ).stdout.split()  # fmt: skip
    if proxies:
        subprocess.run(["docker", "rm", "-f", *proxies], env=env, capture_output=True,
                       timeout=120, check=False)  # fmt: skip
    subprocess.run(
        [*argv, "down", "-v", "--remove-orphans", "-t", "2"],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )


@dataclass(frozen=True)
class Spec:
    root: Path
    kind: str
    files: list[Path]
    roles: dict


@contextlib.contextmanager
def compose_projects(*specs: Spec) -> Iterator[list[ComposeTarget]]:
    """Compose projects brought up side by side for the tests and always taken down
    (`down -v`), whatever happened."""
    engine_env = require_engine()
    made: list[tuple[ComposeTarget, Spec, dict[str, str]]] = []
    for spec in specs:
        env = engine_env | free_ports()
        project = project_name(spec.kind)
        write_compose_workspace(spec.root, project, spec.files, spec.roles)
        # Only this first `up` sees the ports and images: pagerdrill records the compose
        # variables, and the CLI commands the tests run later must find them on their own.
        made.append((ComposeTarget(load_workspace(spec.root), environ=env), spec, env))
    try:
        with ThreadPoolExecutor(max_workers=len(made)) as pool:
            for done in [pool.submit(target.up) for target, _, _ in made]:
                done.result()
        yield [target for target, _, _ in made]
    finally:
        for target, spec, env in made:
            teardown(target.project, spec.files, env, spec.root)


def reference_roles() -> dict:
    """The repo's own bindings: the reference stack's names, in containers."""
    return {
        name: binding.model_dump(exclude_none=True)
        for name, binding in load_workspace(REPO).config.roles.items()
    }


def foreign_roles() -> dict:
    """The foreign project's bindings: another team's names, password and queue."""
    return {
        "api": {"service": "backend", "admin_password_env": "ADMIN_DEFAULT_PASSWORD"},
        "cache": {"service": "sessions-redis", "password": "s3ssions-only"},
        "queue": {
            "service": "sessions-redis",
            "password": "s3ssions-only",
            "queue": "settlements_v2",
        },
        "producer": {"service": "worker"},
        "consumer": {"service": "backend"},  # backend takes the settlements off the queue
        # gateway has no healthcheck: its binding says where to ask (a path on its address)
        "rt": {"service": "gateway", "health_url": "/healthz"},
        "traffic": {"service": "smoke"},
    }


def container_env(target: ComposeTarget, service: str) -> list[str]:
    """The container's environment, as docker inspect shows it."""
    attrs = target._primary(service)
    assert attrs is not None, f"{service} has no container"
    return sorted(attrs["Config"]["Env"])
