"""The compose target: a team's docker-compose project on this machine's Docker Engine.

Services are the project's containers, found by the compose labels
(`com.docker.compose.project` / `com.docker.compose.service`); every action checks
those labels on the container it is about to touch, so nothing outside the named
project is ever stopped, started, recreated or exec'd into. Stop, start, restart,
exec and logs go through the Docker SDK. A restart with environment overrides
recreates that one service through the compose CLI (`docker compose`, else
`docker-compose`) with an override file, and the recreated container carries a label
naming the overridden variables: the container itself records what was changed, so
`overrides()`, `recover` and a reset work from any process, after any crash.

Compose interpolates `${VAR}` in the compose files from the environment of whoever
runs it. A recreate from another shell (`pagerdrill recover` after a `kill -9`) must
see the same values as the `up` did, or the service would come back on another port
or with other settings; so the values of the variables the files use are recorded in
`<workspace>/.pagerdrill/compose-PROJECT.json` at the first `stack up` (or first
recreate) and every compose command runs with them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, StackError, UnknownServiceError, did_you_mean
from pagerdrill.targets.base import (
    ExecResult,
    Health,
    Progress,
    ServiceStatus,
    State,
)
from pagerdrill.targets.dockerhost import DockerHost, check_docker_host
from pagerdrill.targets.state import (
    ABSENT,
    bad_state_error,
    emit,
    ensure_private_dir,
    read_state,
    stack_lock,
    write_private,
)
from pagerdrill.workspace import Workspace

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


class ComposeTarget:
    """A compose project on the local Docker Engine."""

    name = "compose"

    def __init__(
        self,
        workspace: Workspace,
        *,
        allow_remote_docker: bool = False,
        environ: Mapping[str, str] | None = None,
    ):
        config = workspace.config.compose
        if config is None:
            raise workspace.config_error(
                ("target",), "target is 'compose' but there is no compose: section"
            )
        self.environ: dict[str, str] = dict(os.environ if environ is None else environ)
        # decided before any connection is opened
        self.host: DockerHost = check_docker_host(allow_remote_docker, self.environ)
        self.workspace = workspace
        self.config = config
        self.project = config.project
        self.files = [self._workspace_file(f, ("compose", "files", i)) for i, f in
                      enumerate(config.files)]  # fmt: skip
        self.env_file = (
            self._workspace_file(config.env_file, ("compose", "env_file"))
            if config.env_file
            else None
        )
        self.state_dir = workspace.state_dir
        self.state_path = self.state_dir / f"compose-{self.project}.json"
        self.override_path = self.state_dir / f"compose-{self.project}.override.yml"
        self._client: Any = None
        self._file_services: list[str] | None = None
        self._last_health: dict[str, str] = {}
        self._bound_health = {
            b.service: b.health_url for b in workspace.config.roles.values() if b.health_url
        }
        self._bound_password = {
            b.service: b.password for b in workspace.config.roles.values() if b.password
        }

    def _workspace_file(self, name: str, loc: tuple) -> Path:
        path = Path(name).expanduser()
        path = path if path.is_absolute() else self.workspace.root / path
        if not path.is_file():
            where = ".".join(map(str, loc))
            raise self.workspace.config_error(loc, f"{where}: {path} does not exist")
        return path

    # ------------------------------------------------------------ the engine

    @property
    def client(self) -> Any:
        """The Docker SDK client, connected on first use (never before the host check)."""
        if self._client is None:
            import docker

            try:
                if self.host.context and not self.host.base_url:  # an allowed context
                    from docker.context import ContextAPI

                    ctx = ContextAPI.get_context(self.host.context)
                    if ctx is None:
                        raise BadInputError(f"docker context '{self.host.context}' not found")
                    self._client = docker.DockerClient(
                        base_url=ctx.Host, tls=ctx.TLSConfig, timeout=120
                    )
                else:
                    self._client = docker.from_env(environment=self.environ, timeout=120)
            except docker.errors.DockerException as exc:
                raise StackError(
                    "docker",
                    f"cannot reach the Docker Engine ({self.host.where}): {exc}. "
                    "Is dockerd running (`docker info`)?",
                ) from None
        return self._client

    def _api(self, what: str, service: str, call, *args: Any, **kwargs: Any) -> Any:
        import docker

        try:
            return call(*args, **kwargs)
        except docker.errors.NotFound:
            raise StackError(service, f"{what}: the container is gone (just removed)") from None
        except docker.errors.APIError as exc:
            raise StackError(service, f"{what} failed: {exc.explanation or exc}") from None

    def _containers(self, service: str | None = None) -> list[dict]:
        """This project's containers (one-off `run` containers excluded), by service and
        number; labels re-checked here, not only trusted to the engine's filter."""
        labels = [f"{PROJECT_LABEL}={self.project}"]
        if service is not None:
            labels.append(f"{SERVICE_LABEL}={service}")
        rows = self._api(
            "list containers",
            service or self.project,
            self.client.api.containers,
            all=True,
            filters={"label": labels},
        )
        mine = [
            r
            for r in rows
            if (r.get("Labels") or {}).get(PROJECT_LABEL) == self.project
            and (r.get("Labels") or {}).get(ONEOFF_LABEL, "False") != "True"
            and (service is None or r["Labels"].get(SERVICE_LABEL) == service)
        ]

        def order(r: dict) -> tuple:
            number = r["Labels"].get(NUMBER_LABEL, "0")
            return (r["Labels"].get(SERVICE_LABEL, ""), r.get("State") != "running",
                    int(number) if number.isdigit() else 0, -r.get("Created", 0))  # fmt: skip

        return sorted(mine, key=order)

    def _inspect(self, container_id: str, service: str) -> dict:
        attrs = self._api("inspect", service, self.client.api.inspect_container, container_id)
        return self._checked(attrs, service)

    def _inspect_or_none(self, container_id: str, service: str) -> dict | None:
        """Inspect, or None for a container removed since it was listed (compose recreates
        and `down` remove containers while we look)."""
        import docker

        try:
            attrs = self.client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise StackError(service, f"inspect failed: {exc.explanation or exc}") from None
        return self._checked(attrs, service)

    def _checked(self, attrs: dict, service: str) -> dict:
        """Refuse a container that is not `service` of this project (checked right before
        each action: a name or an id alone may since belong to something else)."""
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(PROJECT_LABEL) != self.project or labels.get(SERVICE_LABEL) != service:
            raise StackError(
                service,
                f"container {attrs.get('Name', '?').lstrip('/')} is not service {service} of "
                f"compose project {self.project} (its labels say project "
                f"{labels.get(PROJECT_LABEL)!r}, service {labels.get(SERVICE_LABEL)!r}); "
                "not touching it",
            )
        return attrs

    def _primary(self, service: str) -> dict | None:
        """The inspected container that stands for `service`: a running one first."""
        for _ in range(5):
            rows = self._containers(service)
            if not rows:
                return None
            attrs = self._inspect_or_none(rows[0]["Id"], service)
            if attrs is not None:
                return attrs
        raise StackError(service, "its containers keep disappearing while being looked at")

    # -------------------------------------------------------------- services

    def _read_files(self) -> list[str]:
        from pagerdrill.workspace.yamlfile import read_text

        return [read_text(p) for p in self.files]

    def services(self) -> list[str]:
        """The services the compose files declare, then any other the project runs."""
        if self._file_services is None:
            from pagerdrill.workspace.yamlfile import load_yaml

            names: dict[str, None] = {}
            for path in self.files:
                data, _ = load_yaml(path)
                declared = data.get("services") if isinstance(data, dict) else None
                if isinstance(declared, dict):
                    names.update(dict.fromkeys(str(k) for k in declared))
            self._file_services = list(names)
        found = list(self._file_services)
        if not found:  # files we could not read as compose: what runs is all we know
            found = list(dict.fromkeys(r["Labels"][SERVICE_LABEL] for r in self._containers()))
        return found

    def _known(self, service: str) -> None:
        names = self.services()
        if service not in names:
            close = did_you_mean(service, names)
            hint = f" (did you mean '{close}'?)" if close is not None else ""
            raise UnknownServiceError(
                f"unknown service '{service}' in compose project {self.project}{hint}; "
                f"it has: {', '.join(names) or 'none'}"
            )

    def endpoints_of(self, attrs: dict, service: str) -> dict[str, str]:
        """Where a container answers on this machine: its published loopback ports."""
        ports = _published(attrs)
        if not ports:
            return {}
        if _is_redis(attrs, ports):
            _, host, port = next((p for p in ports if p[0] == 6379), ports[0])
            password = self._bound_password.get(service) or _redis_password(attrs)
            auth = f":{urllib.parse.quote(password, safe='')}@" if password else ""
            return {"redis": f"redis://{auth}{host}:{port}/0"}
        _, host, port = ports[0]
        base = f"http://{host}:{port}"
        return {
            "http": base,
            "health": self._bound_health.get(service) or f"{base}/healthz",
            "metrics": f"{base}/metrics",
        }

    def service_endpoints(self, service: str) -> dict[str, str]:
        self._known(service)
        attrs = self._primary(service)
        return self.endpoints_of(attrs, service) if attrs else {}

    def _health(self, attrs: dict, service: str, state: State) -> Health:
        """Docker's healthcheck when it has a verdict; while it has none yet (a fresh
        container) the service's own health endpoint, so a start is seen when it
        happens rather than at the healthcheck's next interval."""
        if state != "running":
            return "unknown" if state == "stopped" else "unhealthy"
        docker_health = ((attrs.get("State") or {}).get("Health") or {}).get("Status")
        if docker_health in ("healthy", "unhealthy"):
            self._last_health[service] = f"docker healthcheck: {docker_health}"
            return docker_health
        if docker_health is None and service not in self._bound_health:
            self._last_health[service] = "running (no healthcheck)"
            return "healthy"  # no healthcheck, no health URL: running is all there is
        return "healthy" if self._answers(attrs, service) else "unhealthy"

    def _answers(self, attrs: dict, service: str, timeout: float = 0.5) -> bool:
        endpoints = self.endpoints_of(attrs, service)
        if "redis" in endpoints:
            import redis

            try:
                with redis.Redis.from_url(
                    endpoints["redis"], socket_timeout=timeout, socket_connect_timeout=timeout
                ) as client:
                    client.ping()
            except (redis.RedisError, OSError) as exc:
                self._last_health[service] = f"Redis PING: {exc}"
                return False
            self._last_health[service] = "Redis PING answered"
            return True
        url = endpoints.get("health")
        if not url:
            self._last_health[service] = "health: starting (no published port to check)"
            return False
        parts = urllib.parse.urlsplit(url)
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        try:
            conn.request("GET", parts.path or "/")
            response = conn.getresponse()
            response.read(4096)
        except (OSError, http.client.HTTPException) as exc:
            self._last_health[service] = f"{url}: no answer ({exc})"
            return False
        finally:
            conn.close()
        self._last_health[service] = f"{url}: HTTP {response.status}"
        return 200 <= response.status < 300

    def _status_from(self, attrs: dict | None, service: str) -> ServiceStatus:
        if attrs is None:
            return ServiceStatus(name=service, state="absent", health="unknown")
        state = _state_of(attrs)
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        return ServiceStatus(
            name=service,
            state=state,
            health=self._health(attrs, service, state),
            pid=((attrs.get("State") or {}).get("Pid") or None) if state == "running" else None,
            endpoints=self.endpoints_of(attrs, service),
            env_overrides=tuple(sorted(_override_names(labels))),
        )

    def service_status(self, service: str) -> ServiceStatus:
        self._known(service)
        return self._status_from(self._primary(service), service)

    def status(self) -> list[ServiceStatus]:
        present = {r["Labels"][SERVICE_LABEL] for r in self._containers()}
        names = self.services()
        names += sorted(present - set(names))
        return [self._status_from(self._primary(s) if s in present else None, s) for s in names]

    def is_up(self) -> bool:
        """Whether any container of the project runs."""
        return any(r.get("State") == "running" for r in self._containers())

    def environment(self, service: str) -> dict[str, str]:
        """The environment the service's container runs with (overrides included)."""
        self._known(service)
        attrs = self._primary(service)
        if attrs is None:
            raise StackError(service, "has no container (run `pagerdrill stack up`)")
        return _env_dict(attrs)

    def overrides(self, service: str) -> dict[str, str]:
        """Variables a pagerdrill recreate overrode on the service's container, read from
        the container itself (its label names them, its environment holds the values)."""
        self._known(service)
        attrs = self._primary(service)
        if attrs is None:
            return {}
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        env = _env_dict(attrs)
        return {name: env[name] for name in _override_names(labels) if name in env}

    # -------------------------------------------------------- state and lock

    def _ensure_state_dir(self) -> None:
        ensure_private_dir(self.state_dir)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        busy = f"another pagerdrill command is changing compose project {self.project}"
        return stack_lock(self.state_dir, f"compose-{self.project}.lock", LOCK_WAIT_S, busy)

    def _write_atomic(self, path: Path, text: str) -> None:
        write_private(path, text, path.with_name(f".{path.name}.{os.getpid()}.tmp"))

    def _read_state(self) -> dict[str, Any] | None:
        state = read_state(self.state_path, self._bad_state)
        if state is ABSENT:
            return None
        interpolation = state.get("interpolation") if isinstance(state, dict) else None
        if not isinstance(interpolation, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str))
            for k, v in interpolation.items()
        ):
            raise self._bad_state("expected an object with an 'interpolation' object")
        return state

    def _bad_state(self, why: str) -> StackError:
        return bad_state_error(
            "compose",
            self.state_path,
            why,
            "remove it, and pagerdrill records the compose variables again from this shell",
        )

    def _record(self, fresh: bool) -> dict[str, Any]:
        """The compose variables' values this project runs with: recorded from this
        process's environment when the project is (re)created, read back otherwise."""
        state = None if fresh else self._read_state()
        if state is not None:
            return state
        names = compose_variables(self._read_files())
        interpolation = {name: self.environ.get(name) for name in names}
        if fresh and FAULT_TOKEN_VAR in interpolation and not interpolation[FAULT_TOKEN_VAR]:
            # the api's fault-injection route answers only to holders of this token
            interpolation[FAULT_TOKEN_VAR] = secrets.token_hex(16)
        state = {
            "version": STATE_VERSION,
            "project": self.project,
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "interpolation": interpolation,
        }
        self._write_atomic(self.state_path, json.dumps(state, indent=2, sort_keys=True) + "\n")
        return state

    # ------------------------------------------------------------ compose CLI

    def _compose_env(self, state: dict[str, Any]) -> dict[str, str]:
        env = dict(self.environ)
        for name, value in state["interpolation"].items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _compose_argv(self, args: Sequence[str]) -> list[str]:
        argv = [*compose_cli(), "-p", self.project]
        for path in self.files:
            argv += ["-f", str(path)]
        if self.override_path.exists():
            argv += ["-f", str(self.override_path)]
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        return argv + list(args)

    def _compose(self, state: dict[str, Any], args: Sequence[str], timeout: float) -> str:
        argv = self._compose_argv(args)
        shown = " ".join([*compose_cli(), "-p", self.project, *args])
        try:
            done = subprocess.run(
                argv,
                env=self._compose_env(state),
                cwd=self.workspace.root,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StackError("compose", f"`{shown}` did not finish in {timeout:g} s") from None
        except OSError as exc:
            raise StackError("compose", f"cannot run `{shown}`: {exc.strerror}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-LOG_TAIL:]
            raise StackError("compose", f"`{shown}` failed with exit code {done.returncode}", tail)
        return done.stdout

    def _write_overrides(self, wanted: Mapping[str, Mapping[str, str]]) -> None:
        """The override file: each service's overridden variables, and a label naming
        them. No file when nothing is overridden."""
        services = {s: dict(env) for s, env in wanted.items() if env}
        if not services:
            self.override_path.unlink(missing_ok=True)
            return
        import yaml

        from pagerdrill.workspace.yamlfile import load_yaml

        doc: dict[str, Any] = {}
        base, _ = load_yaml(self.files[0])
        if isinstance(base, dict) and "version" in base:
            doc["version"] = str(base["version"])  # docker-compose 1.x wants them equal
        doc["services"] = {
            service: {
                # compose interpolates override files too: a literal $ is written $$
                "environment": {k: v.replace("$", "$$") for k, v in sorted(env.items())},
                "labels": {OVERRIDES_LABEL: ",".join(sorted(env))},
            }
            for service, env in sorted(services.items())
        }
        header = (
            "# Written by pagerdrill: environment overrides of a drill in progress.\n"
            "# `pagerdrill recover` (or `pagerdrill stack restart SERVICE --reset-env`) puts\n"
            "# each service back to its own environment and removes this file.\n"
        )
        self._write_atomic(self.override_path, header + yaml.safe_dump(doc, sort_keys=False))

    # ---------------------------------------------------------------- waiting

    def _wait_healthy(
        self,
        services: Sequence[str],
        progress: Progress | None,
        t0: float,
        *,
        emitted: set[tuple[str, str]] | None = None,
        until: Any = None,
    ) -> None:
        """Wait until every service runs and is healthy, each within the timeout.
        `until` (a Popen) keeps the wait going while the compose CLI still works."""
        timeout = self.config.startup_timeout_s
        emitted = set() if emitted is None else emitted
        pending = list(services)
        # the timeout runs from when the compose CLI is done (it waits for dependencies)
        clock_from = time.monotonic() if until is None else None
        while True:
            cli_done = until is None or until.poll() is not None
            if until is not None and cli_done:
                if until.returncode != 0:
                    return  # the caller reports the compose CLI's own error
                clock_from = clock_from or time.monotonic()
            for service in list(pending):
                status = self.service_status(service)
                if status.state == "running":
                    emit(progress, service, "starting", t0, emitted)
                if status.state == "running" and status.health == "healthy":
                    emit(progress, service, "healthy", t0, emitted)
                    pending.remove(service)
                elif status.state == "exited" and cli_done:
                    emit(progress, service, "failed", t0, emitted)
                    raise StackError(service, "exited during start", self.logs(service, LOG_TAIL))
            if not pending and cli_done:
                return
            if clock_from is not None and time.monotonic() - clock_from > timeout:
                service = pending[0]
                emit(progress, service, "failed", t0, emitted)
                last = self._last_health.get(service, "no answer")
                raise StackError(
                    service,
                    f"did not become healthy within {timeout:g} s (last check: {last}); its "
                    "container is left as it is for you to inspect",
                    self.logs(service, LOG_TAIL),
                )
            time.sleep(POLL_S)

    # ------------------------------------------------------------ operations

    def up(self, progress: Progress | None = None) -> list[ServiceStatus]:
        """`compose up -d` for the whole project, then wait until every service is healthy."""
        t0 = time.monotonic()
        with self._locked():
            existing = self._containers()
            fresh = not existing
            state = self._record(fresh)
            emitted: set[tuple[str, str]] = set()
            for status in self.status():
                if status.state == "running" and status.health == "healthy":
                    emit(progress, status.name, "running", t0, emitted)
                    emitted.add(("starting", status.name))
                    emitted.add(("healthy", status.name))
            # keep the overrides of a drill in progress (never undo one behind its back)
            self._write_overrides({s: self.overrides(s) for s in self.services()})
            argv = self._compose_argv(["up", "-d"])
            proc = subprocess.Popen(
                argv,
                env=self._compose_env(state),
                cwd=self.workspace.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            output: list[str] = []
            reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
            reader.start()
            try:
                self._wait_healthy(self.services(), progress, t0, emitted=emitted, until=proc)
                proc.wait()
                reader.join(5)
                if proc.returncode != 0:
                    tail = [line.rstrip() for line in output][-LOG_TAIL:]
                    raise StackError(
                        "compose", f"`compose up -d` failed with exit code {proc.returncode}", tail
                    )
            except BaseException:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)
                if fresh:  # leave nothing half-up that this call created
                    with contextlib.suppress(StackError):
                        self._compose(state, ["down"], timeout=300)
                    self.state_path.unlink(missing_ok=True)
                raise
        return self.status()

    def down(self, progress: Progress | None = None) -> None:
        """`compose down`: the project's containers and networks go; named volumes stay."""
        t0 = time.monotonic()
        with self._locked():
            state = self._read_state() or self._record(fresh=False)
            present = list(dict.fromkeys(r["Labels"][SERVICE_LABEL] for r in self._containers()))
            for service in reversed(present):
                emit(progress, service, "stopping", t0)
            self._compose(state, ["down"], timeout=self.config.startup_timeout_s + 300)
            for service in reversed(present):
                emit(progress, service, "stopped", t0)
            self.override_path.unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)

    def stop(self, service: str) -> None:
        self._known(service)
        with self._locked():
            for row in self._containers(service):
                attrs = self._inspect(row["Id"], service)
                if (attrs.get("State") or {}).get("Running"):
                    self._api(
                        "stop",
                        service,
                        self.client.api.stop,
                        attrs["Id"],
                        timeout=self.config.stop_timeout_s,
                    )

    def start(self, service: str, progress: Progress | None = None) -> None:
        """Start the service's stopped containers (create it if it has none) and wait
        until it is healthy."""
        t0 = time.monotonic()
        self._known(service)
        with self._locked():
            rows = self._containers(service)
            if not rows:
                self._compose(self._record(fresh=False), ["up", "-d", "--no-deps", service],
                              timeout=self.config.startup_timeout_s + 300)  # fmt: skip
            for row in rows:
                attrs = self._inspect(row["Id"], service)
                state = attrs.get("State") or {}
                if state.get("Paused"):
                    self._api("unpause", service, self.client.api.unpause, attrs["Id"])
                elif not state.get("Running"):
                    self._api("start", service, self.client.api.start, attrs["Id"])
            self._wait_healthy([service], progress, t0)

    def restart(
        self,
        service: str,
        env: Mapping[str, str] | None = None,
        *,
        reset_env: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """Restart the service. With `env`, recreate it with those variables overridden
        (they stay until `reset_env`); `reset_env` recreates it with its own environment
        (plus `env`, if given)."""
        t0 = time.monotonic()
        self._known(service)
        with self._locked():
            if not env and not reset_env:
                rows = self._containers(service)
                if not rows:
                    raise StackError(service, "has no container (run `pagerdrill stack up`)")
                for row in rows:
                    attrs = self._inspect(row["Id"], service)
                    self._api(
                        "restart",
                        service,
                        self.client.api.restart,
                        attrs["Id"],
                        timeout=self.config.stop_timeout_s,
                    )
                self._wait_healthy([service], progress, t0)
                return
            wanted = ({} if reset_env else self.overrides(service)) | dict(env or {})
            self._recreate(service, wanted, progress, t0)

    def _recreate(
        self, service: str, wanted: dict[str, str], progress: Progress | None, t0: float
    ) -> None:
        state = self._record(fresh=False)
        before = self._primary(service)
        ports_before = _published(before) if before else None
        overrides = {s: self.overrides(s) for s in self.services() if s != service}
        overrides[service] = wanted
        self._write_overrides(overrides)
        try:
            self._compose(
                state,
                ["up", "-d", "--no-deps", "--force-recreate", service],
                timeout=self.config.startup_timeout_s + 300,
            )
        except BaseException:
            # the file must say what the containers run, or the next compose command
            # would apply an override that never took
            self._write_overrides({s: self.overrides(s) for s in self.services()})
            raise
        after = self._primary(service)
        if ports_before and after is not None and _published(after) != ports_before:
            raise StackError(
                service,
                f"came back on other host ports ({_ports_text(_published(after))}, was "
                f"{_ports_text(ports_before)}): the compose variables now differ from the ones "
                f"the project was started with. Bring it up again with `pagerdrill stack up` "
                f"from the shell that set them (recorded in {self.state_path})",
            )
        self._wait_healthy([service], progress, t0)

    def exec(self, service: str, argv: Sequence[str], timeout: float = 30.0) -> ExecResult:
        """Run a command in the service's running container (`docker compose exec -T`)."""
        self._known(service)
        if not argv:
            raise BadInputError("exec needs a command to run")
        rows = [r for r in self._containers(service) if r.get("State") == "running"]
        if not rows:
            raise StackError(service, "is not running")
        attrs = self._inspect(rows[0]["Id"], service)
        api = self.client.api
        exec_id = self._api("exec", service, api.exec_create, attrs["Id"], list(argv))
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["out"] = api.exec_start(exec_id, demux=True)
            except Exception as exc:  # reported below, in the caller's thread
                result["error"] = exc

        worker = threading.Thread(target=run, name=f"exec-{service}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            # the command line may hold a password (redis-cli -a): name the program only
            raise StackError(service, f"{argv[0]} did not finish in {timeout:g} s")
        if "error" in result:
            raise StackError(service, f"exec {argv[0]} failed: {result['error']}")
        out, err = result["out"] or (None, None)
        code = self._api("exec", service, api.exec_inspect, exec_id).get("ExitCode")
        return ExecResult(
            code if isinstance(code, int) else 1,
            (out or b"").decode("utf-8", errors="replace"),
            (err or b"").decode("utf-8", errors="replace"),
        )

    def logs(self, service: str, tail: int = 50) -> list[str]:
        self._known(service)
        if tail <= 0:
            return []
        attrs = self._primary(service)
        if attrs is None:
            return []
        raw = self._api("logs", service, self.client.api.logs, attrs["Id"], tail=tail)
        return raw.decode("utf-8", errors="replace").splitlines()[-tail:]

    def follow_logs(self, service: str, tail: int = 10) -> Iterator[str]:
        """Yield the last `tail` lines, then every new one, across restarts and recreates."""
        self._known(service)
        seen: str | None = None
        since: int | None = None
        while True:
            attrs = self._primary(service)
            if attrs is None or (seen == attrs["Id"] and not attrs["State"].get("Running")):
                time.sleep(0.5)
                continue
            kwargs: dict[str, Any] = {"stream": True, "follow": True}
            if seen is None:
                kwargs["tail"] = tail
            elif seen == attrs["Id"]:
                kwargs["since"] = since
                kwargs["tail"] = "all"
            else:
                kwargs["tail"] = "all"  # a recreated container: all of its log is new
            seen = attrs["Id"]
            pending = b""
            for chunk in self.client.api.logs(attrs["Id"], **kwargs):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", errors="replace")
            if pending:
                yield pending.decode("utf-8", errors="replace")
            since = int(time.time())


def _ports_text(ports: list[tuple[int, str, int]]) -> str:
    return ", ".join(f"{host}:{hport}->{cport}" for cport, host, hport in ports) or "none"
