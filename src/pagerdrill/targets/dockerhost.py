"""Which Docker Engine a compose target would drive, and whether pagerdrill may.

pagerdrill breaks containers on purpose, so it drills only the engine on this
machine unless told otherwise: a `DOCKER_HOST` over TCP or SSH (to any address,
loopback included: a TCP socket may be forwarded anywhere) or a docker context
other than `default` is refused without `--allow-remote-docker`. A unix socket is
local. The decision is a pure function of the environment and the docker CLI's
configured context; nothing here opens a connection.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pagerdrill.errors import BadInputError

LOCAL_SCHEMES = ("unix", "npipe")
ALLOW_FLAG = "--allow-remote-docker"


@dataclass(frozen=True)
class DockerHost:
    """Where the docker SDK and the compose CLI would connect, and what we make of it."""

    local: bool
    allowed: bool
    where: str
    """What decided it, for people: `DOCKER_HOST=ssh://build-box`, `docker context 'prod'`."""
    base_url: str | None = None
    """The engine's address when DOCKER_HOST gives it (None: the default socket)."""
    context: str | None = None
    """A docker context other than `default`, when one is in use."""

    def refusal(self) -> str:
        return (
            f"refusing to drill a Docker Engine that is not local ({self.where}): pagerdrill "
            "stops, recreates and breaks containers on purpose, so it drives only this "
            f"machine's engine. Pass {ALLOW_FLAG} if you mean that engine, or unset it "
            "(`unset DOCKER_HOST`, `docker context use default`)."
        )


def _shown(host: str) -> str:
    """DOCKER_HOST as safe to print: scheme, host and port, never credentials."""
    parts = urllib.parse.urlsplit(host)
    if not parts.scheme or not parts.hostname:
        return host if "@" not in host else host.rsplit("@", 1)[1]
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.username and parts.scheme == "ssh":
        netloc = f"{parts.username}@{netloc}"
    return f"{parts.scheme}://{netloc}"


def decide_docker_host(
    environ: Mapping[str, str], configured_context: str | None, allow_remote: bool
) -> DockerHost:
    """The decision, from `environ` (DOCKER_HOST, DOCKER_CONTEXT) and the context the
    docker CLI's config file names (`currentContext`; None: none set)."""
    host = (environ.get("DOCKER_HOST") or "").strip()
    env_context = (environ.get("DOCKER_CONTEXT") or "").strip()
    context = env_context or (configured_context or "").strip() or "default"
    if host:
        scheme = host.split("://", 1)[0].lower() if "://" in host else ""
        if scheme in LOCAL_SCHEMES:
            if env_context and env_context != "default":
                # the SDK would follow DOCKER_HOST and the compose CLI may follow the
                # context: two engines, one of them perhaps remote
                where = f"DOCKER_HOST={_shown(host)} and DOCKER_CONTEXT={env_context}"
                return DockerHost(False, allow_remote, where, host, env_context)
            return DockerHost(True, True, f"DOCKER_HOST={_shown(host)}", host)
        return DockerHost(False, allow_remote, f"DOCKER_HOST={_shown(host)}", host)
    if context != "default":
        how = "DOCKER_CONTEXT" if env_context else "the docker CLI's current context"
        return DockerHost(False, allow_remote, f"docker context '{context}' ({how})", None, context)
    return DockerHost(True, True, "the default socket (unix:///var/run/docker.sock)")


def configured_context(environ: Mapping[str, str] | None = None) -> str | None:
    """`currentContext` from the docker CLI's config.json ($DOCKER_CONFIG, else ~/.docker)."""
    environ = os.environ if environ is None else environ
    folder = environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = data.get("currentContext") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def check_docker_host(
    allow_remote: bool = False, environ: Mapping[str, str] | None = None
) -> DockerHost:
    """The engine to use, or BadInputError (exit 2) when it is not local and not allowed."""
    environ = os.environ if environ is None else environ
    decision = decide_docker_host(environ, configured_context(environ), allow_remote)
    if not decision.allowed:
        raise BadInputError(decision.refusal())
    return decision
