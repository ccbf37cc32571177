"""The built-in fault kinds: the seed's four drills and the pilot's 500 injection."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Literal

from pydantic import Field, field_validator

from pagerdrill.errors import BadInputError, PagerdrillError, StackError
from pagerdrill.faults import Fault, FaultParams
from pagerdrill.workspace.config import EnvValue


class StopService(Fault):
    """Stop the role's service; revert starts it again (`docker compose stop api`)."""

    kind = "stop-service"

    def describe(self) -> str:
        return f"stop service {self.service} (role {self.role})"

    def prepare(self) -> dict:
        status = self.ctx.target.service_status(self.service)
        return {"service": self.service, "was": status.state}

    def inject(self) -> dict:
        self.ctx.target.stop(self.service)
        return {"service": self.service}

    def revert(self, undo: dict) -> dict:
        service = undo["service"]
        if undo.get("was") not in (None, "running"):
            return {"service": service, "skipped": f"it was {undo['was']} before the drill"}
        if self.ctx.target.service_status(service).state == "running":
            return {"service": service, "skipped": "already running"}
        self.ctx.target.start(service)
        return {"service": service, "started": True}

    def in_effect(self) -> bool | None:
        return self.ctx.target.service_status(self.service).state != "running"


# commands a drill may send to Redis; the rest (SHUTDOWN, CONFIG REWRITE ...) could
# leave a stack that revert cannot put back
REDIS_COMMANDS = ("FLUSHDB", "FLUSHALL", "DEL", "UNLINK", "CONFIG SET")
# settings whose change would stop revert from reaching Redis, or move its data
UNSAFE_CONFIG = {"requirepass", "masterauth", "masteruser", "dir", "dbfilename", "port", "bind"}


class RedisCommandParams(FaultParams):
    command: list[str] = Field(min_length=1)
    """The command and its arguments, e.g. [FLUSHDB]."""

    @field_validator("command")
    @classmethod
    def _allowed(cls, value: list[str]) -> list[str]:
        words = [str(v) for v in value]
        name = words[0].upper()
        if name == "CONFIG" and len(words) == 4 and words[1].upper() == "SET":
            if words[2].lower() in UNSAFE_CONFIG:
                raise ValueError(f"CONFIG SET {words[2]} could not be put back safely")
            return words
        if name in ("FLUSHDB", "FLUSHALL") and len(words) <= 2:
            return words
        if name in ("DEL", "UNLINK") and len(words) >= 2:
            return words
        raise ValueError(f"command must be one of {', '.join(REDIS_COMMANDS)}, with its arguments")


class RedisCommand(Fault):
    """Run one Redis command on the role's Redis, with its password
    (`redis-cli -a cache FLUSHDB`). Data a flush removes is gone: revert can only
    record that; `CONFIG SET` is reverted to the value read before."""

    kind = "redis-command"
    Params = RedisCommandParams
    params: RedisCommandParams

    def _client(self, url: str | None = None):
        import redis

        return redis.Redis.from_url(
            url or self.ctx.roles.redis_url(self.role), socket_timeout=2, socket_connect_timeout=2
        )

    def describe(self) -> str:
        return f"run Redis command {' '.join(self.params.command)} on {self.service}"

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return self.params.command[0].upper() == "CONFIG"

    def prepare(self) -> dict:
        undo: dict = {"service": self.service, "command": self.params.command[0].upper()}
        if undo["command"] == "CONFIG":
            key = self.params.command[2].lower()  # Redis answers in lower case
            with self._client() as client:
                undo["config"] = {key: client.config_get(key).get(key)}
        else:
            undo["irreversible"] = "the data it removes is gone; the cache refills from traffic"
        return undo

    def inject(self) -> dict:
        import redis

        try:
            with self._client() as client:
                reply = client.execute_command(*self.params.command)
        except redis.RedisError as exc:
            raise StackError(
                self.service, f"Redis refused {self.params.command[0]}: {exc}"
            ) from exc
        return {"service": self.service, "reply": str(reply)}

    def revert(self, undo: dict) -> dict:
        if "config" not in undo:
            return {"service": undo["service"], "irreversible": True, "command": undo["command"]}
        with self._client() as client:
            for key, value in undo["config"].items():
                if value is not None:
                    client.config_set(key, value)
        return {"service": undo["service"], "restored": sorted(undo["config"])}


class RestartWithEnvParams(FaultParams):
    env: dict[str, EnvValue] = Field(default_factory=dict)
    """Variables to override, by name."""
    env_from_binding: dict[Literal["admin_password_env"], EnvValue] = Field(default_factory=dict)
    """Variables named by the role binding: {admin_password_env: wrong-password}."""


class RestartWithEnv(Fault):
    """Restart the role's service with environment overrides; revert restarts it with
    the environment it had before."""

    kind = "restart-with-env"
    Params = RestartWithEnvParams
    params: RestartWithEnvParams
    # a bound variable is a password (admin_password_env); `env` is judged by its names
    secret_params = frozenset({"env_from_binding"})

    def overrides(self) -> dict[str, str]:
        env = dict(self.params.env)
        for field, value in self.params.env_from_binding.items():
            env[getattr(self.ctx.roles, field)(self.role)] = value
        if not env:
            raise BadInputError(f"fault {self.id}: env or env_from_binding must name a variable")
        return env

    def describe(self) -> str:
        names = ", ".join(sorted(self.overrides()))
        return f"restart {self.service} with {names} overridden"

    def prepare(self) -> dict:
        return env_undo(self.ctx.target, self.service, self.overrides())

    def inject(self) -> dict:
        env = self.overrides()
        self.ctx.target.restart(self.service, env=env)
        return {"service": self.service, "overridden": sorted(env)}

    def revert(self, undo: dict) -> dict:
        return restore_env(self.ctx.target, undo)


def env_undo(target, service: str, env: dict[str, str]) -> dict:
    """The undo record of an environment change: each variable's previous override
    (None: the configured value). Values of variables we set are not recorded."""
    current = target.overrides(service)
    return {"service": service, "previous": {name: current.get(name) for name in sorted(env)}}


def restore_env(target, undo: dict) -> dict:
    """Restart the service with the environment it had before, unless it already runs it."""
    service, previous = undo["service"], undo["previous"]
    current = target.overrides(service)
    wanted = {k: v for k, v in current.items() if k not in previous}
    wanted |= {k: v for k, v in previous.items() if v is not None}
    if wanted == current and target.service_status(service).state == "running":
        return {"service": service, "skipped": "already running its original environment"}
    target.restart(service, env=wanted, reset_env=True)
    return {"service": service, "restored": sorted(previous)}


class HttpFaultParams(FaultParams):
    route: str = Field(pattern=r"^/")
    """The route as the api names it (`/api/promotions`, `/api/markets/{market_id}`)."""
    status: int = Field(default=500, ge=100, le=599)
    ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of the route's requests that fail."""
    latency_ms: float = Field(default=0.0, ge=0.0, le=60_000)
    token_env: str = "FAULT_TOKEN"
    """The api's environment variable holding the fault-injection token."""


class HttpFault(Fault):
    """Make one route of the reference api fail (or slow down) through its
    fault-injection route; revert removes the rule. A restart of the api clears it."""

    kind = "http-fault"
    Params = HttpFaultParams
    params: HttpFaultParams

    def _request(self, method: str, url: str, token: str, body: dict | None = None):
        import httpx  # where it is used: `import httpx` may load rich (see signals.probes)

        try:
            return httpx.request(
                method, url, json=body, headers={"X-Fault-Token": token}, timeout=3.0
            )
        except httpx.HTTPError as exc:
            raise StackError(self.service, f"fault route unreachable: {exc}") from exc

    def _token(self, service: str) -> str:
        token = self.ctx.target.environment(service).get(self.params.token_env, "")
        if not token:
            raise StackError(
                service, f"{self.params.token_env} is not set: the api has no fault route"
            )
        return token

    def describe(self) -> str:
        p = self.params
        return (
            f"make {p.route} on {self.service} answer {p.status} for {p.ratio:.0%} of requests"
            + (f", {p.latency_ms:g} ms slower" if p.latency_ms else "")
        )

    def prepare(self) -> dict:
        url = f"{self.ctx.roles.base_url(self.role)}/_pagerdrill/faults/{self.id}"
        return {"service": self.service, "url": url}

    def inject(self) -> dict:
        undo = self.prepare()
        p = self.params
        body = {"route": p.route, "status": p.status, "ratio": p.ratio, "latency_ms": p.latency_ms}
        response = self._request("PUT", undo["url"], self._token(self.service), body)
        if response.status_code != 200:
            raise StackError(
                self.service, f"fault route refused: {response.status_code} {response.text}"
            )
        return {"service": self.service, "route": p.route, "status": p.status}

    def revert(self, undo: dict) -> dict:
        service = undo["service"]
        if self.ctx.target.service_status(service).state != "running":
            return {"service": service, "skipped": "not running (a restart clears the fault)"}
        response = self._request("DELETE", undo["url"], self._token(service))
        if response.status_code not in (200, 404):
            raise StackError(service, f"fault route refused removal: {response.status_code}")
        return {"service": service, "removed": response.status_code == 200}


class StormParams(FaultParams):
    clients: int = Field(default=200, ge=1, le=20_000)
    """Handshakes per wave, opened as fast as possible."""
    concurrency: int = Field(default=200, ge=1, le=5_000)
    hold_s: float = Field(default=0.0, ge=0.0, le=600)
    """How long each accepted client stays connected (0: dropped at once)."""
    source: str | None = "203.0.113.7"
    """The address the storm presents (X-Forwarded-For); None: the real peer."""
    every_s: float | None = Field(default=2.0, gt=0, le=600)
    """Start a new wave this often until reverted; None: one wave."""
    wave_deadline_s: float = Field(default=30.0, gt=0, le=600)


class SocketioStorm(Fault):
    """Waves of socket.io handshakes against the rt role, from one source. Runs in a
    background thread until reverted; nothing persists on the stack, so after a
    crash there is nothing to put back (the clients died with the process)."""

    kind = "socketio-storm"
    Params = StormParams
    params: StormParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._halt = threading.Event()
        self.waves: list[dict] = []

    def describe(self) -> str:
        p = self.params
        repeat = f" every {p.every_s:g} s" if p.every_s else " once"
        return (
            f"socket.io storm on {self.service}: {p.clients} handshakes{repeat}"
            f" from {p.source or 'this host'}"
        )

    def prepare(self) -> dict:
        return {"service": self.service, "in_process": True}

    def inject(self) -> dict:
        url = self.ctx.roles.socketio_url(self.role)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(url, ready), name=f"storm-{self.id}", daemon=True
        )
        self._thread.start()
        ready.wait(5)
        return {"service": self.service, "url": url, "clients": self.params.clients}

    def _run(self, url: str, ready: threading.Event) -> None:
        from pagerdrill.faults.storm import storm

        async def waves() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            ready.set()
            p = self.params
            while not self._halt.is_set():
                started = self._loop.time()
                result = await storm(
                    url,
                    p.clients,
                    concurrency=p.concurrency,
                    hold_s=p.hold_s,
                    source=p.source,
                    deadline_s=p.wave_deadline_s,
                    stop=self._stop,
                )
                wave = result.to_json()
                self.waves.append(wave)
                self.ctx.report("fault.progress", {"fault": self.id, "wave": wave})
                if p.every_s is None:
                    break
                delay = p.every_s - (self._loop.time() - started)
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)

        try:
            asyncio.run(waves())
        except Exception as exc:  # reported, never silent; the engine decides
            self.ctx.report("fault.error", {"fault": self.id, "error": repr(exc)})
        finally:
            ready.set()

    def revert(self, undo: dict) -> dict:
        self._halt.set()
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(15)
            if self._thread.is_alive():
                raise PagerdrillError(f"fault {self.id}: the storm did not stop in 15 s")
        totals = {
            key: sum(w.get(key, 0) for w in self.waves)
            for key in ("attempted", "accepted", "rejected", "errors")
        }
        return {"service": undo["service"], "waves": len(self.waves), **totals}
