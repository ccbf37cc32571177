"""The compose target's way to the Docker Engine: the SDK client (connected on first
use, never before the host check), and the project's containers, each checked by its
compose labels right before it is used."""

from __future__ import annotations

from typing import Any

from pagerdrill.errors import BadInputError, StackError
from pagerdrill.targets.composeattrs import NUMBER_LABEL, ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL
from pagerdrill.targets.dockerhost import DockerHost


class ComposeEngine:
    """Mixed into ComposeTarget."""

    host: DockerHost
    environ: dict[str, str]
    project: str
    _client: Any

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
