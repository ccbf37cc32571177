"""The workspace's traffic profile (`traffic:` in pagerdrill.yaml): steady HTTP requests
for a stack that has no traffic of its own, the shape of a small Locust or k6 scenario.

Templates (paths, header values, bodies) hold small variables: `{int:1..100}`,
`{choice:a|b|c}`, `{uuid}` and `{token}` (what the sign-in step returned). Any other
brace is literal text, so a JSON body needs no escaping; a placeholder-shaped name
that is none of these is refused at load, since it would otherwise go out verbatim.
"""

from __future__ import annotations

import random
import re
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pagerdrill.errors import did_you_mean

_RNG = random.Random()
VARIABLES = ("int", "choice", "uuid", "token")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([^{}]*))?\}")
_INT_RANGE = re.compile(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*")


@dataclass(frozen=True)
class _Part:
    kind: Literal["text", "int", "choice", "uuid", "token"]
    text: str = ""
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()


class Template:
    """A string with variables, parsed once at load and rendered per request."""

    def __init__(self, source: str):
        self.source = source
        self.parts: tuple[_Part, ...] = tuple(_parse(source))
        self._static = (
            "".join(p.text for p in self.parts)
            if all(p.kind == "text" for p in self.parts)
            else None
        )

    @property
    def uses_token(self) -> bool:
        return any(p.kind == "token" for p in self.parts)

    def render(self, token: str | None = None, rng: random.Random | None = None) -> str:
        if self._static is not None:
            return self._static
        rng = rng or _RNG
        out: list[str] = []
        for p in self.parts:
            if p.kind == "text":
                out.append(p.text)
            elif p.kind == "int":
                out.append(str(rng.randint(p.low, p.high)))
            elif p.kind == "choice":
                out.append(rng.choice(p.choices))
            elif p.kind == "uuid":
                out.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            else:
                out.append(token or "")
        return "".join(out)


def _parse(source: str) -> list[_Part]:
    parts: list[_Part] = []
    at = 0
    for m in _PLACEHOLDER.finditer(source):
        if m.start() > at:
            parts.append(_Part("text", source[at : m.start()]))
        name, arg = m.group(1), m.group(2)
        at = m.end()
        if name == "int":
            r = _INT_RANGE.fullmatch(arg or "")
            if r is None or int(r.group(1)) > int(r.group(2)):
                raise ValueError(f"{m.group(0)}: expected {{int:LOW..HIGH}}, LOW <= HIGH")
            parts.append(_Part("int", low=int(r.group(1)), high=int(r.group(2))))
        elif name == "choice":
            choices = tuple((arg or "").split("|"))
            if arg is None or not all(choices):
                raise ValueError(f"{m.group(0)}: expected {{choice:a|b|...}}, no empty choice")
            parts.append(_Part("choice", choices=choices))
        elif name in ("uuid", "token"):
            if arg is not None:
                raise ValueError(f"{m.group(0)}: {{{name}}} takes no argument")
            parts.append(_Part(name))  # type: ignore[arg-type]
        else:
            hint = did_you_mean(name, VARIABLES)
            also = f" (did you mean {{{hint}}}?)" if hint else ""
            raise ValueError(
                f"{m.group(0)}: unknown variable '{name}'; the variables are "
                f"{{int:1..100}}, {{choice:a|b}}, {{uuid}} and {{token}}{also}"
            )
    if at < len(source):
        parts.append(_Part("text", source[at:]))
    return parts


def _templates_in(value: Any) -> list[Template]:
    """Every string of a body (a string, or a JSON document whose strings are templates)."""
    if isinstance(value, str):
        return [Template(value)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _templates_in(v)] + [
            Template(k) for k in value if isinstance(k, str)
        ]
    if isinstance(value, list):
        return [t for v in value for t in _templates_in(v)]
    return []


def render_body(value: Any, token: str | None, rng: random.Random | None = None) -> Any:
    """A JSON body with its strings rendered (keys too)."""
    if isinstance(value, str):
        return Template(value).render(token, rng)
    if isinstance(value, dict):
        return {render_body(k, token, rng): render_body(v, token, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [render_body(v, token, rng) for v in value]
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _path_template(value: str) -> str:
    Template(value)
    if not value.startswith("/"):
        raise ValueError(
            f"{value!r}: expected a path starting with '/' (requests go to the profile's "
            "base URL only)"
        )
    return value


def _header_templates(value: dict[str, str]) -> dict[str, str]:
    for v in value.values():
        Template(v)
    return value


class HttpStep(_Model):
    """One kind of request: what goes out and which answers count as a success."""

    method: Method = "GET"
    path: str
    """A path template on the base URL, e.g. `/api/markets/{int:1..100}`."""

    headers: dict[str, str] = {}
    """Headers of this request on top of the profile's (templates: `Bearer {token}`)."""

    body: str | dict[str, Any] | list[Any] | None = None
    """A template string sent as is, or a JSON document (a mapping) whose strings are
    templates; a JSON body is sent as application/json."""

    expect: list[int] = []
    """Statuses that count as a success; by default any status below 400."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _path_template(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _header_templates(value)

    @field_validator("body")
    @classmethod
    def _body(cls, value: Any) -> Any:
        _templates_in(value)
        return value

    @field_validator("expect")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 100 <= status <= 599:
                raise ValueError(f"{status}: expected an HTTP status (100-599)")
        return value

    def uses_token(self) -> bool:
        templates = [Template(self.path), *map(Template, self.headers.values())]
        return any(t.uses_token for t in [*templates, *_templates_in(self.body)])


class TrafficRequest(HttpStep):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """How the metrics label it (`request`)."""

    weight: float = Field(default=1.0, gt=0)
    """Its share of the requests, relative to the others' weights."""


class TokenFrom(_Model):
    """Where the sign-in answer carries the token: a small path into its JSON body
    (`access_token`, `data.token`) or a response header."""

    json_path: str | None = Field(default=None, alias="json", min_length=1)
    header: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> TokenFrom:
        if (self.json_path is None) == (self.header is None):
            raise ValueError("expected exactly one of json: PATH or header: NAME")
        return self


class SignIn(HttpStep):
    """Run once before the requests (again after a 401); later templates use `{token}`."""

    method: Method = "POST"
    token: TokenFrom = Field(default_factory=lambda: TokenFrom(json="access_token"))


class TrafficProfile(_Model):
    """Steady HTTP traffic pagerdrill sends during a drill (and on `stack up --traffic`)."""

    role: str | None = None
    """The bound role whose URL is the base (`api`); or give `url`."""

    url: str | None = None
    """The base URL, on loopback or a host a role binding of this workspace names."""

    rate: float = Field(default=5.0, gt=0, le=10000)
    """Requests per second, all requests together."""

    concurrency: int = Field(default=10, ge=1, le=1000)
    """At most this many requests in flight (and connections open)."""

    duration_s: float = Field(default=3600.0, gt=0, le=86400)
    """It stops by itself after this long, whatever else happens."""

    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """A request without an answer by then counts as an error."""

    window_s: float = Field(default=30.0, ge=1, le=3600)
    """The error rate and latency percentiles on /metrics cover this last stretch."""

    headers: dict[str, str] = {}
    """Headers of every request (templates)."""

    sign_in: SignIn | None = None
    requests: list[TrafficRequest] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r}: expected an http:// or https:// URL with a host")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _header_templates(value)

    @field_validator("requests")
    @classmethod
    def _unique(cls, value: list[TrafficRequest]) -> list[TrafficRequest]:
        seen: set[str] = set()
        for r in value:
            if r.name in seen:
                raise ValueError(f"request {r.name!r} is named twice")
            seen.add(r.name)
        return value

    @model_validator(mode="after")
    def _base(self) -> TrafficProfile:
        if (self.role is None) == (self.url is None):
            raise ValueError("expected exactly one of role: (a bound role) or url: (a base URL)")
        if self.sign_in is None:
            users = [r.name for r in self.requests if r.uses_token()]
            if users or any(Template(v).uses_token for v in self.headers.values()):
                who = ", ".join(users) or "the profile's headers"
                raise ValueError(f"{{token}} is used ({who}) but there is no sign_in step")
        return self


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def host_refusal(url: str, bound_hosts: set[str]) -> str | None:
    """Why traffic may not go to `url`, or None: only loopback and the hosts this
    workspace's role bindings name are drilled, never a third party's server."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if not host:
        return f"{url!r} has no host"
    if is_loopback(host) or host in bound_hosts:
        return None
    named = ", ".join(sorted(bound_hosts)) or "none"
    return (
        f"{url!r}: host {host} is neither loopback nor a host the workspace's role "
        f"bindings name (they name: {named}); traffic only goes to the stack under drill"
    )


STATE_FILE = "traffic.json"
"""The running generator's pid, owner and endpoints, in the workspace's state folder."""
