"""Load YAML files into strict models, with errors that name the file, the line and the key.

`yaml.safe_load` semantics only. The document is composed once into nodes so that
every key path keeps the line it came from; validation errors are mapped back to
those lines, and unknown keys get a did-you-mean.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pagerdrill.errors import ConfigError, did_you_mean

Loc = tuple[str | int, ...]
M = TypeVar("M")


class LineMap:
    """Maps a key path (("local", "services", "api", "port")) to its 1-based line."""

    def __init__(self) -> None:
        self._lines: dict[Loc, int] = {}

    def add(self, loc: Loc, line: int) -> None:
        self._lines.setdefault(loc, line)

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest ancestor the file has."""
        loc = tuple(loc)
        while True:
            if loc in self._lines:
                return self._lines[loc]
            if not loc:
                return None
            loc = loc[:-1]


def _walk(
    node: yaml.Node,
    loc: Loc,
    lines: LineMap,
    problems: list[tuple[int | None, str]],
    ancestors: set[int] | None = None,
    seen: set[int] | None = None,
):
    ancestors = set() if ancestors is None else ancestors
    seen = set() if seen is None else seen
    lines.add(loc, node.start_mark.line + 1)
    if id(node) in ancestors:
        problems.append((node.start_mark.line + 1, f"{dotted(loc)}: an alias refers to itself"))
        return
    if id(node) in seen:  # an alias of a node already walked: its lines are known
        return
    seen.add(id(node))
    ancestors.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key in keys:
                problems.append(
                    (line, f"{dotted((*loc, key))}: duplicate key (first at line {keys[key]})")
                )
            keys[key] = line
            lines.add((*loc, key), line)
            _walk(value_node, (*loc, key), lines, problems, ancestors, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines, problems, ancestors, seen)
    ancestors.discard(id(node))


def read_text(path: Path) -> str:
    """A file's text (UTF-8), or a ConfigError naming it (and, for bytes that are not
    UTF-8, the line and column where they are)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [(None, "file not found")]) from None
    except OSError as exc:
        raise ConfigError(path, [(None, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        # the column counts characters, as an editor shows them
        column = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        byte = data[exc.start]
        raise ConfigError(
            path,
            [
                (
                    line,
                    f"column {column}: not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8",
                )
            ],
        ) from None


def load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Parse `path` with the safe loader; return the data and its line map."""
    return parse_yaml(read_text(path), path)


MAX_EXPANDED_NODES = 100_000
"""More values than this once aliases are expanded is refused: an alias bomb (each
level repeating the one before) grows without bound, and every reader of the data
(parameter substitution, validation) would walk the expansion."""


class _Loader(yaml.SafeLoader):
    """The safe loader, counting what aliases expand to while the document is composed,
    before anything is constructed from it."""

    def __init__(self, text: str):
        super().__init__(text)
        self._sizes: dict[int, int] = {}
        self._last_alias: yaml.Mark | None = None

    def compose_node(self, parent, index):
        is_alias = self.check_event(yaml.AliasEvent)
        if is_alias:
            self._last_alias = self.peek_event().start_mark
        node = super().compose_node(parent, index)
        if is_alias or id(node) in self._sizes:
            return node
        size = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                size += self._sizes.get(id(key), 1) + self._sizes.get(id(value), 1)
        elif isinstance(node, yaml.SequenceNode):
            size += sum(self._sizes.get(id(item), 1) for item in node.value)
        self._sizes[id(node)] = size
        if size > MAX_EXPANDED_NODES:
            mark = self._last_alias or node.start_mark
            raise _AliasBomb(mark)
        return node


class _AliasBomb(Exception):
    def __init__(self, mark: yaml.Mark):
        self.mark = mark


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[int | None, str]:
    """The line of a syntax error: where the parser found it, except when it only found
    it at the end of the file (a quote or bracket never closed): then where the thing
    that is never closed starts."""
    mark = exc.problem_mark or exc.context_mark
    at_end = exc.problem_mark is not None and (
        exc.problem_mark.index >= len(text.rstrip()) or "end of stream" in (exc.problem or "")
    )
    if at_end and exc.context_mark is not None:
        mark = exc.context_mark
    line = mark.line + 1 if mark else None
    if mark is not None and mark is exc.context_mark and exc.problem_mark is not None:
        where = f"column {mark.column + 1}"
        if "quoted scalar" in (exc.context or ""):
            return line, (
                f"not valid YAML: a quoted string starts here ({where}) and is never closed; "
                "expected its closing quote"
            )
        return line, (
            f"not valid YAML: {exc.context}, {exc.problem}: what starts here ({where}) "
            "is never closed"
        )
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    return line, f"not valid YAML: {what}"


def parse_yaml(text: str, path: Path) -> tuple[Any, LineMap]:
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        data = loader.construct_document(node)
    except _AliasBomb as exc:
        raise ConfigError(
            path,
            [
                (
                    exc.mark.line + 1,
                    f"aliases expand this document to more than {MAX_EXPANDED_NODES:,} values "
                    "(an alias repeating an alias, level upon level); expected a document "
                    "that stays small when its aliases are expanded",
                )
            ],
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(path, [_yaml_problem(exc, text)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            path,
            [
                (
                    line,
                    f"column {column}: not valid YAML: character #x{exc.character:04x} "
                    "is not allowed",
                )
            ],
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [(None, f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(path, [(None, "not valid YAML: nested too deeply")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines = LineMap()
    problems: list[tuple[int | None, str]] = []
    try:
        _walk(node, (), lines, problems)
    except RecursionError:
        raise ConfigError(path, [(None, "nested too deeply")]) from None
    if problems:
        raise ConfigError(path, problems)
    return data, lines


def checked_regex(value: str, what: str | None = None) -> str:
    """`value` when it compiles as a regular expression; else a ValueError, which a
    model's validator turns into a problem at the key's line."""
    try:
        re.compile(value)
    except re.error as exc:
        said = f"{what}: " if what else ""
        raise ValueError(f"{said}bad regular expression: {exc}") from None
    return value


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validate(model: type[M], data: Any, path: Path, lines: LineMap) -> M:
    """Validate `data` into the pydantic `model`; every problem is reported at once."""
    value, problems = check(model, data, lines)
    if problems:
        raise ConfigError(path, problems)
    return value  # type: ignore[return-value]


def check(
    model: type[M], data: Any, lines: LineMap, prefix: Loc = ()
) -> tuple[M | None, list[tuple[int | None, str]]]:
    """Validate `data` (found at `prefix` in the file) into `model`.

    Returns the model, or None and every problem as (line, message)."""
    import pydantic

    try:
        return model.model_validate(data), []  # type: ignore[attr-defined]
    except pydantic.ValidationError as exc:
        problems: list[tuple[int | None, str]] = []
        for err in exc.errors():
            loc = _data_loc(data, err["loc"])
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown key"
                suggestion = _did_you_mean(model, loc)
                if suggestion:
                    message += f" (did you mean '{suggestion}'?)"
            elif err["type"] == "missing":
                message = "required key is missing"
            full = (*prefix, *loc)
            problems.append((lines.line_of(full), f"{dotted(full)}: {message}"))
        return None, problems


def _data_loc(data: Any, loc: tuple) -> Loc:
    """The path of an error in the data: pydantic adds steps of its own to the path
    (union members, validator names such as `function-after[...]`); keep the steps that
    lead through the data."""
    out: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, dict) and current.get("kind") == part:
            # the member of a union chosen by its `kind` (a signal source's), unless the
            # path goes on into a key of that name (a gate item's `kind: drill` with its
            # `drill:` settings)
            after = loc[i + 1] if i + 1 < len(loc) else None
            inner = current.get(part)
            into = isinstance(inner, dict | list) and after is not None and _has(inner, after)
            if not into or _has(current, after):
                continue
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            out.append(part)
            current = current[part]
        elif isinstance(part, str) and ("[" in part or part in _TAGS):
            continue  # a step of pydantic's own
        else:
            out.append(part)  # a key that is missing or unknown: the end of the path
            current = None
    return tuple(out)


def _has(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "literal", "tuple"}


def _did_you_mean(model: type, loc: Loc) -> str | None:
    """Walk the model's fields along `loc` and suggest the closest known key."""
    if not loc:
        return None
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            current = _inner_model(current)
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            current = _inner_model(current)
            continue
        current = _inner_model(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    if not fields or not isinstance(loc[-1], str):
        return None
    return did_you_mean(loc[-1], fields)


def _inner_model(annotation: Any) -> Any:
    """The pydantic model inside an annotation like `dict[str, X]`, `X | None` or `list[X]`."""
    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in reversed(getattr(annotation, "__args__", ()) or ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
