"""Plugins through entry points, built-ins included: the one way the fault kinds, the
mitigation actions and the targets are found and loaded.

Names are listed without importing anything (a scenario check or `--help` stays
cheap); a plugin is imported only when asked for by name. A plugin that fails to load
is reported on stderr and refused, never skipped in silence; an unknown name lists
what is installed, with the closest name when one is close.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pagerdrill.errors import BadInputError, did_you_mean


def plugin_points(group: str, builtin: Mapping[str, str]) -> dict[str, str]:
    """Every plugin of entry-point `group`, name to `module:attribute`, importing none.
    `builtin` is there too: a source checkout that was never installed still has them."""
    found = {ep.name: ep.value for ep in entry_points(group=group)}
    return {**builtin, **found}


def unknown_plugin(what: str, name: str, names: Iterable[str]) -> str:
    """Why `name` is no installed `what` ("fault kind" ...): what is installed, and the
    closest name when one is close."""
    known = sorted(names)
    text = f"unknown {what} '{name}' (installed: {', '.join(known)})"
    close = did_you_mean(name, known)
    return text + (f"; did you mean '{close}'?" if close else "")


class PluginLoadError(BadInputError):
    """An installed plugin that could not be imported (reported on stderr already)."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


def load_plugin(plugin: str, name: str, value: str) -> Any:
    """The object `value` (`module:attribute`) names, for the plugin `name` of a kind
    (`plugin`: "fault", "mitigation", "target"). A plugin that fails to import is
    reported on stderr and raises PluginLoadError."""
    module_name, _, attr = value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # a broken plugin is reported, never silently skipped
        print(f"pagerdrill: {plugin} plugin '{name}' failed to load: {exc!r}", file=sys.stderr)
        raise PluginLoadError(f"{plugin} plugin '{name}' failed to load: {exc}", exc) from exc
    return obj


T = TypeVar("T")


def plugin_class(
    what: str,
    name: str,
    points: Mapping[str, str],
    base: type[T],
    loaded: dict[str, type[T]],
) -> type[T]:
    """The class plugin `name` of `points` names (`what`: "fault kind", "mitigation
    action"), a subclass of `base`, kept in `loaded`; a clear error for one that is
    unknown, fails to load, or is not a `base`."""
    if name in loaded:
        return loaded[name]
    if name not in points:
        raise BadInputError(unknown_plugin(what, name, points))
    try:
        obj = load_plugin(what.split()[0], name, points[name])
    except PluginLoadError as exc:
        raise BadInputError(
            f"{what} '{name}' is installed but failed to load: {exc.cause}"
        ) from exc.cause
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise BadInputError(f"{what} '{name}' ({points[name]}) is not a {base.__name__} subclass")
    loaded[name] = obj
    return obj
