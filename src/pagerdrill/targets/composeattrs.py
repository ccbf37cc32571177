"""What the compose target reads off the engine: the compose labels, a container's
environment, state, command and published ports, and the variables compose files
interpolate. Pure functions of `docker inspect` output and file text."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pagerdrill.errors import StackError
from pagerdrill.targets.base import State

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
NUMBER_LABEL = "com.docker.compose.container-number"
OVERRIDES_LABEL = "org.pagerdrill.env-overrides"
"""On a container pagerdrill recreated: the names (never values) of overridden variables."""

FAULT_TOKEN_VAR = "PAGERDRILL_FAULT_TOKEN"
"""A compose file that passes this to its api gets a fresh token at `stack up`."""

STATE_VERSION = 1
POLL_S = 0.1
LOCK_WAIT_S = 120.0
LOG_TAIL = 15
LOOPBACK_BINDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "127.0.0.1": "127.0.0.1",
                  "::": "127.0.0.1", "::1": "[::1]"}  # fmt: skip

_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def compose_variables(texts: Sequence[str]) -> list[str]:
    """The variables compose files interpolate (`$VAR`, `${VAR}`, `${VAR:-x}`; not `$$`)."""
    found: dict[str, None] = {}
    for text in texts:
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for name in _VARIABLE.findall(line.replace("$$", "")):
                found[name] = None
    return list(found)


_cli: list[str] | None = None


def compose_cli() -> list[str]:
    """The compose CLI to use: `docker compose` when the plugin answers, else
    `docker-compose`; $PAGERDRILL_COMPOSE_CLI names another."""
    global _cli
    if _cli is not None:
        return _cli
    chosen = os.environ.get("PAGERDRILL_COMPOSE_CLI", "").strip()
    if chosen:
        _cli = shlex.split(chosen)
        return _cli
    if shutil.which("docker"):
        try:
            probe = subprocess.run(
                ["docker", "compose", "version"], capture_output=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is not None and probe.returncode == 0:
            _cli = ["docker", "compose"]
            return _cli
    if shutil.which("docker-compose"):
        _cli = ["docker-compose"]
        return _cli
    raise StackError(
        "compose",
        "neither `docker compose` (the Compose v2 plugin) nor `docker-compose` is installed; "
        "the compose target needs one of them to recreate a service with another environment",
    )


def _env_dict(attrs: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in (attrs.get("Config") or {}).get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _override_names(labels: Mapping[str, str]) -> list[str]:
    return [n for n in (labels.get(OVERRIDES_LABEL) or "").split(",") if n]


def _state_of(attrs: dict) -> State:
    st = attrs.get("State") or {}
    status = st.get("Status")
    if status == "running":
        return "running"
    if status in ("created", "paused") or (
        status == "exited" and st.get("ExitCode") in (0, 137, 143)
    ):
        return "stopped"  # stopped on purpose (docker stop ends in SIGTERM or SIGKILL)
    return "exited"  # crashed, restarting, dead


def _command_words(attrs: dict) -> list[str]:
    config = attrs.get("Config") or {}
    words: list[str] = []
    for part in (config.get("Entrypoint"), config.get("Cmd")):
        if isinstance(part, list):
            for word in part:
                words.extend(shlex.split(word) if " " in word else [word])
        elif isinstance(part, str):
            words.extend(shlex.split(part))
    return words


def _is_redis(attrs: dict, ports: list[tuple[int, str, int]]) -> bool:
    words = _command_words(attrs)
    image = str((attrs.get("Config") or {}).get("Image") or "")
    return (
        any(Path(w).name == "redis-server" for w in words)
        or image.split("/")[-1].startswith("redis")
        or any(cport == 6379 for cport, _, _ in ports)
    )


def _redis_password(attrs: dict) -> str | None:
    words = _command_words(attrs)
    for i, word in enumerate(words):
        if word == "--requirepass" and i + 1 < len(words):
            return words[i + 1]
    env = _env_dict(attrs)
    return env.get("REDIS_PASSWORD") or None


def _published(attrs: dict) -> list[tuple[int, str, int]]:
    """(container port, loopback host, host port) of each TCP port published on this
    machine's loopback (or on every interface); one per container port, lowest first."""
    out: dict[int, tuple[int, str, int]] = {}
    ports = ((attrs.get("NetworkSettings") or {}).get("Ports")) or {}
    for key, binds in ports.items():
        number, _, proto = key.partition("/")
        if proto != "tcp" or not binds:
            continue
        for bind in binds:
            host = LOOPBACK_BINDS.get(bind.get("HostIp") or "")
            if host is None or not bind.get("HostPort"):
                continue  # another interface's address: give its URL in the role binding
            out.setdefault(int(number), (int(number), host, int(bind["HostPort"])))
    return [out[k] for k in sorted(out)]


def _ports_text(ports: list[tuple[int, str, int]]) -> str:
    return ", ".join(f"{host}:{hport}->{cport}" for cport, host, hport in ports) or "none"


REFERENCE_IMAGE = ("org.pagerdrill.image", "refstack")
"""The label of the reference services' image: they speak HTTP, with /healthz and /metrics."""


def _is_reference(attrs: dict) -> bool:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return labels.get(REFERENCE_IMAGE[0]) == REFERENCE_IMAGE[1]


def _redis_port(attrs: dict) -> int:
    """The port a Redis container listens on inside (`--port N`, else 6379)."""
    words = _command_words(attrs)
    for i, word in enumerate(words):
        if word == "--port" and i + 1 < len(words) and words[i + 1].isdigit():
            return int(words[i + 1])
    return 6379


def _exposed(attrs: dict) -> list[int]:
    """The TCP ports the container exposes (EXPOSE, `expose:`), lowest first."""
    keys = (attrs.get("Config") or {}).get("ExposedPorts") or {}
    return sorted(int(k.partition("/")[0]) for k in keys if k.endswith("/tcp"))


def _names(attrs: dict, service: str) -> set[str]:
    """Every name the container answers to on its networks (service, container, aliases)."""
    names = {service, str(attrs.get("Name") or "").lstrip("/")}
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for net in networks.values():
        names.update((net or {}).get("Aliases") or [])
        names.update((net or {}).get("DNSNames") or [])
    return {n for n in names if n}


def _container_ip(attrs: dict, project: str) -> str | None:
    """The container's address on its project's network (the default one first)."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for name in sorted(networks, key=lambda n: (n != f"{project}_default", n)):
        address = (networks[name] or {}).get("IPAddress")
        if address:
            return address
    return None
