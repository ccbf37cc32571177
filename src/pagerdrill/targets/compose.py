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
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pagerdrill.errors import BadInputError, StackError, UnknownServiceError, did_you_mean
from pagerdrill.targets.base import ExecResult, Progress, ServiceStatus
from pagerdrill.targets.composeattrs import (
    FAULT_TOKEN_VAR,
    LOG_TAIL,
    OVERRIDES_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    _env_dict,
    _override_names,
    _ports_text,
    _published,
    compose_cli,
    compose_variables,
)
from pagerdrill.targets.composeengine import ComposeEngine
from pagerdrill.targets.composehealth import ComposeHealth
from pagerdrill.targets.composeproxy import ComposeProxies
from pagerdrill.targets.composestate import ComposeFiles
from pagerdrill.targets.dockerhost import DockerHost, check_docker_host
from pagerdrill.targets.state import emit
from pagerdrill.workspace import Workspace

# the module's names from before it was split, still importable from here
__all__ = [
    "FAULT_TOKEN_VAR",
    "OVERRIDES_LABEL",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "ComposeTarget",
    "_published",
    "compose_cli",
    "compose_variables",
]


class ComposeTarget(ComposeEngine, ComposeHealth, ComposeFiles, ComposeProxies):
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
        self._bound_url = {b.service: b.url for b in workspace.config.roles.values() if b.url}

    def _workspace_file(self, name: str, loc: tuple) -> Path:
        path = Path(name).expanduser()
        path = path if path.is_absolute() else self.workspace.root / path
        if not path.is_file():
            where = ".".join(map(str, loc))
            raise self.workspace.config_error(loc, f"{where}: {path} does not exist")
        return path

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
            self.remove_all_proxies()  # they live in the services' network namespaces
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
