"""Secrets never leave pagerdrill in what it prints or exports."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

import msgspec

if TYPE_CHECKING:
    from pagerdrill.journal.events import Event

E = TypeVar("E", bound="Event")
M = TypeVar("M", bound=msgspec.Struct)

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact_url(text: str) -> str:
    """`redis://:cache@host` -> `redis://:***@host` (any scheme, anywhere in `text`)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


# a name that says its value is secret: ADMIN_DEFAULT_PASSWORD, REDIS_PASS, API_KEY ...
SECRET_NAME = re.compile(
    r"(?i)(^|[_\-.])(pass(word|wd)?|secret|token|api[_\-]?key|private[_\-]?key|"
    r"credentials?|auth)($|[_\-.])"
)
# A name in free text that says its value is secret. `pass` and `pwd` are a whole part of
# the name (REDIS_PASS, dbPwd), never a piece of another word, or `passed: 3` and
# `bypass: on` would be masked; and the bare word `pass` is English too (a review's
# `PASS: blocked the source`), so alone it counts only in assignment form (`pass=x`), as
# a flag or an environment pair is written. The longer words are secret names with any
# prefix (dbpassword, GITHUB_TOKEN), but not inside a longer word (`tokens: 5`).
_SECRET_WORD = (
    r"(?:[A-Za-z0-9.\-]*[_.\-]|[A-Za-z0-9]*[a-z0-9](?=[A-Z]))?(?i:pass|pwd)"
    r"|[A-Za-z0-9_.\-]*(?i:password|passwd|secret|token|api[_\-]?key|private[_\-]?key|"
    r"credentials?)"
)
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (
        re.compile(
            rf"(?<![A-Za-z0-9_.\-])(?!(?i:pass)\s*:)((?:{_SECRET_WORD})(?:[_.\-][A-Za-z0-9_.\-]*)?)"
            rf"(?![A-Za-z0-9])"
            rf"(\s*[=:]\s*)(?!\*\*\*)([^\s,;\"'}}]+)"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(redis-cli\b[^\n]*?\s-a\s+)(\S+)"), r"\1***"),
)
# A short secret (the seed's Redis password is `cache`) is a common word: it is masked
# where it stands as a value (a URL's password, NAME=value, `redis-cli -a`, a whole
# field), not wherever the word appears, or every report about a cache would be
# unreadable. Longer secrets are masked wherever they appear.
SHORT = 8
MASK = "***"


class Redactor:
    """Removes secrets from text and data before they leave in an export: known secret
    values (passwords from the workspace and from environment overrides, tokens)
    wherever they appear, passwords inside URLs, and `NAME=value` pairs whose name
    says it is a secret."""

    def __init__(self, secrets: set[str] | None = None):
        # the longest first, so a secret that contains another is masked whole
        self.secrets = sorted({s for s in (secrets or set()) if len(s) >= 3}, key=len,
                              reverse=True)  # fmt: skip
        self._short = {secret for secret in self.secrets if len(secret) < SHORT}

    @classmethod
    def from_events(cls, events: list[dict], workspace_config=None) -> Redactor:
        from pagerdrill.journal.events import DrillStarted, FaultUndo, Mitigation

        secrets: set[str] = set()
        for e in events:
            if e.get("type") == FaultUndo.TYPE:
                params = e.get("params") or {}
                for value in (params.get("env_from_binding") or {}).values():
                    secrets.add(str(value))  # bound variables hold passwords
                for name, value in (params.get("env") or {}).items():
                    if SECRET_NAME.search(str(name)):
                        secrets.add(str(value))
            if e.get("type") == Mitigation.TYPE:
                for name, value in ((e.get("detail") or {}).get("values") or {}).items():
                    if SECRET_NAME.search(str(name)):
                        secrets.add(str(value))
        # a scenario parameter that feeds a secret is a secret too (its default as well)
        started = next((e for e in events if e.get("type") == DrillStarted.TYPE), {})
        text = ((started.get("scenario") or {}).get("text")) or ""
        for name, value in ((started.get("scenario") or {}).get("params") or {}).items():
            if str(value) in secrets or SECRET_NAME.search(str(name)):
                secrets.add(str(value))
                default = re.search(rf"^\s*{re.escape(str(name))}:\s*([^\s#]+)", text, re.M)
                if default:
                    secrets.add(default.group(1).strip("'\""))
        if workspace_config is not None:
            secrets |= workspace_secrets(workspace_config)
        return cls(secrets)

    @classmethod
    def for_scenario(cls, scenario, workspace_config=None) -> Redactor:
        """Before a drill has a journal: what its faults will set, from the scenario."""
        from pagerdrill.journal.events import DrillStarted, FaultUndo

        events = [
            {
                "type": DrillStarted.TYPE,
                "scenario": {"params": scenario.params, "text": scenario.text},
            }
        ]
        events += [{"type": FaultUndo.TYPE, "params": f.params} for f in scenario.model.faults]
        return cls.from_events(events, workspace_config)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if len(secret) >= SHORT and secret in value:
                value = value.replace(secret, MASK)
        if value in self._short:
            return MASK
        value = redact_url(value)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def data(self, value):
        """The same for JSON-like data, keys kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: MASK if SECRET_NAME.search(str(k)) and v not in (None, "") else self.data(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def event(self, event: E) -> E:
        """A journal event with its secrets masked, of the same class."""
        return self.model(event)

    def model(self, value: M) -> M:
        """A record (an event, a drill's summary) with its secrets masked, of the same
        class: what it says is masked as its JSON form would be."""
        return msgspec.convert(self.data(msgspec.to_builtins(value, enc_hook=str)), type(value))


def secret_leaves(data, secret_keys=frozenset(), secret: bool = False) -> set[str]:
    """Text values in `data` that are secrets: under a key of `secret_keys` (at the top),
    or under any key whose name says it is one (a password, token, secret ...)."""
    out: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            hidden = secret or key in secret_keys or bool(SECRET_NAME.search(str(key)))
            out |= secret_leaves(value, frozenset(), hidden)
    elif isinstance(data, list | tuple):
        for value in data:
            out |= secret_leaves(value, frozenset(), secret)
    elif secret and isinstance(data, str) and data:
        out.add(data)
    return out


def mask_values(data, secrets: set[str]):
    """A copy of `data` (JSON-like) with every value that is one of `secrets` masked,
    and every secret inside a longer text masked where it appears."""
    if isinstance(data, dict):
        return {k: mask_values(v, secrets) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_values(v, secrets) for v in data]
    if isinstance(data, str):
        if data in secrets:
            return MASK
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 3 and secret in data:
                data = data.replace(secret, MASK)
    return data


def masked_scenario_text(text: str, names: set[str], values: set[str]) -> str:
    """The scenario file's text with the secrets masked: each secret parameter's
    declared value (its default, which an override may have replaced) and every secret
    value wherever it stands."""
    for name in names:
        text = re.sub(rf"(?m)^(\s*{re.escape(name)}\s*:[ \t]*)([^#\n]*?)([ \t]*(#.*)?)$",
                      lambda m: f"{m[1]}{MASK}{m[3]}" if m[2] else m[0], text)  # fmt: skip
    return mask_values(text, values)


def workspace_secrets(config) -> set[str]:
    """Passwords a workspace file holds: role bindings, the local Redis, and service
    environment values whose name says they are secret."""
    secrets: set[str] = set()
    local = getattr(config, "local", None)
    if local is not None:
        secrets.add(local.redis_password)
        for service in local.services.values():
            for name, value in service.env.items():
                if SECRET_NAME.search(name):
                    secrets.add(value)
    for binding in getattr(config, "roles", {}).values():
        if binding.password:
            secrets.add(binding.password)
        if binding.redis_url:
            m = _URL_PASSWORD.search(binding.redis_url)
            if m:
                secrets.add(m["pw"])
    return secrets
