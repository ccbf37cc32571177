"""The people the gate knows are the escalation roster's (`readiness/roster.yaml`, one
model in `pagerdrill.escalation.roster`): roles say who may attest, review and sign, and
`ssh_key` whose signature verifies. This adds only what the gate asks of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from pagerdrill.errors import BadInputError
from pagerdrill.escalation.roster import ROSTER_NAME, LoadedRoster, Person, Roster, load_roster

CACHE = ".pagerdrill/readiness-roster.json"
CACHE_VERSION = 1

__all__ = ["ROSTER_NAME", "LoadedRoster", "Person", "load_people", "require"]


def load_people(root: Path) -> LoadedRoster:
    """The roster of the workspace at `root`; a missing or malformed roster raises a
    BadInputError/ConfigError naming the file."""
    path = root / ROSTER_NAME
    if not path.is_file():
        raise BadInputError(f"{path}: no roster (the gate needs the team's people and roles)")
    # A team's roster is parsed (with every line, for its errors) only when it changed:
    # the gate keeps the checked model under .pagerdrill, keyed by size and mtime.
    st = path.stat()
    key = f"{st.st_size}:{st.st_mtime_ns}"
    cache = root / CACHE
    try:
        cached = json.loads(cache.read_text())
        if cached.get("version") == CACHE_VERSION and cached.get("key") == key:
            return LoadedRoster(path=path, model=Roster.model_validate(cached["roster"]))
    except (OSError, ValueError, AttributeError, KeyError, ValidationError):
        pass
    roster = load_roster(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        body = {"version": CACHE_VERSION, "key": key, "roster": roster.model.model_dump()}
        tmp.write_text(json.dumps(body, ensure_ascii=False))
        os.replace(tmp, cache)
    except OSError:
        pass  # a cache that cannot be written is only slower next time
    return roster


def require(roster: LoadedRoster, name: str, what: str = "person") -> Person:
    """The person named, or a BadInputError naming the roster and a close name."""
    person = roster.person(name)
    if person is None:
        close = roster.suggest(name)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise BadInputError(f"{what} {name!r} is not on the roster {roster.path}{hint}")
    return person
