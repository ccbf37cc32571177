"""The compose target's HTTP proxy fault, inserted without touching the team's files.

A proxy container joins the service's own network namespace (as `network_mode:
"service:api"` would) with NET_ADMIN, starts the proxy on a spare port there, and adds
an iptables `nat PREROUTING REDIRECT` from the service's port to the proxy's. Every
connection that arrives at the service (from nginx, other services, a published port)
is redirected, whatever DNS its clients cached; the proxy itself reaches the service
at 127.0.0.1, which PREROUTING never sees. The Docker SDK runs the container directly
rather than `compose up` with an override file: a container that shares a namespace
needs nothing from the project's files, and so no compose command re-reads them (their
interpolation, the dependencies an `up` would start) during a drill.

The rule lives in the service's namespace, not in the proxy's container: removal
deletes it through a one-off container in that namespace (so it works when the proxy
container died, or after a `kill -9`), then removes the proxy containers, found by
their labels. A restart of the service drops the rule with its namespace.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pagerdrill.errors import StackError

PROXY_FOR_LABEL = "org.pagerdrill.proxy-for"
PROXY_PROJECT_LABEL = "org.pagerdrill.proxy-project"
RULE_COMMENT = "pagerdrill-proxy"
PROXY_PORTS = (47113, 47114)
READY_S = 30.0

# the proxy first, the redirect once it listens: no request meets a closed port
START = """
python3 -c "$PAGERDRILL_PROXY" --listen "0.0.0.0:$PROXY_PORT" \\
    --upstream "127.0.0.1:$SERVICE_PORT" --rules "$RULES" &
pid=$!
trap 'kill $pid' TERM INT
i=0
until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' \\
        "$PROXY_PORT" 2>/dev/null; do
    kill -0 "$pid" || exit 1
    i=$((i + 1)); [ "$i" -lt 300 ] || exit 1
    sleep 0.1
done
iptables -t nat -A PREROUTING -p tcp --dport "$SERVICE_PORT" \\
    -m comment --comment pagerdrill-proxy -j REDIRECT --to-ports "$PROXY_PORT"
# NAT applies to new connections only: a client's kept-alive connection would go on
# reaching the service around the proxy. Reset those (a redirected connection reaches
# INPUT on the proxy's port, the proxy's own upstream comes over lo), so they reconnect.
iptables -A INPUT ! -i lo -p tcp --dport "$SERVICE_PORT" \\
    -m comment --comment pagerdrill-proxy -j REJECT --reject-with tcp-reset ||
    echo "pagerdrill-proxy: kept-alive connections are not reset"
echo "pagerdrill-proxy: ready"
wait "$pid"
"""

DROP_RULES = """
iptables -t nat -S PREROUTING | grep -- '--comment pagerdrill-proxy' | sed 's/^-A /-D /' |
while read -r rule; do iptables -t nat $rule; done
iptables -S INPUT | grep -- '--comment pagerdrill-proxy' | sed 's/^-A /-D /' |
while read -r rule; do iptables $rule; done
! iptables -t nat -S PREROUTING | grep -q -- '--comment pagerdrill-proxy' &&
! iptables -S INPUT | grep -q -- '--comment pagerdrill-proxy'
"""


class ComposeProxies:
    """Mixed into ComposeTarget: uses its client, containers, labels checks and lock."""

    def _service_port(self: Any, attrs: dict, service: str) -> int:
        """The port the service's traffic arrives at, inside its container."""
        from pagerdrill.targets.composeattrs import _published

        inside = self._inside_port(attrs, service)
        published = [cport for cport, _, _ in _published(attrs)]
        if published:
            return inside if inside in published else published[0]
        if inside is not None:
            return inside
        raise StackError(
            service,
            "no port known for the proxy to stand in front of (none published or exposed); "
            "set the url of its role in pagerdrill.yaml",
        )

    def _proxy_rows(self: Any, service: str | None = None) -> list[dict]:
        labels = [f"{PROXY_PROJECT_LABEL}={self.project}"]
        if service is not None:
            labels.append(f"{PROXY_FOR_LABEL}={service}")
        rows = self._api(
            "list proxies",
            service or self.project,
            self.client.api.containers,
            all=True,
            filters={"label": labels},
        )
        return [r for r in rows if (r.get("Labels") or {}).get(PROXY_PROJECT_LABEL) == self.project]

    def _proxy_image(self: Any, service: str) -> str:
        import docker

        image = self.config.proxy_image
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise StackError(
                service,
                f"the proxy image {image} is not on this Docker Engine (compose.proxy_image "
                "in pagerdrill.yaml: an image with python3 and iptables)",
            ) from None
        return image

    def _running(self: Any, service: str) -> dict:
        attrs = self._primary(service)
        if attrs is None or not (attrs.get("State") or {}).get("Running"):
            raise StackError(service, "is not running: nothing to put a proxy in front of")
        return attrs

    def insert_http_proxy(self: Any, service: str, rules: Mapping[str, Any], script: Path) -> dict:
        import docker

        self._known(service)
        with self._locked():
            if self._proxy_rows(service):
                raise StackError(service, "already has a proxy in front of it")
            attrs = self._running(service)
            port = self._service_port(attrs, service)
            proxy_port = next(p for p in PROXY_PORTS if p != port)
            image = self._proxy_image(service)
            try:
                container = self.client.containers.run(
                    image,
                    ["sh", "-ec", START],
                    detach=True,
                    name=f"{self.project}-pagerdrill-proxy-{service}",
                    network_mode=f"container:{attrs['Id']}",
                    cap_add=["NET_ADMIN"],
                    labels={PROXY_FOR_LABEL: service, PROXY_PROJECT_LABEL: self.project},
                    environment={
                        "PAGERDRILL_PROXY": script.read_text(),
                        "RULES": json.dumps(dict(rules)),
                        "SERVICE_PORT": str(port),
                        "PROXY_PORT": str(proxy_port),
                    },
                )
            except docker.errors.APIError as exc:
                raise StackError(service, f"proxy container: {exc.explanation or exc}") from None
            self._wait_proxy_ready(container, service)
            return {"service": service, "port": port, "proxy_port": proxy_port,
                    "proxy_container": container.name}  # fmt: skip

    def _wait_proxy_ready(self: Any, container: Any, service: str) -> None:
        deadline = time.monotonic() + READY_S
        while True:
            container.reload()
            logs = container.logs().decode("utf-8", errors="replace")
            if "pagerdrill-proxy: ready" in logs:
                return
            if container.status in ("exited", "dead") or time.monotonic() > deadline:
                with contextlib.suppress(StackError):  # the failure below says more
                    self.remove_http_proxy(service, locked=True)
                raise StackError(
                    service,
                    f"its proxy container did not start ({container.status})",
                    logs.strip().splitlines()[-15:],
                )
            time.sleep(0.1)

    def remove_http_proxy(self: Any, service: str, *, locked: bool = False) -> dict:
        """Delete the redirect in the service's namespace, then the proxy containers."""
        self._known(service)
        with contextlib.nullcontext() if locked else self._locked():
            rows = self._proxy_rows(service)
            attrs = self._primary(service)
            running = attrs is not None and (attrs.get("State") or {}).get("Running")
            if running:
                self._drop_rules(attrs, service)
            for row in rows:
                self._api("remove proxy", service, self.client.api.remove_container,
                          row["Id"], force=True)  # fmt: skip
            if not rows and not running:
                return {"service": service, "skipped": "no proxy in front of it"}
            return {"service": service, "removed": len(rows)}

    def _drop_rules(self: Any, attrs: dict, service: str) -> None:
        import docker

        try:
            self.client.containers.run(
                self.config.proxy_image,
                ["sh", "-ec", DROP_RULES],
                remove=True,
                network_mode=f"container:{attrs['Id']}",
                cap_add=["NET_ADMIN"],
                labels={PROXY_PROJECT_LABEL: self.project, PROXY_FOR_LABEL: service},
            )
        except docker.errors.ContainerError as exc:
            raise StackError(service, f"could not delete the proxy's redirect: {exc}") from None
        except docker.errors.ImageNotFound:
            raise StackError(
                service, f"the proxy image {self.config.proxy_image} is gone from the engine"
            ) from None
        except docker.errors.APIError as exc:
            raise StackError(service, f"proxy redirect: {exc.explanation or exc}") from None

    def remove_all_proxies(self: Any) -> None:
        """Every proxy of the project (`stack down`)."""
        for row in self._proxy_rows():
            self._api("remove proxy", self.project, self.client.api.remove_container,
                      row["Id"], force=True)  # fmt: skip
