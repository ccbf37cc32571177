"""Secrets never leave pagerdrill in what it prints or exports."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact_url(text: str) -> str:
    """`redis://:cache@host` -> `redis://:***@host` (any scheme, anywhere in `text`)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
