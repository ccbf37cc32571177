"""Scenario parameters: `${name}` in any value is replaced by the parameter (a
whole-value reference keeps its type), and `--param name=value` overrides a default,
read as the type of that default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pagerdrill.errors import BadInputError
from pagerdrill.workspace.yamlfile import Loc, dotted

Scalar = int | float | str | bool

PARAM_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_param(text: str) -> tuple[str, str]:
    """`KEY=VALUE` from the command line. The value stays text until the scenario says
    what the parameter is (see `coerce_param`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise BadInputError(f"--param {text!r}: expected KEY=VALUE")
    return key.strip(), raw


def coerce_param(key: str, raw: Scalar, default: Scalar, path: Path) -> Scalar:
    """A --param value as the type of the parameter's default."""
    if not isinstance(raw, str) or isinstance(default, str):
        value: Any = raw
    else:
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
    kinds = {bool: "true or false", int: "a number", float: "a number", str: "text"}
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise BadInputError(
            f"{path}: --param {key}={raw}: expected {kinds[type(default)]} "
            f"like the default ({default})"
        )
    return value


def substitute(data: Any, params: dict[str, Scalar], loc: Loc, lines, problems) -> Any:
    if isinstance(data, dict):
        return {k: substitute(v, params, (*loc, k), lines, problems) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, params, (*loc, i), lines, problems) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data
    for name in PARAM_REF.findall(data):
        if name not in params:
            known = ", ".join(sorted(params)) or "none declared"
            problems.append(
                (lines.line_of(loc), f"{dotted(loc)}: unknown parameter ${{{name}}} ({known})")
            )
            return data
    whole = PARAM_REF.fullmatch(data.strip())
    if whole:
        return params[whole.group(1)]
    return PARAM_REF.sub(lambda m: str(params[m.group(1)]), data)
