"""The `http-proxy` fault: 5xx answers or added latency from a reverse proxy that the
target puts in front of a bound HTTP service. It needs nothing from the service itself
(no fault route, no token), so it works on any team's stack whose target can place the
proxy (`targets.base.HttpProxyTarget`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from pagerdrill.errors import StackError
from pagerdrill.faults import Fault, FaultParams
from pagerdrill.targets.base import HttpProxyTarget
from pagerdrill.workspace.yamlfile import checked_regex


class HttpProxyParams(FaultParams):
    path: str | None = None
    """A regular expression searched in each request's path (`^/api/promotions`);
    none: every request."""
    status: int = Field(default=500, ge=100, le=599)
    ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of the matching requests answered with `status`."""
    latency_ms: float = Field(default=0.0, ge=0.0, le=60_000)
    """Added before every matching request (failing or not)."""

    @field_validator("path")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else checked_regex(value, "path")


def proxy_script() -> Path:
    """The proxy as a script (standard library only): what the target runs."""
    return Path(__file__).with_name("proxy.py")


class HttpProxy(Fault):
    """Put a reverse proxy in front of the role's service; revert takes it away and
    puts the service back where its traffic arrives."""

    kind = "http-proxy"
    Params = HttpProxyParams
    params: HttpProxyParams

    def _target(self) -> HttpProxyTarget:
        target = self.ctx.target
        if not isinstance(target, HttpProxyTarget):
            raise StackError(
                self.service, f"the {target.name} target cannot put a proxy in front of a service"
            )
        return target

    def describe(self) -> str:
        p = self.params
        where = f"requests to {p.path}" if p.path else "every request"
        what = f"answer {p.status} to {p.ratio:.0%} of {where}" if p.ratio else f"slow {where}"
        slower = f", {p.latency_ms:g} ms slower" if p.latency_ms and p.ratio else ""
        slow_only = f" by {p.latency_ms:g} ms" if not p.ratio else ""
        return f"put a proxy in front of {self.service} that will {what}{slower}{slow_only}"

    def prepare(self) -> dict:
        self._target()
        return {"service": self.service, "proxy": "http"}

    def inject(self) -> dict:
        p = self.params
        rules = {"status": p.status, "path": p.path, "ratio": p.ratio, "latency_ms": p.latency_ms}
        return self._target().insert_http_proxy(self.service, rules, proxy_script())

    def revert(self, undo: dict) -> dict:
        return self._target().remove_http_proxy(undo["service"])
